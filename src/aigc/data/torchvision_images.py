"""MNIST, Fashion-MNIST and CIFAR-10 in torchvision's on-disk layouts, optionally captioned."""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from torchvision.datasets import MNIST, FashionMNIST

from aigc.data.base import removing_new_folders
from aigc.data.captions import caption_set
from aigc.data.image import ImageDataModule, ImageSplit
from aigc.data.image_files import (
    ensure_cifar10_files,
    ensure_idx_files,
    load_cifar10_split,
    load_idx_split,
)
from aigc.errors import ConfigError, DatasetError


@dataclass(frozen=True)
class ImageDataset:
    """What the framework needs to know about one image dataset."""

    ensure_files: Callable[[Path], None]  # (root) -> None; downloads what is missing
    load: Callable[[Path, bool], tuple]  # (root, train) -> (images (N, C, H, W) uint8, labels)
    image_shape: tuple[int, int, int]  # (C, H, W)
    class_names: tuple[str, ...]


DATASETS = {
    "mnist": ImageDataset(
        partial(ensure_idx_files, dataset_cls=MNIST),
        partial(load_idx_split, dataset_cls=MNIST),
        (1, 28, 28),
        tuple(MNIST.classes),
    ),
    "fashion_mnist": ImageDataset(
        partial(ensure_idx_files, dataset_cls=FashionMNIST),
        partial(load_idx_split, dataset_cls=FashionMNIST),
        (1, 28, 28),
        tuple(FashionMNIST.classes),
    ),
    "cifar10": ImageDataset(
        ensure_cifar10_files,
        load_cifar10_split,
        (3, 32, 32),
        ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    ),
}


class TorchvisionImageDataModule(ImageDataModule):
    """A torchvision image dataset, read from ``data_dir`` and downloaded there when missing.

    With ``captions`` (a caption set of ``aigc.data.captions``, e.g. ``digits``) every image also
    gets a caption, drawn once from the set's training templates, seeded by ``seed``.
    """

    def __init__(
        self,
        dataset: str,
        data_dir: str,
        captions: str | None = None,
        batch_size: int = 64,
        val_fraction: float = 0.1,
        val_images: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        seed: int = 0,
        cache_dir: str = ".cache",
        group_by_length: bool = False,
    ) -> None:
        super().__init__(
            batch_size, num_workers, val_fraction, val_images, cache_dir, group_by_length
        )
        if dataset not in DATASETS:
            raise ConfigError(
                f"unknown image dataset {dataset!r}; choose one of {sorted(DATASETS)}"
            )
        self.save_hyperparameters()
        self.spec = DATASETS[dataset]
        self.captions = None if captions is None else caption_set(captions)
        if self.captions is not None and self.captions.num_classes != len(self.spec.class_names):
            raise ConfigError(
                f"data.captions={captions} describes {self.captions.num_classes} classes, "
                f"but {dataset} has {len(self.spec.class_names)}"
            )
        self.root = Path(data_dir).expanduser()

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.spec.image_shape

    @property
    def class_names(self) -> list[str]:
        return list(self.spec.class_names)

    @property
    def has_labels(self) -> bool:
        return True

    @property
    def has_texts(self) -> bool:
        return self.captions is not None

    def sample_prompts(self) -> list[str]:
        return self.captions.sample_prompts()

    def prompts(self, heldout: bool) -> list[tuple[str, int]] | None:
        return None if self.captions is None else self.captions.prompts(heldout)

    def caption_label(self, caption: str) -> int | None:
        return None if self.captions is None else self.captions.label_of(caption)

    def describe(self) -> str:
        return f"{self.hparams.dataset} in {self.root}"

    def prepare_data(self) -> None:
        # Lightning runs this on one process only, before setup: download what is missing.
        with removing_new_folders(self.root):
            self.spec.ensure_files(self.root)

    def load_split(self, train: bool) -> ImageSplit:
        images, labels = self.spec.load(self.root, train)
        if tuple(images.shape[1:]) != self.image_shape:
            raise DatasetError(
                f"{self.describe()} has images of shape {tuple(images.shape[1:])}, expected "
                f"{self.image_shape}"
            )
        # Each split draws its captions from its own stream, so neither depends on the other.
        texts = (
            None if self.captions is None else self.captions.draw(labels, self.hparams.seed + train)
        )
        return ImageSplit(images, labels, texts)
