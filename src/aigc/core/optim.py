"""Optimizer pieces shared by the families and the benchmarks' plain loops."""

import math
from collections.abc import Iterable

import torch
from torch import nn


def warmup_cosine(step: int, warmup_steps: int, decay_steps: int, min_ratio: float) -> float:
    """LR multiplier: linear warm-up to 1, cosine decay to ``min_ratio`` at ``decay_steps``, flat
    after that."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if step >= decay_steps:
        return min_ratio
    progress = (step - warmup_steps) / max(1, decay_steps - warmup_steps)
    return min_ratio + 0.5 * (1.0 - min_ratio) * (1.0 + math.cos(math.pi * progress))


def weight_decay_groups(params: Iterable[nn.Parameter], weight_decay: float) -> list[dict]:
    """AdamW parameter groups that decay weight matrices only: biases and normalisation gains
    are left free. Parameters that are not trained are left out."""
    params = [p for p in params if p.requires_grad]
    return [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]


def warmup_schedule(
    optimizer: torch.optim.Optimizer,
    warmup_steps: int,
    decay_steps: int | None = None,
    min_ratio: float = 0.0,
) -> dict:
    """Lightning's ``configure_optimizers`` answer: ``optimizer`` with its learning rate warmed
    up linearly over ``warmup_steps`` steps, then cosine-decayed to ``min_ratio`` of it at
    ``decay_steps``, or with ``decay_steps`` None held constant: for runs whose length is not
    known in advance (a time budget) and whose averaged or best weights are what is kept."""
    if decay_steps is None:  # a "decay" to 1 that ends where the warm-up does
        decay_steps, min_ratio = warmup_steps, 1.0
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, warmup_steps, decay_steps, min_ratio)
    )
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
