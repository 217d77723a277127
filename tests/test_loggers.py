"""Every logger records what a run logs (scalars, hyperparameters, sample grids), read back through
its own library, offline; a resumed run goes on logging into the same MLflow and W&B runs."""

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import tiny_run
from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger, WandbLogger
from packaging.version import Version
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from aigc.callbacks.loggers import RUN_IDS_KEY, continue_runs, finish_runs, log_samples
from aigc.core.samples import Samples
from aigc.train import train

# 3 batches an epoch: scalars at steps 0, 1, 2; sample grids at step 2 and at the epoch's end (3).
LOGGED = ("trainer.log_every_n_steps=1", "callbacks.samples.every_n_steps=2")


@pytest.fixture(scope="session")
def empty_mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow store with its tables made: making them takes seconds, copying the file none."""
    mlflow = pytest.importorskip("mlflow", reason="the mlflow extra: pip install -e '.[mlflow]'")
    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def mlflow(tmp_path: Path, empty_mlflow_store: Path):
    """MLflow's client on the store that ``logger=mlflow`` writes under ``paths.log_dir``."""
    from mlflow import MlflowClient

    store = tmp_path / "logs" / "mlflow" / "mlflow.db"
    store.parent.mkdir(parents=True)
    shutil.copy(empty_mlflow_store, store)
    return MlflowClient(f"sqlite:///{store}")


def mlflow_runs(client, experiment: str = "train") -> list:
    (found,) = [e for e in client.search_experiments() if e.name == experiment]
    return client.search_runs([found.experiment_id])


def pixels(path: Path) -> bytes:
    return np.asarray(Image.open(path)).tobytes()


def finished_message(caplog: pytest.LogCaptureFixture) -> str:
    """What train.py printed last: the run directory and the commands that use it."""
    return [r.getMessage() for r in caplog.records if r.name == "aigc.train"][-1]


def wandb_records(run_folder: Path) -> list[dict]:
    """The records of an offline W&B run, read by W&B's own reader."""
    import wandb

    if Version(wandb.__version__) < Version("0.31"):
        pytest.skip("reading an offline run back needs `wandb leet inspect --json` (wandb 0.31)")
    (log_file,) = run_folder.glob("run-*.wandb")
    inspect = [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(log_file)]
    result = subprocess.run(inspect, capture_output=True, text=True, check=True, timeout=120)
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


GRID = Samples(images=torch.linspace(-1, 1, 4 * 28 * 28).reshape(4, 1, 28, 28), captions=["x"] * 4)
TEXTS = Samples(texts=["to be", "or not"], captions=["to", "or"])


def test_tensorboard_shows_grids_and_texts(tmp_path: Path) -> None:
    logger = TensorBoardLogger(tmp_path, name="tb", version="")
    log_samples(logger, GRID, "grid", 3)
    log_samples(logger, TEXTS, "text", 3)
    logger.experiment.close()
    events = EventAccumulator(logger.log_dir, size_guidance={"images": 0, "tensors": 0})
    events.Reload()
    assert [e.step for e in events.Images("grid")] == [3]
    (text,) = events.Tensors("text/text_summary")
    assert text.step == 3 and b"```\nor not\n```" in text.tensor_proto.string_val[0]


def test_mlflow_shows_grids_and_texts(tmp_path: Path, mlflow) -> None:
    store = f"sqlite:///{tmp_path / 'logs' / 'mlflow' / 'mlflow.db'}"
    logger = MLFlowLogger("x", tracking_uri=store, artifact_location=str(tmp_path / "files"))
    log_samples(logger, GRID, "samples/step", 3)
    log_samples(logger, TEXTS, "samples/step", 3)
    got = str(tmp_path / "got")
    (text,) = mlflow.list_artifacts(logger.run_id, "samples/step")
    assert text.path == "samples/step/step_0000003.txt"
    assert (
        Path(mlflow.download_artifacts(logger.run_id, text.path, got)).read_text()
        == "to be\n\nor not"
    )
    (grid,) = [f for f in mlflow.list_artifacts(logger.run_id, "images") if f.path.endswith("png")]
    local = Path(mlflow.download_artifacts(logger.run_id, grid.path, got))
    assert pixels(local) == np.asarray(GRID.picture()).tobytes()


def test_wandb_shows_grids_and_texts(tmp_path: Path, offline_wandb) -> None:
    logger = WandbLogger(project="x", save_dir=tmp_path, offline=True)
    log_samples(logger, GRID, "grid", 3)
    log_samples(logger, TEXTS, "text", 4)
    folder = Path(logger.experiment.dir).parent
    finish_runs([logger])
    history = [r["history"]["item"] for r in wandb_records(folder) if r["type"] == "history"]
    (grid,) = [h for h in history if "grid._type" in h]
    (image,) = grid["grid.filenames"]
    assert pixels(folder / "files" / image) == np.asarray(GRID.picture()).tobytes()
    (table,) = [h for h in history if "text._type" in h]
    assert table["trainer/global_step"] == 4 and table["text._type"] == "table-file"
    rows = json.loads((folder / "files" / table["text.path"]).read_text())
    assert rows["columns"] == ["prompt", "text"] and rows["data"] == [
        ["to", "to be"],
        ["or", "or not"],
    ]


