"""Ctrl-C and SIGTERM end a run after the current step with a checkpoint that resumes exactly,
and a non-zero exit status; a run's directory is its own."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import lightning as L
import pytest
import torch
from conftest import ROOT, TINY_GAN, run_train_cli, tiny_run
from lightning.pytorch.callbacks import Callback

from aigc.errors import CheckpointError
from aigc.train import train

# A tiny GAN for two steps, as a command line.
TINY_CLI = (*TINY_GAN, "data.batch_size=32", "data.val_fraction=0.25", "trainer.max_steps=2")
STEPS = (
    "trainer.max_steps=7",  # epochs of 3 batches
    "trainer.val_check_interval=2",
    "trainer.check_val_every_n_epoch=null",
    "callbacks.samples.every_n_steps=0",
    "model.ema_decay=0.9",  # its average is part of what must resume exactly
    "logger=none",
)


class SignalAt(Callback):
    """Sends this process ``signum`` (``times`` times) after training step ``step``, or in the
    middle of the validation that follows it with ``in_validation``."""

    def __init__(self, step: int, signum: int, in_validation: bool = False, times: int = 1):
        self.step, self.signum, self.in_validation, self.times = step, signum, in_validation, times

    def _send(self, trainer: L.Trainer) -> None:
        if trainer.global_step == self.step and not trainer.sanity_checking and self.times:
            for _ in range(self.times):
                os.kill(os.getpid(), self.signum)
            self.times = 0

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if not self.in_validation:
            self._send(trainer)

    def on_validation_batch_end(self, trainer: L.Trainer, *args) -> None:
        if self.in_validation:
            self._send(trainer)


class BarSpy(Callback):
    """Records what the progress bar shows after each training step."""

    shown: ClassVar[list[tuple[str, int | None]]] = []

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        bar = trainer.progress_bar_callback.train_progress_bar
        BarSpy.shown.append((bar.desc, bar.total))


def signal_at(step: int, signum: int, **kwargs) -> list[str]:
    settings = [f"+callbacks.signal.{name}={value}" for name, value in kwargs.items()]
    return [
        f"+callbacks.signal._target_={__name__}.SignalAt",
        f"+callbacks.signal.step={step}",
        f"+callbacks.signal.signum={int(signum)}",
        *settings,
    ]


@pytest.mark.parametrize(
    ("signum", "in_validation", "sent_at", "stopped_at"),
    [
        (signal.SIGTERM, False, 5, 5),  # in the middle of the second epoch, between validations
        (signal.SIGTERM, False, 3, 4),  # in the first epoch's last step: held for one step
        (signal.SIGINT, True, 2, 2),  # held until the validation of step 2 has ended
    ],
    ids=["sigterm", "sigterm-at-epoch-end", "ctrl-c-during-validation"],
)
def test_an_interrupted_run_saves_a_checkpoint_that_resumes_exactly(
    make_cfg,
    tiny_mnist: Path,
    tmp_path: Path,
    signum: int,
    in_validation: bool,
    sent_at: int,
    stopped_at: int,
) -> None:
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    train(tiny_run(make_cfg, tiny_mnist, *STEPS, output_dir=straight))

    interrupt = signal_at(sent_at, signum, in_validation=in_validation)
    # What the process had before training (SIG_IGN, not Python's default, when a shell started it
    # in the background), which the run must hand back.
    handler_before = signal.getsignal(signal.SIGINT)
    with pytest.raises(SystemExit) as exit_info:
        train(tiny_run(make_cfg, tiny_mnist, *STEPS, *interrupt, output_dir=stopped))
    assert exit_info.value.code == 128 + signum  # what a shell reports for that signal
    last = stopped / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == stopped_at
    assert signal.getsignal(signal.SIGINT) is handler_before  # handlers restored

    BarSpy.shown = []
    spy = f"+callbacks.spy._target_={__name__}.BarSpy"
    train(tiny_run(make_cfg, tiny_mnist, *STEPS, spy, "ckpt_path=last", output_dir=stopped))
    # The bar goes on in the resumed epoch, with its number and its length (3 batches).
    assert BarSpy.shown[0] == (f"Epoch {stopped_at // 3}: ", 3)
    a, b = (
        torch.load(d / "checkpoints" / "last.ckpt", weights_only=True) for d in (straight, stopped)
    )
    assert a["global_step"] == b["global_step"] == 7
    for name, tensor in a["state_dict"].items():
        assert torch.equal(b["state_dict"][name], tensor), name


def test_a_second_ctrl_c_stops_at_once_without_a_checkpoint(
    make_cfg, tiny_mnist: Path, tmp_path: Path
) -> None:
    interrupt = signal_at(3, signal.SIGINT, times=2)
    with pytest.raises(SystemExit) as exit_info:
        train(tiny_run(make_cfg, tiny_mnist, *STEPS, *interrupt))
    assert exit_info.value.code == 1
    # The newest checkpoint is the validation's at step 2, not one of step 3.
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 2


def test_a_fresh_run_does_not_overwrite_another_runs_checkpoints(
    make_cfg, tiny_mnist: Path, tmp_path: Path
) -> None:
    train(tiny_run(make_cfg, tiny_mnist, "trainer.max_steps=1", "logger=none"))
    with pytest.raises(CheckpointError, match="holds the checkpoints of an earlier run"):
        train(tiny_run(make_cfg, tiny_mnist, "trainer.max_steps=1", "logger=none"))


def test_cli_sigterm_exits_non_zero_and_says_how_to_resume(tiny_mnist: Path, tmp_path: Path):
    run = tmp_path / "run"
    command = [sys.executable, str(ROOT / "train.py"), *TINY_CLI, "trainer.max_steps=100000"]
    overrides = ["trainer.val_check_interval=2", "trainer.check_val_every_n_epoch=null"]
    env = {**os.environ, "AIGC_DATA_DIR": str(tiny_mnist), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [*command, *overrides, f"hydra.run.dir={run}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not (run / "checkpoints" / "last.ckpt").exists():  # it is training
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 143, output
    assert re.search(r"Interrupted at step \d+; saved .*last\.ckpt\. Go on with:", output)
    assert f"hydra.run.dir={run} ckpt_path=last" in output


def test_cli_failed_start_leaves_no_run_directory(tiny_mnist: Path, tmp_path: Path) -> None:
    result = run_train_cli(
        *TINY_CLI, "ckpt_path=last", f"paths.log_dir={tmp_path}", data_dir=tiny_mnist
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: ckpt_path=last, but")
    assert not list(tmp_path.rglob("*.log"))  # nor its folder


def test_cli_error_after_start_is_in_the_run_log(tiny_mnist: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert run_train_cli(*TINY_CLI, f"hydra.run.dir={run}", data_dir=tiny_mnist).returncode == 0
    wider = run_train_cli(
        *TINY_CLI,
        "model.generator_width=16",
        f"hydra.run.dir={run}",
        "ckpt_path=last",
        data_dir=tiny_mnist,
    )
    error = wider.stderr.strip().splitlines()[-1]
    assert error.startswith("error: ") and "trained with other sizes" in error
    assert error in (run / "train.log").read_text()
