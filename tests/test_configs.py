"""Every config group composes, and the command line shows the groups and the composed config."""

import subprocess
import sys
from pathlib import Path

import pytest
from hydra.utils import get_class

from aigc.paths import CONFIG_DIR
from aigc.utils.instantiate import instantiate_list

ROOT = Path(__file__).resolve().parents[1]


def options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONFIG_DIR / group).glob("*.yaml"))


def cases() -> list[str]:
    groups = ["data", "model", "trainer", "callbacks", "logger", "paths", "debug", "experiment"]
    groups += ["hparams_search"]
    return [f"{group}={name}" for group in groups for name in options(group)]


@pytest.mark.parametrize("override", cases())
def test_group_option_composes(make_cfg, override: str) -> None:
    cfg = make_cfg(override)
    for node in (cfg.data, cfg.model, cfg.trainer):
        assert get_class(node._target_)  # the target exists
    for group in ("callbacks", "logger"):
        for node in (cfg.get(group) or {}).values():
            assert get_class(node._target_)


@pytest.mark.parametrize(
    ("model", "monitor"),
    [
        ("gan", ("val/fid_randconv", "min")),
        ("language_model", ("val/loss", "min")),
        ("classifier", ("val/acc", "max")),
    ],
)
def test_best_checkpoint_and_early_stopping_follow_the_model_family(
    make_cfg, model: str, monitor: tuple[str, str]
) -> None:
    callbacks = instantiate_list(make_cfg(f"model={model}", "callbacks=early_stopping").callbacks)
    watching = [(cb.monitor, cb.mode) for cb in callbacks if getattr(cb, "monitor", None)]
    assert watching == [monitor, monitor]  # best_checkpoint and early_stopping


def test_monitored_metric_can_be_overridden(make_cfg) -> None:
    cfg = make_cfg("model=language_model", "callbacks.best_checkpoint.monitor=val/bpc")
    node = cfg.callbacks.best_checkpoint
    assert (node.monitor, node.mode) == ("val/bpc", "min")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "train.py", *args], cwd=ROOT, capture_output=True, text=True
    )


def test_cfg_job_prints_composed_config() -> None:
    result = run("--cfg", "job", "data=cifar10")
    assert result.returncode == 0, result.stderr
    assert "dataset: cifar10" in result.stdout and "_target_: aigc.models.gan.GAN" in result.stdout


def test_unknown_model_group_lists_choices() -> None:
    result = run("model=nope")
    assert result.returncode != 0
    assert "Could not find 'model/nope'" in result.stderr and "gan" in result.stderr
