"""Shows what the model generates, as training goes: TensorBoard and files in the run directory."""

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.strategies import FSDPStrategy
from lightning.pytorch.strategies.strategy import _ForwardRedirection
from torchvision.utils import make_grid, save_image


class SampleLogger(L.Callback):
    """Logs ``pl_module.sample_for_logging()`` every ``every_n_steps`` batches and at epoch ends.

    The model decides what a sample is: an image batch ``(N, C, H, W)`` in [-1, 1] becomes a grid
    (TensorBoard's images tab and ``<dirpath>/step_XXXXXXX.png``), a string becomes text (the text
    tab and a ``.txt`` file). With several processes every rank samples, since a sharded model
    needs all of them to gather its weights, and rank 0 writes.
    """

    def __init__(self, dirpath: str, every_n_steps: int = 0, on_epoch_end: bool = True) -> None:
        self.dirpath = Path(dirpath)
        self.every_n_steps = every_n_steps
        self.on_epoch_end = on_epoch_end

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        step = trainer.global_step
        if self.every_n_steps > 0 and step % self.every_n_steps == 0:
            self._log(trainer, pl_module, tag="samples/step")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.on_epoch_end:
            self._log(trainer, pl_module, tag="samples/epoch_end")

    def _log(self, trainer: L.Trainer, pl_module: L.LightningModule, tag: str) -> None:
        if trainer.sanity_checking or trainer.fast_dev_run:
            return
        if not hasattr(pl_module, "sample_for_logging"):
            return  # a model that generates nothing, such as a classifier
        sample = _sample(trainer, pl_module)
        if not trainer.is_global_zero:
            return
        step = trainer.global_step
        tensorboards = [
            lg.experiment for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)
        ]
        self.dirpath.mkdir(parents=True, exist_ok=True)
        stem = self.dirpath / f"step_{step:07d}"
        if isinstance(sample, torch.Tensor):
            grid = make_grid(sample.float().cpu(), nrow=8, normalize=True, value_range=(-1, 1))
            save_image(grid, stem.with_suffix(".png"))
            for tb in tensorboards:
                tb.add_image(tag, grid, global_step=step)
        else:
            stem.with_suffix(".txt").write_text(sample, encoding="utf-8")
            for tb in tensorboards:
                # Markdown collapses plain newlines; a code block keeps the text as generated.
                tb.add_text(tag, "```\n" + sample + "\n```", global_step=step)


def _sample(trainer: L.Trainer, pl_module: L.LightningModule) -> torch.Tensor | str:
    """``pl_module.sample_for_logging()``, run inside the FSDP wrapper's forward under FSDP.

    FSDP gathers a layer's weights only while the wrapper runs; called directly, the model would
    see its weight shards. Lightning reaches ``training_step`` the same way.
    """
    strategy = trainer.strategy
    if isinstance(strategy, FSDPStrategy):
        return _ForwardRedirection()(strategy.model, pl_module, "sample_for_logging")
    return pl_module.sample_for_logging()
