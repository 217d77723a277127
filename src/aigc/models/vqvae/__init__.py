"""The VQ-VAE: an image tokenizer, images to grids of codes and back."""

from aigc.models.vqvae.module import VQVAE

__all__ = ["VQVAE"]
