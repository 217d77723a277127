"""A run ends with a validation pass, so that its final metrics describe its final weights."""

import lightning as L


class FinalValidation(L.Callback):
    """Remembers the step of the last validation, to tell (``needed``) whether a run must validate
    once more after ``fit``: when training ran on past it (``trainer.max_steps=200`` with
    ``val_check_interval=250``, say)."""

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
        return (
            not (no_validation or trainer.interrupted)
            and self.validated_step != trainer.global_step
        )
