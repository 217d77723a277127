"""The VQ-VAE: an image tokenizer, images to grids of codes and back."""

from aigc.models.image_tokenizer.module import ImageTokenizer

__all__ = ["ImageTokenizer"]
