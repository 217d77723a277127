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


# Named functions rather than lambdas, so that a model holding them pickles (ddp_spawn).


def _bce_discriminator(real: Tensor, fake: Tensor) -> Tensor:
    # -log D(x) - log(1 - D(G(z))), written with softplus for numerical stability.
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def _minimax_generator(fake: Tensor) -> Tensor:
    return -F.softplus(fake).mean()  # minimises log(1 - D(G(z)))


def _non_saturating_generator(fake: Tensor) -> Tensor:
    return F.softplus(-fake).mean()  # maximises log D(G(z))


def _hinge_generator(fake: Tensor) -> Tensor:
    return -fake.mean()


def _hinge_discriminator(real: Tensor, fake: Tensor) -> Tensor:
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


LOSSES = {
    # Goodfellow et al.: G minimises log(1 - D(G(z))); its gradient vanishes when D wins.
    "minimax": AdversarialLoss(_minimax_generator, _bce_discriminator),
    # G maximises log D(G(z)) instead: same fixed point, strong gradients early on.
    "non_saturating": AdversarialLoss(_non_saturating_generator, _bce_discriminator),
    "hinge": AdversarialLoss(_hinge_generator, _hinge_discriminator),
}


def get_loss(name: str) -> AdversarialLoss:
    if name not in LOSSES:
        raise ConfigError(f"unknown GAN loss {name!r}; choose one of {sorted(LOSSES)}")
    return LOSSES[name]
