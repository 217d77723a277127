"""Datamodules: dict batches of images, labels, captions or tokens, and the sizes models need."""

from aigc.data.base import AigcDataModule
from aigc.data.image import ImageDataModule
from aigc.data.image_folder import ImageFolderDataModule
from aigc.data.text import TextDataModule
from aigc.data.torchvision_images import TorchvisionImageDataModule

__all__ = [
    "AigcDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "TextDataModule",
    "TorchvisionImageDataModule",
]