def test_mlflow_records_scalars_hyperparameters_and_sample_grids(
    make_cfg, tiny_mnist: Path, tmp_path: Path, mlflow
) -> None:
    train(tiny_run(make_cfg, tiny_mnist, "logger=mlflow", "trainer.max_epochs=1", *LOGGED))
    (run,) = mlflow_runs(mlflow)
    assert run.info.status == "FINISHED"
    assert run.data.tags["run_dir"] == str(tmp_path / "run")
    assert run.data.params["latent_dim"] == "16" and run.data.params["loss"] == "non_saturating"
    history = mlflow.get_metric_history(run.info.run_id, "loss/g")
    assert [m.step for m in history] == [0, 1, 2]
    assert {"loss/d", "Dx", "val/Dx"} <= run.data.metrics.keys()  # MLflow drops the brackets

    # The grids MLflow holds are the ones the run saved in samples/.
    folder = Path(mlflow.download_artifacts(run.info.run_id, "images", str(tmp_path / "got")))
    logged = sorted(pixels(path) for path in folder.glob("*.png"))
    saved = sorted(pixels(path) for path in (tmp_path / "run" / "samples").glob("*.png"))
    assert len(saved) == 2 and logged == saved


def test_wandb_offline_records_scalars_hyperparameters_and_sample_grids(
    make_cfg, tiny_mnist: Path, tmp_path: Path, offline_wandb, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="aigc.train"):
        train(tiny_run(make_cfg, tiny_mnist, "logger=wandb", "trainer.max_epochs=1", *LOGGED))
    (folder,) = (tmp_path / "run" / "wandb").glob("offline-run-*")
    assert f"  W&B           wandb sync {folder}   (" in finished_message(caplog)
    records = wandb_records(folder)
    history = [r["history"]["item"] for r in records if r["type"] == "history"]
    assert [h["trainer/global_step"] for h in history if "loss/g" in h] == [0, 1, 2]
    grids = {h["trainer/global_step"]: h for h in history if "samples._type" in h}
    assert list(grids) == [2, 3]  # every 2 steps, and the epoch's end
    (logged,) = grids[2]["samples.filenames"]
    assert pixels(folder / "files" / logged) == pixels(tmp_path / "run/samples/step_0000002.png")
    config = json.dumps([r for r in records if r["type"] in ("run", "config")])
    assert '"latent_dim"' in config and str(tmp_path / "run") in config


def test_several_loggers_at_once_and_the_commands_that_show_them(
    make_cfg, tiny_mnist: Path, tmp_path: Path, mlflow, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = tiny_run(
        make_cfg, tiny_mnist, "logger=[tensorboard,mlflow]", "trainer.max_steps=2", *LOGGED
    )
    with caplog.at_level(logging.INFO, logger="aigc.train"):
        train(cfg)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("loss/g")] == [0, 1]
    assert [e.step for e in events.Images("samples")] == [2]
    (run,) = mlflow_runs(mlflow)
    assert [m.step for m in mlflow.get_metric_history(run.info.run_id, "loss/g")] == [0, 1]
    files = [f.path for f in mlflow.list_artifacts(run.info.run_id, "images")]
    # At step 2, where the run ends: its epoch's end is the same step, not sampled again.
    assert len([f for f in files if f.endswith(".png")]) == 1

    message = finished_message(caplog)
    assert f"  TensorBoard   tensorboard --logdir {tmp_path / 'run' / 'tensorboard'}\n" in message
    store = f"sqlite:///{tmp_path / 'logs' / 'mlflow' / 'mlflow.db'}"
    assert f"  MLflow        mlflow ui --backend-store-uri {store}" in message
    assert run.info.run_id in message


def test_a_resumed_run_logs_into_the_same_runs(
    make_cfg, tiny_mnist: Path, tmp_path: Path, mlflow, offline_wandb
) -> None:
    def run(*overrides: str, output_dir: Path = tmp_path / "run") -> None:
        loggers = ("logger=[mlflow,wandb]", "trainer.log_every_n_steps=1")
        train(tiny_run(make_cfg, tiny_mnist, *loggers, *overrides, output_dir=output_dir))

    run("trainer.max_epochs=1")
    run("trainer.max_epochs=2", "ckpt_path=last")
    (first,) = mlflow_runs(mlflow)
    history = mlflow.get_metric_history(first.info.run_id, "loss/g")
    assert [m.step for m in history] == list(range(6)) and first.info.status == "FINISHED"
    # W&B cannot resume a run offline: it writes a second folder of the same run id
    # (offline-run-<date>_<time>-<id>, with "-1" added when both start in the same second).
    folders = sorted((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(folders) == 2 and len({f.name.split("-")[3] for f in folders}) == 1

    # Resumed from that checkpoint into another directory, it is a new run there.
    checkpoint = tmp_path / "run" / "checkpoints" / "epoch_000-step_0000003.ckpt"
    run("trainer.max_epochs=2", f"ckpt_path={checkpoint}", output_dir=tmp_path / "other")
    assert len(mlflow_runs(mlflow)) == 2
    (folder,) = (tmp_path / "other" / "wandb").glob("offline-run-*")
    assert folder.name.rsplit("-", 1)[1] != folders[0].name.rsplit("-", 1)[1]


def test_a_run_missing_from_the_mlflow_store_is_logged_anew(
    tmp_path: Path, mlflow, caplog: pytest.LogCaptureFixture
) -> None:
    store = f"sqlite:///{tmp_path / 'logs' / 'mlflow' / 'mlflow.db'}"
    logger = MLFlowLogger("x", tracking_uri=store, artifact_location=str(tmp_path / "files"))
    trainer = SimpleNamespace(loggers=[logger], is_global_zero=True)
    checkpoint = {"global_step": 3, RUN_IDS_KEY: {"mlflow": "0123456789abcdef"}}
    with caplog.at_level(logging.WARNING):
        continue_runs(trainer, checkpoint, same_run_dir=True)
    assert "MLflow run 0123456789abcdef is not in sqlite:///" in caplog.text
    assert logger.run_id != "0123456789abcdef" and len(mlflow_runs(mlflow, "x")) == 1
