"""Checkpoints survive failed writes: written beside their target and renamed into place, and a
resume from an unreadable last.ckpt falls back to the newest readable one."""

import errno
import logging
from pathlib import Path

import pytest
import torch
from conftest import tiny_run

from aigc.callbacks import SafeCheckpointIO
from aigc.callbacks import checkpoint as checkpoint_module
from aigc.errors import CheckpointError
from aigc.train import train


def test_a_failed_write_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    io = SafeCheckpointIO()
    target = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"step": torch.tensor(1)}, target)
    assert torch.load(target, weights_only=True)["step"] == 1
    written_to = []
    real_open = open

    class FillsUp:
        """A file on a disk that fills up after a few bytes."""

        def __init__(self, name, mode) -> None:
            written_to.append(Path(name))
            self.file = real_open(name, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self.file.close()

        def write(self, data) -> None:
            self.file.write(bytes(data[:16]))
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_module, "open", FillsUp, raising=False)
    with pytest.raises(
        CheckpointError, match=r"could not write the checkpoint .*last\.ckpt: No sp"
    ):
        io.save_checkpoint({"step": torch.tensor(2)}, target)
    # The write went to the checkpoint's own folder (not $TMPDIR), and nothing of it is left.
    assert written_to == [target.with_name("last.ckpt.partial")]
    assert sorted(p.name for p in target.parent.iterdir()) == ["last.ckpt"]
    assert torch.load(target, weights_only=True)["step"] == 1


def test_resume_falls_back_from_an_unreadable_last_checkpoint(
    make_cfg, tiny_mnist: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def run(*overrides: str) -> None:
        quiet = ("logger=none", "callbacks.samples.every_n_steps=0")
        train(tiny_run(make_cfg, tiny_mnist, *quiet, *overrides))

    run("trainer.max_epochs=2")
    folder = tmp_path / "run" / "checkpoints"
    last = folder / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])  # cut short, as by a kill during a copy
    (folder / "epoch_002.ckpt.partial").write_bytes(b"left by a killed run")

    with caplog.at_level(logging.WARNING, logger="aigc.core.checkpoints"):
        run("trainer.max_epochs=3", "ckpt_path=last")
    assert "resuming from" in caplog.text and "epoch_001-step_0000006.ckpt" in caplog.text
    assert torch.load(last, weights_only=True)["global_step"] == 9  # 3 epochs of 3 batches
    assert not list(folder.glob("*.partial"))

    for checkpoint in folder.glob("*.ckpt"):
        checkpoint.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"last\.ckpt is not a readable checkpoint"):
        run("trainer.max_epochs=4", "ckpt_path=last")
