"""How checkpoints are written: crash-safe files, and a last.ckpt that always holds the final
step."""

import io
import os
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from aigc.errors import CheckpointError

# A checkpoint being written is <name>.ckpt.partial until it is complete.
PARTIAL_SUFFIX = ".partial"


class Checkpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, plus a last.ckpt save when training ends or is interrupted
    between checkpoints, and no partial files left behind by a run that was killed while writing
    one.

    Step-based runs (the language model validates and checkpoints every N steps) would otherwise
    end with a last.ckpt from the last validation, losing the steps after it.
    """

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Lightning warns about a folder that is not empty. Here it never means a mix-up: a run
        # writes there only when it resumes from it, and a fresh run into another run's
        # checkpoints is refused before training (core.checkpoints.resolve_ckpt_path).
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Checkpoint directory .* exists and is not empty")
            super().setup(trainer, pl_module, stage)
        if trainer.is_global_zero and self.dirpath and Path(self.dirpath).is_dir():
            for partial in Path(self.dirpath).glob(f"*{PARTIAL_SUFFIX}"):
                partial.unlink(missing_ok=True)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.save_current_step(trainer)
        super().on_train_end(trainer, pl_module)

    def save_current_step(self, trainer: L.Trainer) -> None:
        """Writes last.ckpt unless this step is saved already: when training ends, and when it is
        interrupted (callbacks.Interruption)."""
        unsaved_steps = self._last_global_step_saved != trainer.global_step
        if self.save_last and unsaved_steps and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


def last_checkpoint_callback(trainer: L.Trainer) -> ModelCheckpoint | None:
    """The checkpoint callback that keeps last.ckpt (trainer.checkpoint_callback is merely the
    first one, which may be the one keeping best.ckpt)."""
    return next((cb for cb in trainer.checkpoint_callbacks if cb.save_last), None)


class SafeCheckpointIO(TorchCheckpointIO):
    """Writes a checkpoint beside its target, syncs it to disk, then renames it into place: a kill
    or a full disk leaves the previous file or the new one, never a truncated one.

    Lightning's own save goes through a temporary file in $TMPDIR; when that is another
    filesystem (a RAM-backed /dev/shm, a cluster node's local /tmp) the final move is a copy,
    which a kill cuts short over the good file. Remote paths (s3://, ...) keep Lightning's way.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        if storage_options is not None or not isinstance(get_filesystem(path), LocalFileSystem):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        path = Path(path)
        partial = path.with_name(path.name + PARTIAL_SUFFIX)
        # Serialised in memory first, as Lightning does: a failed write is then an OSError that
        # says why (torch.save into a file reports only "file write failed").
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(partial, "wb") as file:
                file.write(buffer.getbuffer())
                file.flush()
                os.fsync(file.fileno())
            os.replace(partial, path)  # atomic within one filesystem
        except BaseException as err:
            partial.unlink(missing_ok=True)
            if isinstance(err, OSError):
                raise CheckpointError(
                    f"could not write the checkpoint {path}: {err.strerror or err}"
                ) from err
            raise
        _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """Makes a rename in ``folder`` durable (POSIX; Windows has no folder descriptors)."""
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
