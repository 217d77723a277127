"""Multiruns: one directory per job, the summary at the end, Optuna and SLURM configs."""

import csv
import json
import subprocess
from pathlib import Path

import pytest
from conftest import TINY_GAN, run_train_cli
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from aigc.callbacks import MultirunSummary
from aigc.errors import ConfigError
from aigc.paths import CONFIG_DIR
from aigc.train import optimized_value


def write_job(sweep_dir: Path, num: int, overrides: list[str], metrics: dict | None) -> None:
    job_dir = sweep_dir / str(num)
    (job_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(overrides), job_dir / ".hydra" / "overrides.yaml")
    if metrics is not None:
        (job_dir / "metrics.json").write_text(json.dumps(metrics))


def read_summary(path: Path) -> list[list[str]]:
    with open(path, newline="") as file:
        return list(csv.reader(file))


def test_summary_sorts_by_the_optimized_metric_and_marks_failed_jobs(tmp_path: Path) -> None:
    common = "experiment=shakespeare_char_cpu"
    write_job(tmp_path, 0, [common, "model.lr=0.1"], {"val/loss": 2.5, "train/loss": 2.4})
    write_job(tmp_path, 1, [common, "model.lr=0.01"], {"val/loss": 1.5, "train/loss": 1.4})
    write_job(tmp_path, 2, [common, "model.lr=1.0"], None)  # failed before it finished
    config = OmegaConf.create(
        {"hydra": {"sweep": {"dir": str(tmp_path)}}, "optimized_metric": "val/loss"}
    )
    MultirunSummary().on_multirun_end(config)
    assert read_summary(tmp_path / "summary.csv") == [
        ["job", "overrides", "val/loss"],  # final metrics only; shared overrides left out
        ["1", "model.lr=0.01", "1.5"],
        ["0", "model.lr=0.1", "2.5"],
        ["2", "model.lr=1.0", "failed"],
    ]


def run_train(*args: str, cwd: Path, data_dir: Path) -> subprocess.CompletedProcess:
    result = run_train_cli(*args, cwd=cwd, data_dir=data_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_multirun_jobs_get_directories_and_a_summary(tiny_mnist: Path, tmp_path: Path) -> None:
    result = run_train(
        "-m",
        "model.lr=1e-3,2e-3",
        "trainer.max_epochs=1",
        "data.batch_size=32",
        "optimized_metric='val/D(x)'",
        *TINY_GAN,
        cwd=tmp_path,
        data_dir=tiny_mnist,
    )
    (sweep_dir,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    for job in ("0", "1"):
        assert (sweep_dir / job / "checkpoints" / "last.ckpt").is_file()
        assert "val/D(x)" in json.loads((sweep_dir / job / "metrics.json").read_text())
    rows = read_summary(sweep_dir / "summary.csv")
    assert rows[0] == ["job", "overrides", "val/D(x)", "val/D(G(z))", "val/fid_randconv"]
    assert sorted(row[1] for row in rows[1:]) == ["model.lr=0.001", "model.lr=0.002"]
    assert float(rows[1][2]) <= float(rows[2][2])
    assert "Multirun summary" in result.stderr + result.stdout


def test_optuna_search_minimises_the_language_models_val_loss(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    text = tmp_path / "tiny.txt"
    text.write_text("the quick brown fox jumps over the lazy dog\n" * 60)
    run_train(
        "hparams_search=lm_optuna",
        "hydra.sweeper.n_trials=3",
        f"hydra.sweeper.storage=sqlite:///{tmp_path / 'optuna.db'}",
        "hydra.sweeper.sampler.n_startup_trials=2",
        "model=language_model",
        "data=text",
        f"data.path={text}",
        "model.block_size=16",
        "model.n_layer=1",
        "model.n_head=2",
        "data.batch_size=8",
        "data.val_batches=2",
        "trainer.max_steps=4",
        "trainer.val_check_interval=4",
        "trainer.check_val_every_n_epoch=null",
        "callbacks.samples.every_n_steps=0",
        cwd=tmp_path,
        data_dir=tmp_path,
    )
    (sweep_dir,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    losses = {
        job.name: json.loads((job / "metrics.json").read_text())["val/loss"]
        for job in sweep_dir.iterdir()
        if (job / "metrics.json").is_file()
    }
    assert len(losses) == 3
    results = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert results.best_value == pytest.approx(min(losses.values()))
    assert set(results.best_params) == {"model.lr", "model.n_embd"}
    assert read_summary(sweep_dir / "summary.csv")[1][2] == f"{min(losses.values()):.4g}"
    assert (tmp_path / "optuna.db").is_file()  # the study, to resume or share


def test_slurm_launcher_asks_for_the_trainers_devices() -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            ["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"],
            return_hydra_config=True,
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 4, 4)


def test_optimized_metric_must_be_one_the_run_logged() -> None:
    cfg = OmegaConf.create({"optimized_metric": "val/loss"})
    assert optimized_value(cfg, {"val/loss": 1.5, "train/loss": 1.4}) == 1.5
    assert optimized_value(OmegaConf.create({"optimized_metric": None}), {"val/loss": 1.5}) is None
    with pytest.raises(ConfigError, match=r"optimized_metric=val/loss was not logged"):
        optimized_value(cfg, {"val/D(x)": 0.5})
