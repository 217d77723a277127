"""What image datamodules share: uint8 images held in memory, a seeded train/val split, and
batches of ``image`` (with ``label`` and ``text`` where the data has them)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from aigc.data.base import AigcDataModule, DictDataset
from aigc.data.image_codes import ImageTokenizer, image_codes
from aigc.data.pixels import to_signed_unit_range
from aigc.data.samplers import EpochSeededLengthGroupedSampler, EpochSeededRandomSampler
from aigc.errors import ConfigError, DatasetError, check_positive


@dataclass(frozen=True)
class ImageSplit:
    """One split of an image dataset: uint8 images ``(N, C, H, W)``, and labels ``(N,)`` and
    captions where the data has them, and the images' codes ``(N, tokens_per_image)`` once a
    model over codes asked for them (``ImageDataModule.tokenize_images``)."""

    images: torch.Tensor
    labels: torch.Tensor | None = None
    texts: list[str] | None = None
    codes: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: torch.Tensor) -> ImageSplit:
        return ImageSplit(
            self.images[index],
            None if self.labels is None else self.labels[index],
            None if self.texts is None else [self.texts[i] for i in index.tolist()],
            None if self.codes is None else self.codes[index],
        )

    def dataset(self) -> DictDataset:
        columns = {
            "image": self.images,
            "label": self.labels,
            "text": self.texts,
            "codes": self.codes,
        }
        return DictDataset(**{name: c for name, c in columns.items() if c is not None})


class ImageDataModule(AigcDataModule):
    """Serves an image dataset as uint8 tensors held in memory.

    Batches travel to the device as uint8 (4x less to copy) and become float in [-1, 1] there, in
    ``on_after_batch_transfer``. The training split is divided into train/val with a seeded split;
    validation runs on its first ``val_images`` images (None: all of them), the same ones at
    every validation. The dataset's own test split (the whole validation split where it has none)
    is the test set.
    Subclasses say what the images are (``image_shape``, ``has_labels``, ``has_texts``,
    ``class_names``) and load them (``load_split``).
    """

    def __init__(
        self,
        batch_size: int,
        num_workers: int,
        val_fraction: float,
        val_images: int | None = None,
        cache_dir: str = ".cache",
        group_by_length: bool = False,
    ) -> None:
        super().__init__(batch_size, num_workers)
        if not 0.0 <= val_fraction < 1.0:
            raise ConfigError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
        check_positive("data", val_images=val_images)
        self.train_set: ImageSplit | None = None
        self.val_set: ImageSplit | None = None
        self.test_set: ImageSplit | None = None
        self.cache_dir = Path(cache_dir)
        self.group_by_length = group_by_length

    @property
    def image_shape(self) -> tuple[int, int, int]:
        raise NotImplementedError

    @property
    def has_labels(self) -> bool:
        raise NotImplementedError

    @property
    def has_texts(self) -> bool:
        raise NotImplementedError

    def load_split(self, train: bool) -> ImageSplit | None:
        """The training split, or the test split (None where the dataset has none)."""
        raise NotImplementedError

    def sample_prompts(self) -> list[str]:
        """Prompts that sample grids of a text-conditional model show during training."""
        raise NotImplementedError

    def caption_label(self, caption: str) -> int | None:
        """The class a caption names, where the data's captions come from templates over class
        names (the captioning accuracy of eval.py); None otherwise."""
        return None

    def prompts(self, heldout: bool) -> list[tuple[str, int]] | None:
        """(prompt, class) pairs that score a text-conditional model's conditional accuracy:
        prompts worded as in training, or ``heldout`` ones training never saw; None where the
        data has no such prompts."""
        return None

    @property
    def batch_keys(self) -> frozenset[str]:
        keys = {"image", "label" if self.has_labels else None, "text" if self.has_texts else None}
        return frozenset(keys - {None})

    def model_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"image_shape": self.image_shape}
        if self.has_labels:
            kwargs.update(num_classes=len(self.class_names), class_names=self.class_names)
        if self.has_texts:
            kwargs["sample_prompts"] = self.sample_prompts()
        return kwargs

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        if stage in ("fit", "validate", None) and self.train_set is None:
            data = self.load_split(train=True)
            num_val = int(len(data) * hp.val_fraction)
            order = torch.randperm(len(data), generator=torch.Generator().manual_seed(hp.seed))
            if len(data) - num_val < hp.batch_size:
                raise DatasetError(
                    f"{self.describe()} has {len(data) - num_val} training images, fewer than one "
                    f"batch of {hp.batch_size}; lower data.batch_size"
                )
            self.val_set, self.train_set = (
                data.subset(order[:num_val]),
                data.subset(order[num_val:]),
            )
        if stage in ("test", None) and self.test_set is None:
            test = self.load_split(train=False)
            if test is None:
                self.setup("fit")
                test = self.val_set
            self.test_set = test

    def tokenize_images(self, tokenizer: ImageTokenizer) -> None:
        """Adds the codes of an image tokenizer to the loaded splits, so that batches carry them
        (``codes``): encoded once, through the cache in ``cache_dir``."""
        for name in ("train_set", "val_set", "test_set"):
            split = getattr(self, name)
            if split is not None:
                codes = image_codes(split.images, tokenizer, self.cache_dir)
                setattr(self, name, replace(split, codes=codes))

    def describe(self) -> str:
        """The data in a few words, for error messages."""
        raise NotImplementedError

    def train_dataloader(self) -> DataLoader:
        hp, texts = self.hparams, self.train_set.texts
        if not self.group_by_length:
            sampler = EpochSeededRandomSampler(len(self.train_set), hp.seed)
        elif texts is None:
            raise ConfigError(
                f"data.group_by_length=true batches captions of similar length, and "
                f"{self.describe()} has no captions"
            )
        else:  # fewer pads for a model that pads captions to its batch's longest
            lengths = [len(text.encode("utf-8")) for text in texts]
            sampler = EpochSeededLengthGroupedSampler(lengths, hp.batch_size, hp.seed)
        # drop_last: a GAN step on a tiny last batch destabilises BatchNorm statistics.
        return self.make_loader(
            self.train_set.dataset(), train=True, sampler=sampler, drop_last=True
        )

    def val_dataloader(self) -> DataLoader:
        val_set = self.val_set
        if self.hparams.val_images is not None:
            val_set = val_set.subset(torch.arange(min(self.hparams.val_images, len(val_set))))
        return self.make_loader(val_set.dataset())

    def test_dataloader(self) -> DataLoader:
        return self.make_loader(self.test_set.dataset())

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict:
        return {**batch, "image": to_signed_unit_range(batch["image"])}
