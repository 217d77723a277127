"""End-to-end training runs on tiny data, through the same ``train`` the command line uses."""

import csv
from pathlib import Path

import pytest
import torch
from conftest import run_train_cli, tiny_run
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from aigc.errors import CheckpointError, ConfigError
from aigc.train import build, next_steps, train


@pytest.mark.parametrize("data", ["mnist", "fashion_mnist", "cifar10"])
def test_fast_dev_run_for_each_dataset(make_cfg, tmp_path: Path, data: str, request) -> None:
    if data == "cifar10":
        data_dir = request.getfixturevalue("tiny_cifar10")
    else:
        from conftest import write_tiny_idx_dataset

        data_dir = tmp_path / "data"
        write_tiny_idx_dataset(
            data_dir, folder={"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}[data]
        )
    metrics = train(tiny_run(make_cfg, data_dir, f"data={data}", "debug=fdr"))
    assert {"loss/g", "loss/d", "D(x)", "D(G(z))"} <= metrics.keys()


def test_max_steps_counts_batches(make_cfg, tiny_mnist: Path, tmp_path: Path) -> None:
    cfg = tiny_run(
        make_cfg, tiny_mnist, "trainer.max_steps=2", "trainer.max_epochs=5", "logger=csv"
    )
    train(cfg)
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 2
    # Both optimizers stepped once per batch: Adam's step count equals the batch count.
    assert [state["state"][0]["step"].item() for state in checkpoint["optimizer_states"]] == [
        2.0,
        2.0,
    ]


def test_resume_is_exact(make_cfg, tiny_mnist: Path, tmp_path: Path) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    common = ("trainer.log_every_n_steps=1", "callbacks.samples.every_n_steps=0")
    train(tiny_run(make_cfg, tiny_mnist, "trainer.max_epochs=2", *common, output_dir=straight))
    train(tiny_run(make_cfg, tiny_mnist, "trainer.max_epochs=1", *common, output_dir=resumed))
    train(
        tiny_run(
            make_cfg,
            tiny_mnist,
            "trainer.max_epochs=2",
            "ckpt_path=last",
            *common,
            output_dir=resumed,
        )
    )

    a, b = (
        torch.load(d / "checkpoints" / "last.ckpt", weights_only=True) for d in (straight, resumed)
    )
    assert a["global_step"] == b["global_step"] == 6  # 96 training images / 32 per batch * 2 epochs
    assert a["epoch"] == b["epoch"]
    for name, tensor in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][name], tensor, msg=name)
    for opt_a, opt_b in zip(a["optimizer_states"], b["optimizer_states"], strict=True):
        for key, state in opt_a["state"].items():
            torch.testing.assert_close(opt_b["state"][key]["exp_avg"], state["exp_avg"])

    # The resumed run's TensorBoard curves continue where the first half stopped.
    events = EventAccumulator(str(resumed / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("loss/g")] == list(range(6))


def test_best_checkpoint_holds_the_best_validation(
    make_cfg, tiny_mnist: Path, tmp_path: Path
) -> None:
    train(tiny_run(make_cfg, tiny_mnist, "trainer.max_epochs=3", "logger=csv"))
    with open(tmp_path / "run" / "csv" / "metrics.csv", newline="") as file:
        fids = {int(row["epoch"]): float(row["val/fid_randconv"]) for row in csv.DictReader(file)}
    assert len(fids) == 3  # one validation an epoch
    best = torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", weights_only=True)
    assert best["epoch"] == min(fids, key=fids.get)


# A monitored metric whose first value is the best: best.ckpt stays at the first validation.
FIRST_IS_BEST = ("callbacks.best_checkpoint.monitor=step", "callbacks.best_checkpoint.mode=min")


def test_resume_from_the_best_checkpoint(make_cfg, tiny_mnist: Path, tmp_path: Path) -> None:
    train(tiny_run(make_cfg, tiny_mnist, "trainer.max_epochs=3", *FIRST_IS_BEST, "logger=none"))
    train(tiny_run(make_cfg, tiny_mnist, "trainer.max_epochs=2", "ckpt_path=best", *FIRST_IS_BEST))
    # From best.ckpt (epoch 0, 3 steps) one more epoch; from last.ckpt (9 steps) there is none.
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 6


def test_last_checkpoint_knows_the_newest_best(make_cfg, tiny_mnist: Path, tmp_path: Path) -> None:
    # Every validation is a new best by this metric; a resumed run must know the last one.
    newest = ("callbacks.best_checkpoint.monitor=step", "callbacks.best_checkpoint.mode=max")
    train(tiny_run(make_cfg, tiny_mnist, "trainer.max_epochs=2", *newest, "logger=none"))
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    (best,) = (state for state in last["callbacks"].values() if state.get("monitor") == "step")
    assert best["best_model_score"] == last["global_step"] == 6


def test_early_stopping_stops_and_keeps_its_state(
    make_cfg, tiny_mnist: Path, tmp_path: Path
) -> None:
    never_better = (
        "callbacks=early_stopping",
        "callbacks.early_stopping.patience=1",
        "callbacks.early_stopping.min_delta=1e9",  # no change counts as an improvement
    )
    train(tiny_run(make_cfg, tiny_mnist, "trainer.max_epochs=5", *never_better, "logger=none"))
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 6  # stopped after the second of five epochs
    (state,) = (s for key, s in last["callbacks"].items() if key.startswith("EarlyStopping"))
    assert (state["wait_count"], state["stopped_epoch"]) == (1, 1)


def test_tensorboard_has_scalars_and_sample_grid(
    make_cfg, tiny_mnist: Path, tmp_path: Path
) -> None:
    train(
        tiny_run(
            make_cfg,
            tiny_mnist,
            "trainer.max_epochs=1",
            "trainer.log_every_n_steps=1",
            "callbacks.samples.every_n_steps=2",
        )
    )
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()
    assert {"loss/g", "loss/d", "D(x)", "D(G(z))", "val/D(x)", "val/fid_randconv"} <= set(
        tags["scalars"]
    )
    # Every 2 steps and at the epoch's end (step 3); once each, under one tag.
    assert [e.step for e in events.Images("samples")] == [2, 3]
    assert (tmp_path / "run" / "samples" / "step_0000003.png").is_file()


def test_checkpoint_loads_with_weights_only(make_cfg, tiny_mnist: Path, tmp_path: Path) -> None:
    train(tiny_run(make_cfg, tiny_mnist, "trainer.max_steps=1", "logger=none"))
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["hyper_parameters"]["image_shape"] == [1, 28, 28]
    assert checkpoint["hyper_parameters"]["betas"] == [0.5, 0.999]


def test_missing_ckpt_path(make_cfg, tiny_mnist: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        train(tiny_run(make_cfg, tiny_mnist, f"ckpt_path={tmp_path / 'nope.ckpt'}"))


def test_last_without_checkpoint(make_cfg, tiny_mnist: Path) -> None:
    with pytest.raises(CheckpointError, match=r"hydra\.run\.dir=<run directory> ckpt_path=last"):
        train(tiny_run(make_cfg, tiny_mnist, "ckpt_path=last"))


def test_best_without_checkpoint(make_cfg, tiny_mnist: Path) -> None:
    with pytest.raises(CheckpointError, match=r"ckpt_path=best, but .*best\.ckpt does not exist"):
        train(tiny_run(make_cfg, tiny_mnist, "ckpt_path=best"))


def test_corrupt_ckpt_path(make_cfg, tiny_mnist: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(CheckpointError, match="is not a readable checkpoint"):
        train(tiny_run(make_cfg, tiny_mnist, f"ckpt_path={bad}"))


def test_resume_from_another_family(make_cfg, tiny_mnist: Path, tmp_path: Path) -> None:
    train(tiny_run(make_cfg, tiny_mnist, "trainer.max_steps=1", "logger=none"))
    gan_checkpoint = tmp_path / "run" / "checkpoints" / "last.ckpt"
    cfg = make_cfg(
        f"paths.data_dir={tiny_mnist}", "model=classifier", f"ckpt_path={gan_checkpoint}"
    )
    with pytest.raises(CheckpointError, match="holds a GAN, but this run builds a Classifier"):
        train(cfg)


def test_model_that_needs_other_data(make_cfg, tiny_mnist: Path) -> None:
    from omegaconf import open_dict

    cfg = tiny_run(make_cfg, tiny_mnist)
    with open_dict(cfg):
        cfg.model = {"_target_": "torch.nn.Embedding", "embedding_dim": 4}  # needs num_embeddings
    with pytest.raises(ConfigError, match="needs num_embeddings"):
        train(cfg)


def test_cli_reports_bad_checkpoint_in_one_line(tiny_mnist: Path, tmp_path: Path) -> None:
    result = run_train_cli(
        f"ckpt_path={tmp_path / 'missing.ckpt'}", f"paths.log_dir={tmp_path}", data_dir=tiny_mnist
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip().splitlines()[-1]
        == f"error: checkpoint {tmp_path / 'missing.ckpt'} does not exist"
    )
    assert "Traceback" not in result.stderr


def test_cli_reports_corrupt_data_in_one_line(tiny_mnist: Path, tmp_path: Path) -> None:
    path = tiny_mnist / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:50])
    result = run_train_cli("debug=fdr", f"paths.log_dir={tmp_path}", data_dir=tiny_mnist)
    assert result.returncode == 1
    assert (
        result.stderr.strip().splitlines()[-1].startswith(f"error: {path} is truncated or corrupt")
    )
    assert "Traceback" not in result.stderr


def test_bf16_mixed_precision_on_cpu(make_cfg, tiny_mnist: Path) -> None:
    metrics = train(tiny_run(make_cfg, tiny_mnist, "trainer.precision=bf16-mixed", "debug=fdr"))
    assert torch.isfinite(torch.tensor(metrics["loss/g"]))


@pytest.mark.slow
def test_compiled_gan_trains(make_cfg, tiny_mnist: Path) -> None:
    metrics = train(tiny_run(make_cfg, tiny_mnist, "model.compile=true", "debug=fdr"))
    assert torch.isfinite(torch.tensor(metrics["loss/d"]))


@pytest.mark.parametrize(
    ("override", "advice"),
    [
        ("trainer.max_steps=2", "with more trainer.max_epochs or trainer.max_steps"),
        ("trainer.max_time=00:00:30:00", "with a longer trainer.max_time"),
    ],
)
def test_a_finished_run_says_how_to_train_on(
    make_cfg, tiny_mnist: Path, tmp_path: Path, override: str, advice: str
) -> None:
    _, model, trainer = build(tiny_run(make_cfg, tiny_mnist, override, "logger=none"))
    message = next_steps(tmp_path / "run", trainer, model)
    assert message.splitlines()[-1].endswith(f"ckpt_path=last, {advice}")
