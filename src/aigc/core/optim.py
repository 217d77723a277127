"""Optimizer pieces shared by the families and the benchmarks' plain loops."""

import math
from collections.abc import Callable, Iterable

import lightning as L
import torch
from lightning.pytorch.callbacks import Timer
from torch import nn

from aigc.errors import ConfigError


def warmup_cosine(step: int, warmup_steps: int, decay_steps: int, min_ratio: float) -> float:
    """LR multiplier: linear warm-up to 1, cosine decay to ``min_ratio`` at ``decay_steps``, flat
    after that."""
    return _warmup_cosine(
        step, warmup_steps, (step - warmup_steps) / max(1, decay_steps - warmup_steps), min_ratio
    )


def _warmup_cosine(step: int, warmup_steps: int, progress: float, min_ratio: float) -> float:
    """Linear warm-up over ``warmup_steps``, then a cosine from 1 at ``progress`` 0 down to
    ``min_ratio`` at ``progress`` 1, flat after that."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(progress, 1.0)
    return min_ratio + 0.5 * (1.0 - min_ratio) * (1.0 + math.cos(math.pi * progress))


def weight_decay_groups(params: Iterable[nn.Parameter], weight_decay: float) -> list[dict]:
    """AdamW parameter groups that decay weight matrices only: biases and normalisation gains
    are left free. Parameters that are not trained are left out."""
    params = [p for p in params if p.requires_grad]
    return [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]


def warmup_schedule(optimizer: torch.optim.Optimizer, module: L.LightningModule) -> dict:
    """Lightning's ``configure_optimizers`` answer for ``module``, whose hyperparameters describe
    the schedule: ``optimizer``'s learning rate warms up linearly over ``warmup_steps`` steps to
    ``lr``, then decays (cosine) to ``min_lr`` at ``lr_decay_steps``; with ``lr_decay_steps``
    None, at the end of the run: ``trainer.max_steps``, else the steps its ``max_epochs`` give,
    else, for a run bounded only by a time budget (``trainer.max_time``), as the budget is spent.
    ``min_lr`` equal to ``lr`` holds the rate constant."""
    hp, trainer = module.hparams, module.trainer
    warmup_steps, min_ratio = hp.warmup_steps, hp.min_lr / hp.lr
    steps = hp.lr_decay_steps or trainer.estimated_stepping_batches  # max_steps, else max_epochs'
    if 0 < steps < math.inf:
        return _lambda_schedule(
            optimizer, lambda step: warmup_cosine(step, warmup_steps, int(steps), min_ratio)
        )
    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
    if timer is None or timer.time_remaining() is None:
        raise ConfigError(
            "model.lr_decay_steps is null and the run has no length: set it, or "
            "trainer.max_steps, trainer.max_epochs or trainer.max_time"
        )

    def spent() -> float:
        """The share of the time budget spent. The Timer's state is saved in checkpoints, so a
        resumed run goes on where it stopped; every process takes rank 0's clock, so that their
        rates, and so their weights, stay the same."""
        elapsed = timer.time_elapsed()
        return trainer.strategy.broadcast(elapsed / (elapsed + timer.time_remaining()))

    return _lambda_schedule(
        optimizer, lambda step: _warmup_cosine(step, warmup_steps, spent(), min_ratio)
    )


def _lambda_schedule(optimizer: torch.optim.Optimizer, multiplier: Callable[[int], float]) -> dict:
    # A lambda, not a callable object: LambdaLR would save an object's attributes in checkpoints.
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, multiplier)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
