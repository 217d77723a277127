"""ModelCheckpoint whose last.ckpt always holds the final step."""

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint


class Checkpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, plus a last.ckpt save when training ends between checkpoints.

    Step-based runs (the language model validates and checkpoints every N steps) would otherwise
    end with a last.ckpt from the last validation, losing the steps after it.
    """

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        unsaved_steps = self._last_global_step_saved != trainer.global_step
        if self.save_last and unsaved_steps and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        super().on_train_end(trainer, pl_module)
