"""A run ends with a validation pass, so that its final metrics describe its final weights."""

import lightning as L


class FinalValidation(L.Callback):
    """Remembers the step of the last validation; ``run`` validates once more after ``fit`` when
    training went on past it (``trainer.max_steps=200`` with ``val_check_interval=250``, say)."""

    def __init__(self) -> None:
        self.validated_step: int | None = None

    @staticmethod
    def of(trainer: L.Trainer) -> "FinalValidation":
        return next(cb for cb in trainer.callbacks if isinstance(cb, FinalValidation))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.validated_step = trainer.global_step

    def needed(self, trainer: L.Trainer) -> bool:
        no_validation = trainer.fast_dev_run or not trainer.limit_val_batches
        stopped = no_validation or trainer.interrupted
        return not stopped and self.validated_step != trainer.global_step

    def run(
        self, trainer: L.Trainer, model: L.LightningModule, datamodule: L.LightningDataModule
    ) -> None:
        # Validations inside fit log at the step index of the batch before them, counted from 0;
        # this one does the same, so that its point sits where the curve expects it.
        loop = trainer.fit_loop.epoch_loop
        loop._batches_that_stepped -= 1
        try:
            trainer.validate(model, datamodule=datamodule, verbose=False)
        finally:
            loop._batches_that_stepped += 1
