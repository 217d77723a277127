"""A LightningDataModule for torchvision image datasets (MNIST, Fashion-MNIST, CIFAR-10)."""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset
from torchvision.datasets import MNIST, FashionMNIST

from aigc.data.image_files import (
    ensure_cifar10_files,
    ensure_idx_files,
    load_cifar10_split,
    load_idx_split,
)
from aigc.data.loading import make_loader
from aigc.data.samplers import EpochSeededRandomSampler
from aigc.errors import ConfigError, DatasetError

Split = tuple[torch.Tensor, torch.Tensor]  # (images (N, C, H, W) uint8, labels (N,) int64)


@dataclass(frozen=True)
class ImageDataset:
    """What the framework needs to know about one image dataset."""

    ensure_files: Callable[[Path], None]  # (root) -> None; downloads what is missing
    load: Callable[[Path, bool], Split]  # (root, train) -> split
    image_shape: tuple[int, int, int]  # (C, H, W)
    num_classes: int


DATASETS = {
    "mnist": ImageDataset(
        partial(ensure_idx_files, dataset_cls=MNIST),
        partial(load_idx_split, dataset_cls=MNIST),
        (1, 28, 28),
        10,
    ),
    "fashion_mnist": ImageDataset(
        partial(ensure_idx_files, dataset_cls=FashionMNIST),
        partial(load_idx_split, dataset_cls=FashionMNIST),
        (1, 28, 28),
        10,
    ),
    "cifar10": ImageDataset(ensure_cifar10_files, load_cifar10_split, (3, 32, 32), 10),
}


def to_signed_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels in [0, 255] -> float in [-1, 1], the range of the generator's tanh output."""
    return images.float().div_(127.5).sub_(1.0)


class ImageDataModule(L.LightningDataModule):
    """Serves an image dataset as uint8 tensors held in memory.

    Batches travel to the device as uint8 (4x less to copy) and become float in [-1, 1] there, in
    ``on_after_batch_transfer``. The training split is divided into train/val with a seeded split;
    the dataset's own test split is the test set.
    """

    modality = "image"

    def __init__(
        self,
        dataset: str,
        data_dir: str,
        batch_size: int = 64,
        val_fraction: float = 0.1,
        num_workers: int = 0,
        pin_memory: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if dataset not in DATASETS:
            raise ConfigError(
                f"unknown image dataset {dataset!r}; choose one of {sorted(DATASETS)}"
            )
        if not 0.0 <= val_fraction < 1.0:
            raise ConfigError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
        self.save_hyperparameters()
        self.spec = DATASETS[dataset]
        self.root = Path(data_dir).expanduser()
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None
        self.test_set: TensorDataset | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.spec.image_shape

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    def model_kwargs(self) -> dict[str, Any]:
        """Constructor arguments that the data, not the config, decides for a model."""
        return {"image_shape": self.image_shape, "num_classes": self.num_classes}

    def prepare_data(self) -> None:
        # Lightning runs this on one process only, before setup: download what is missing.
        self.spec.ensure_files(self.root)

    def setup(self, stage: str | None = None) -> None:
        if stage in ("fit", "validate", None) and self.train_set is None:
            images, labels = self._load(train=True)
            num_val = int(len(images) * self.hparams.val_fraction)
            order = torch.randperm(
                len(images), generator=torch.Generator().manual_seed(self.hparams.seed)
            )
            val_idx, train_idx = order[:num_val], order[num_val:]
            if len(train_idx) < self.hparams.batch_size:
                raise DatasetError(
                    f"{self.hparams.dataset} in {self.root} has {len(train_idx)} training images, "
                    f"fewer than one batch of {self.hparams.batch_size}; lower data.batch_size"
                )
            self.train_set = TensorDataset(images[train_idx], labels[train_idx])
            self.val_set = TensorDataset(images[val_idx], labels[val_idx])
        if stage in ("test", None) and self.test_set is None:
            self.test_set = TensorDataset(*self._load(train=False))

    def train_dataloader(self) -> DataLoader:
        sampler = EpochSeededRandomSampler(len(self.train_set), self.hparams.seed)
        # drop_last: a GAN step on a tiny last batch destabilises BatchNorm statistics.
        return self._loader(self.train_set, sampler=sampler, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set)

    def on_after_batch_transfer(self, batch: Split, dataloader_idx: int) -> Split:
        images, labels = batch
        return to_signed_unit_range(images), labels

    def _load(self, train: bool) -> Split:
        images, labels = self.spec.load(self.root, train)
        if tuple(images.shape[1:]) != self.image_shape:
            raise DatasetError(
                f"{self.hparams.dataset} in {self.root} has images of shape "
                f"{tuple(images.shape[1:])}, expected {self.image_shape}"
            )
        return images, labels

    def _loader(self, dataset: TensorDataset, **kwargs: Any) -> DataLoader:
        hp = self.hparams
        return make_loader(dataset, hp.batch_size, hp.num_workers, hp.pin_memory, **kwargs)
