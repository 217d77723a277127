"""Datamodules and tokenizers."""

from aigc.data.image import ImageDataModule
from aigc.data.text import TextDataModule

__all__ = ["ImageDataModule", "TextDataModule"]
