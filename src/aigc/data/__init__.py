"""Datamodules and tokenizers."""

from aigc.data.image import ImageDataModule

__all__ = ["ImageDataModule"]
