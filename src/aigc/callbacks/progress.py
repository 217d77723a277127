"""The progress bar."""

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar


class ProgressBar(TQDMProgressBar):
    """Lightning's TQDM progress bar, which in a run resumed in the middle of an epoch also shows
    the epoch, its length and the batches already done (Lightning does not call
    ``on_train_epoch_start`` when it resumes mid-epoch, and the bar would read ``Training: 83/?``).
    """

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self._epoch_shown: int | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        self._epoch_shown = trainer.current_epoch

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._epoch_shown != trainer.current_epoch:  # resumed mid-epoch
            self.on_train_epoch_start(trainer)
            bar = self.train_progress_bar
            bar.n = bar.initial = bar.last_print_n = batch_idx  # the rate counts this run's batches
            bar.refresh()
