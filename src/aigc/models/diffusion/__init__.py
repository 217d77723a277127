"""Denoising diffusion models."""

from aigc.models.diffusion.module import DiffusionModel
from aigc.models.diffusion.network import Denoiser

__all__ = ["Denoiser", "DiffusionModel"]
