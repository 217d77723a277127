"""Shows what the model generates, as training goes: in the loggers and as files in the run
directory."""

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.strategies import FSDPStrategy
from lightning.pytorch.strategies.strategy import _ForwardRedirection

from aigc.callbacks.loggers import log_samples
from aigc.core.module import GenerativeModule
from aigc.core.samples import Samples


class SampleLogger(L.Callback):
    """Samples every ``every_n_steps`` batches and at epoch ends, as the run's ``sampling`` config
    says (the same settings ``generate.py`` takes, so a grid seen here is drawn again, identically,
    by ``generate.py`` from the checkpoint of that step, given the same labels or prompts).

    Samples go to the loggers that show pictures or texts (TensorBoard, MLflow, W&B) and to
    ``<dirpath>/step_XXXXXXX.png`` (or ``.txt``), with the model's ``preview()`` where it has one:
    next to the samples (``step_XXXXXXX_<tag>.png``: images with the captions a text + image model
    writes for them), or in their place for a model that generates nothing (a tokenizer's
    reconstructions). With several
    processes every rank samples, since a sharded model needs all of them to gather its weights,
    and rank 0 writes.
    """

    def __init__(
        self,
        dirpath: str,
        sampling: dict[str, Any],
        every_n_steps: int = 0,
        on_epoch_end: bool = True,
    ) -> None:
        self.dirpath = Path(dirpath)
        self.sampling = sampling
        self.every_n_steps = every_n_steps
        self.on_epoch_end = on_epoch_end
        self._sampled_step: int | None = None

    # A step's samples are drawn once the step is complete: at the next batch's start or the
    # epoch's end. Lightning calls callbacks' on_train_batch_end before the model's, where the EMA
    # weights are updated, so samples drawn there would lag the checkpoint of the same step.
    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        if self._due(trainer):
            self._log(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.on_epoch_end or self._due(trainer):
            self._log(trainer, pl_module)

    def _due(self, trainer: L.Trainer) -> bool:
        step = trainer.global_step
        return self.every_n_steps > 0 and step > 0 and step % self.every_n_steps == 0

    def _log(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        step = trainer.global_step
        if trainer.sanity_checking or trainer.fast_dev_run or step == self._sampled_step:
            return  # each step is sampled once
        self._sampled_step = step
        stem = f"step_{step:07d}"
        shown: list[tuple[Samples | None, str, str]] = []  # (samples, tag, file stem)
        if isinstance(pl_module, GenerativeModule):
            condition = pl_module.grid_condition()
            samples = self._call(trainer, pl_module, "sample_from_config", self.sampling, condition)
            shown.append((samples, pl_module.sample_tag(self.sampling), stem))
            stem = f"{stem}_{pl_module.preview_tag}"  # the preview comes second
        shown.append((self._call(trainer, pl_module, "preview"), pl_module.preview_tag, stem))
        if not trainer.is_global_zero:
            return
        for samples, tag, name in shown:
            if samples is None:
                continue
            samples.save(self.dirpath / name)
            for logger in trainer.loggers:
                log_samples(logger, samples, tag, step)

    def _call(self, trainer: L.Trainer, pl_module: L.LightningModule, method: str, *args) -> Any:
        """``pl_module.<method>(*args)``, run inside the FSDP wrapper's forward under FSDP: it
        gathers a layer's weights only while the wrapper runs, and called directly, the model
        would see its weight shards. Lightning reaches ``training_step`` the same way."""
        strategy = trainer.strategy
        if isinstance(strategy, FSDPStrategy):
            redirect = _ForwardRedirection()
            return redirect(strategy.model, pl_module, method, *args)
        return getattr(pl_module, method)(*args)
