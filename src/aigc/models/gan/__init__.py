"""Generative adversarial networks."""

from aigc.models.gan.module import GAN
from aigc.models.gan.network import Discriminator, Generator

__all__ = ["GAN", "Discriminator", "Generator"]
