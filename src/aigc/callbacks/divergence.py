"""Noticing a run whose loss became NaN or infinite, before it trains on (and saves) garbage."""

from typing import Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch.optim import Optimizer

from aigc.errors import AigcError, ConfigError
from aigc.utils.log_steps import logs_this_step


class TrainingDiverged(AigcError):
    """The loss became NaN or infinite."""


_NONE = 2**62  # the first bad step while there is none


class DivergenceGuard(Callback):
    """Watches every loss that is backpropagated (both of the GAN's, the others' one).

    ``on_nonfinite="stop"``: the run ends with one error line at the first NaN or infinite loss,
    before another checkpoint is written, so the last checkpoint on disk holds finite weights.
    The check is a flag kept on the device; the host reads it every step on a CPU, and on GPUs at
    logging steps, epoch ends and before validation, which is not a sync per step.
    ``on_nonfinite="skip"``: a step with such a loss is skipped (its optimizer step is not taken;
    this reads the flag every step) and counted in ``skipped_steps``.
    """

    def __init__(self, on_nonfinite: Literal["stop", "skip"] = "stop") -> None:
        if on_nonfinite not in ("stop", "skip"):
            raise ConfigError(
                f"callbacks.divergence.on_nonfinite must be stop or skip, not {on_nonfinite!r}"
            )
        self.on_nonfinite = on_nonfinite
        self.skipped_steps = 0
        self._first_bad_step: torch.Tensor | None = None  # () long
        self._step_is_bad: torch.Tensor | None = None  # () bool: this step's losses so far

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._first_bad_step = torch.tensor(_NONE, device=pl_module.device)
        self._step_is_bad = torch.tensor(False, device=pl_module.device)

    def on_before_backward(
        self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor
    ) -> None:
        bad = ~torch.isfinite(loss.detach()).all()
        self._step_is_bad = self._step_is_bad | bad
        step = torch.where(bad, trainer.global_step, _NONE)
        self._first_bad_step = torch.minimum(self._first_bad_step, step)

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Optimizer
    ) -> None:
        if self.on_nonfinite != "skip":
            return
        # Every rank must skip alike: the gradients were averaged over ranks already.
        bad = trainer.strategy.reduce(self._step_is_bad.float(), reduce_op="sum") > 0
        self._step_is_bad = torch.zeros_like(self._step_is_bad)
        if bad.item():
            self.skipped_steps += 1
            optimizer.zero_grad(set_to_none=True)  # optimizers skip parameters without grads
            pl_module.log("skipped_steps", float(self.skipped_steps), reduce_fx="max")

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: object
    ) -> None:
        if pl_module.device.type == "cpu" or logs_this_step(trainer):
            self._check(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check(trainer)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check(trainer)

    def _check(self, trainer: L.Trainer) -> None:
        if self.on_nonfinite != "stop" or self._first_bad_step is None:
            return
        # The earliest bad step of any rank, so that every rank stops alike.
        first = int(trainer.strategy.reduce(self._first_bad_step.clone(), reduce_op="min"))
        if first != _NONE:
            raise TrainingDiverged(
                f"the loss became NaN or infinite at step {first}; lower model.lr, train in fp32 "
                "(trainer.precision=32), or skip such steps: "
                "callbacks.divergence.on_nonfinite=skip"
            )
