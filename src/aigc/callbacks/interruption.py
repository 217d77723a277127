"""Ctrl-C and SIGTERM (how clusters preempt jobs) end training after the current step, with a
checkpoint to resume from and a non-zero exit status."""

import logging
import signal
from types import FrameType
from typing import Any

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException

from aigc.callbacks.checkpoint import Checkpoint, last_checkpoint_callback

log = logging.getLogger(__name__)

_Handler = Any  # what signal.getsignal returns: a callable, SIG_DFL, SIG_IGN or None


class Interruption(L.Callback):
    """Turns a first Ctrl-C into Lightning's own SIGTERM stop, and saves ``last.ckpt`` when
    training stops that way.

    Lightning stops a run on SIGTERM at the end of a training step, where every state (weights,
    optimizer, LR schedule, EMA, data position) belongs to the same step, so the checkpoint
    resumes exactly. A plain Ctrl-C would instead raise KeyboardInterrupt wherever it lands, in
    the middle of an optimizer step even, and leave nothing to resume from.

    Lightning is told only at a step it resumes from exactly: a signal that arrives during
    validation waits for its end (Lightning would stop in the middle of it), and one during an
    epoch's last step waits for the next epoch's first (Lightning would stop after the epoch's
    end, and resume into a repeated epoch). A second Ctrl-C stops at once, without a checkpoint.
    """

    def __init__(self) -> None:
        self.signal: int | None = None  # the first signal received while training
        self._previous: dict[int, _Handler] = {}
        self._trainer: L.Trainer | None = None
        self._validating = False
        self._pending = False  # received, Lightning not told yet

    @staticmethod
    def of(trainer: L.Trainer) -> "Interruption | None":
        return next((cb for cb in trainer.callbacks if isinstance(cb, Interruption)), None)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning has registered its SIGTERM handler by now: ours passes signals on to it.
        self._trainer = trainer
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._receive)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore()

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        # A signal still waiting has waited through an epoch's last step: this step is the next
        # one, and it ends training even if it is also its epoch's last (an epoch of one batch).
        self._tell_lightning_when_clear(after_epoch_end=True)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._validating = True

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._validating = False
        self._tell_lightning_when_clear()

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, SIGTERMException):
            return
        self.signal = self.signal or signal.SIGTERM  # before training: Lightning's handler
        callback = last_checkpoint_callback(trainer)
        if isinstance(callback, Checkpoint):
            callback.save_current_step(trainer)

    def _receive(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None:
            if signum == signal.SIGINT:  # the user insists
                self._restore()
                raise KeyboardInterrupt
            return
        self.signal = signum
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        log.warning(
            "%s: stopping after this step and saving a checkpoint%s",
            name,
            " (Ctrl-C again stops at once, without one)" if signum == signal.SIGINT else "",
        )
        self._pending = True
        self._tell_lightning_when_clear()

    def _tell_lightning_when_clear(self, after_epoch_end: bool = False) -> None:
        """Passes SIGTERM to Lightning's handler, which ends training after the current step,
        unless that step is in validation or the last of its epoch."""
        if not self._pending or self._validating or self._trainer is None:
            return
        last_of_epoch = self._trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
        if last_of_epoch and not after_epoch_end:
            return
        self._pending = False
        handler = self._previous.get(signal.SIGTERM)
        if callable(handler):
            handler(signal.SIGTERM, None)

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}
