"""A user's own images: a folder with a metadata file, in the layout of Hugging Face's
``imagefolder`` loader.

    my_images/
      metadata.jsonl      {"file_name": "a.png", "text": "a red circle", "label": "circle"} per line
      a.png
      more/b.jpg

``metadata.csv`` with a header row works the same way. ``file_name`` is required; ``text``
(captions) and ``label`` (class names or indices) are optional, and decide whether the data can
train text- or label-conditional models. Images of any size and mode are converted to
``channels`` (3: RGB, 1: grayscale), resized so that the shorter side is ``image_size`` and
centre-cropped to a square.
"""

import csv
import json
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from PIL import Image, UnidentifiedImageError
from torchvision.transforms.v2.functional import center_crop, pil_to_tensor, resize

from aigc.data.image import ImageDataModule, ImageSplit
from aigc.data.pixels import to_signed_unit_range
from aigc.errors import ConfigError, DatasetError

METADATA_FILES = ("metadata.jsonl", "metadata.csv")
_MODES = {1: "L", 3: "RGB"}
_GRAYSCALE = ("1", "L", "LA", "I", "I;16", "F")  # PIL modes read as one channel


class ImageFolderDataModule(ImageDataModule):
    """Images listed in ``<path>/metadata.jsonl`` (or ``.csv``), held in memory at ``image_size``.

    The folder has no test split: the validation split (``val_fraction``) serves as one.
    """

    def __init__(
        self,
        path: str,
        image_size: int = 32,
        channels: int = 3,
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
        if channels not in _MODES:
            raise ConfigError(f"data.channels={channels}; choose 3 (RGB) or 1 (grayscale)")
        if image_size < 1:
            raise ConfigError(f"data.image_size={image_size}; give a positive number of pixels")
        self.save_hyperparameters()
        self.folder = Path(path).expanduser()

    @property
    def image_shape(self) -> tuple[int, int, int]:
        size = self.hparams.image_size
        return (self.hparams.channels, size, size)

    @property
    def has_labels(self) -> bool:
        return all("label" in row for row in self.rows)

    @property
    def has_texts(self) -> bool:
        return all("text" in row for row in self.rows)

    @cached_property
    def class_names(self) -> list[str] | None:
        if not self.has_labels:
            return None
        labels = {row["label"] for row in self.rows}
        # Numeric labels keep their order (2 before 10); names are sorted alphabetically.
        return sorted(labels, key=lambda label: (0, int(label)) if label.isdigit() else (1, label))

    def sample_prompts(self) -> list[str]:
        texts = sorted({row["text"] for row in self.rows})
        return texts[:8]

    def prompts(self, heldout: bool) -> list[tuple[str, int]] | None:
        if heldout or not (self.has_labels and self.has_texts):
            return None
        index = {name: i for i, name in enumerate(self.class_names)}
        return sorted({(row["text"], index[row["label"]]) for row in self.rows})

    def describe(self) -> str:
        return f"the image folder {self.folder}"

    @cached_property
    def rows(self) -> list[dict[str, str]]:
        """The metadata file's rows, each with ``file_name`` and any of ``text`` and ``label``."""
        if not self.folder.is_dir():
            raise DatasetError(f"{self.folder} is not a folder; set data.path to your image folder")
        found = [self.folder / name for name in METADATA_FILES if (self.folder / name).is_file()]
        if not found:
            if not any(self.folder.iterdir()):
                raise DatasetError(f"{self.folder} is empty: put images and a metadata file there")
            raise DatasetError(
                f"{self.folder} has no metadata file: add metadata.jsonl (one "
                '{"file_name": ..., "text": ..., "label": ...} per line) or metadata.csv'
            )
        rows = _read_metadata(found[0])
        if not rows:
            raise DatasetError(f"{found[0]} lists no images")
        for number, row in enumerate(rows, start=1):
            if "file_name" not in row:
                raise DatasetError(f"{found[0]}, row {number}: it has no file_name")
        return rows

    def load_split(self, train: bool) -> ImageSplit | None:
        if not train:
            return None
        images = torch.stack([self._read_image(row["file_name"]) for row in self.rows])
        labels = None
        if self.has_labels:
            index = {name: i for i, name in enumerate(self.class_names)}
            labels = torch.tensor([index[row["label"]] for row in self.rows])
        texts = [row["text"] for row in self.rows] if self.has_texts else None
        return ImageSplit(images, labels, texts)

    def _read_image(self, file_name: str) -> torch.Tensor:
        """One image as uint8 ``(C, image_size, image_size)``."""
        path = self.folder / file_name
        if not path.is_file():
            raise DatasetError(f"the metadata of {self.folder} lists {file_name}, which is missing")
        pixels = read_image(path, _MODES[self.hparams.channels])
        size = self.hparams.image_size
        return center_crop(resize(pixels, size, antialias=True), [size, size])


def read_image(path: str | Path, mode: str | None = None) -> torch.Tensor:
    """An image file as uint8 ``(C, H, W)``, converted to the PIL ``mode`` ("L" or "RGB"); with
    no mode, grayscale images keep one channel and any other becomes RGB."""
    if not Path(path).is_file():
        raise DatasetError(f"{path}: no such image file")
    try:
        with Image.open(path) as image:
            mode = mode or ("L" if image.mode in _GRAYSCALE else "RGB")
            return pil_to_tensor(image.convert(mode))
    except (UnidentifiedImageError, OSError) as err:
        raise DatasetError(f"{path} is not a readable image ({err})") from err


def read_images(paths: Sequence[str | Path]) -> torch.Tensor:
    """Image files of one size as ``(N, C, H, W)`` in [-1, 1], as a model reads them."""
    pixels = [read_image(path) for path in paths]
    for path, image in zip(paths, pixels, strict=True):
        if image.shape != pixels[0].shape:
            raise DatasetError(
                f"{path} is {_shape(image)} but {paths[0]} is {_shape(pixels[0])}: give images "
                "of one size"
            )
    return to_signed_unit_range(torch.stack(pixels))


def _shape(image: torch.Tensor) -> str:
    channels, height, width = image.shape
    return f"{width}x{height} with {channels} channel{'s' if channels > 1 else ''}"


def _read_metadata(path: Path) -> list[dict[str, str]]:
    """Rows of a metadata.jsonl or metadata.csv file, with every value as a string."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"{path} cannot be read ({err})") from err
    if path.suffix == ".csv":
        return [_strings(row) for row in csv.DictReader(text.splitlines())]
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DatasetError(f"{path}, line {number}: not a JSON object ({err})") from err
        if not isinstance(row, dict):
            raise DatasetError(f"{path}, line {number}: not a JSON object")
        rows.append(_strings(row))
    return rows


def _strings(row: dict[str, Any]) -> dict[str, str]:
    """A row's non-empty values as strings (a label may be written as 7 or "7")."""
    return {key: str(value) for key, value in row.items() if value not in (None, "")}
