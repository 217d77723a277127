"""Adversarial objectives on raw discriminator logits."""

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from aigc.errors import ConfigError

Tensor = torch.Tensor


@dataclass(frozen=True)
class AdversarialLoss:
    generator: Callable[[Tensor], Tensor]  # fake logits -> loss
    discriminator: Callable[[Tensor, Tensor], Tensor]  # (real logits, fake logits) -> loss


def _bce_discriminator(real: Tensor, fake: Tensor) -> Tensor:
    # -log D(x) - log(1 - D(G(z))), written with softplus for numerical stability.
    return F.softplus(-real).mean() + F.softplus(fake).mean()


LOSSES = {
    # Goodfellow et al.: G minimises log(1 - D(G(z))); its gradient vanishes when D wins.
    "minimax": AdversarialLoss(lambda fake: -F.softplus(fake).mean(), _bce_discriminator),
    # G maximises log D(G(z)) instead: same fixed point, strong gradients early on.
    "non_saturating": AdversarialLoss(lambda fake: F.softplus(-fake).mean(), _bce_discriminator),
    "hinge": AdversarialLoss(
        lambda fake: -fake.mean(),
        lambda real, fake: F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean(),
    ),
}


def get_loss(name: str) -> AdversarialLoss:
    if name not in LOSSES:
        raise ConfigError(f"unknown GAN loss {name!r}; choose one of {sorted(LOSSES)}")
    return LOSSES[name]
