"""Reading torchvision's on-disk image datasets into uint8 tensors, downloading them when absent.

Everything here turns the ways a dataset can be missing or broken into one ``DatasetError`` that
says which file or folder is at fault and what to do, instead of a traceback from deep inside
torchvision.
"""

import gzip
import math
import struct
from pathlib import Path

import torch
from torchvision.datasets import CIFAR10, MNIST
from torchvision.datasets.utils import check_integrity

from aigc.data.base import DATA_DIR_HINT
from aigc.errors import DatasetError, one_line

_IDX_UINT8 = 0x08
_IDX_KINDS = ("images-idx3-ubyte", "labels-idx1-ubyte")


def read_idx(path: Path) -> torch.Tensor:
    """Reads a uint8 IDX file (plain or gzip-compressed), checking its header against its length."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise DatasetError(
            f"{path} cannot be read ({err}): delete it and put a good copy there"
        ) from err
    if len(raw) < 4 or raw[:3] != bytes([0, 0, _IDX_UINT8]):
        raise DatasetError(f"{path} is not a uint8 IDX file: delete it and put a good copy there")
    ndim = raw[3]
    header_len = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", raw[4:header_len]) if len(raw) >= header_len else ()
    if len(dims) != ndim or len(raw) != header_len + math.prod(dims):
        raise DatasetError(
            f"{path} is truncated or corrupt: its header promises shape {tuple(dims)} but it holds "
            f"{len(raw)} bytes; delete it and put a good copy there"
        )
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8, offset=header_len).view(*dims)


def ensure_idx_files(root: Path, dataset_cls: type[MNIST]) -> None:
    """Downloads MNIST or Fashion-MNIST unless all four IDX files (plain or .gz) are present."""
    raw_folder = _idx_folder(root, dataset_cls)
    names = [f"{split}-{kind}" for split in ("train", "t10k") for kind in _IDX_KINDS]
    if not all(_idx_path(raw_folder, name) for name in names):
        _download(
            dataset_cls, root, raw_folder, f"the IDX files (*-ubyte or *-ubyte.gz) in {raw_folder}"
        )


def load_idx_split(
    root: Path, train: bool, dataset_cls: type[MNIST]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Loads one split of MNIST or Fashion-MNIST as ``(images (N, 1, H, W) uint8, labels (N,))``."""
    raw_folder = _idx_folder(root, dataset_cls)
    split = "train" if train else "t10k"
    paths = [
        _idx_path(raw_folder, f"{split}-{kind}") or raw_folder / f"{split}-{kind}"
        for kind in _IDX_KINDS
    ]
    images, labels = (read_idx(path) for path in paths)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DatasetError(
            f"{paths[0]} holds {tuple(images.shape)} but {paths[1].name} holds "
            f"{tuple(labels.shape)}; the two files do not belong together"
        )
    return images.unsqueeze(1), labels.long()


def ensure_cifar10_files(root: Path) -> None:
    """Downloads (or extracts the archive of) CIFAR-10 unless all its batch files are present."""
    folder = root / CIFAR10.base_folder
    if not all((folder / name).exists() for name, _ in _cifar10_files()):
        _download(
            CIFAR10,
            root,
            folder,
            f"{CIFAR10.filename} in {root} (or its extracted batches in {folder})",
        )


def load_cifar10_split(root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Loads one split of CIFAR-10 as ``(images (N, 3, 32, 32) uint8, labels (N,))``."""
    folder = root / CIFAR10.base_folder
    for name, md5 in _cifar10_files():
        if not check_integrity(str(folder / name), md5):
            raise DatasetError(
                f"{folder / name} is missing or corrupt (checksum mismatch): delete it and put a "
                f"good copy there, {DATA_DIR_HINT}"
            )
    dataset = CIFAR10(str(root), train=train)
    images = (
        torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()
    )  # (N,H,W,C) -> (N,C,H,W)
    return images, torch.tensor(dataset.targets, dtype=torch.long)


def _idx_folder(root: Path, dataset_cls: type[MNIST]) -> Path:
    return root / dataset_cls.__name__ / "raw"  # torchvision's layout


def _cifar10_files() -> list[tuple[str, str]]:
    """(file name, md5) of every file torchvision's CIFAR10 reads."""
    meta = CIFAR10.meta
    return [*map(tuple, CIFAR10.train_list + CIFAR10.test_list), (meta["filename"], meta["md5"])]


def _idx_path(folder: Path, name: str) -> Path | None:
    """The plain file if present, else its ``.gz`` twin, else None."""
    for path in (folder / name, folder / f"{name}.gz"):
        if path.exists():
            return path
    return None


def _download(dataset_cls: type, root: Path, folder: Path, what: str) -> None:
    """torchvision's own download (and archive extraction); a failure becomes a DatasetError."""
    try:
        dataset_cls(str(root), download=True)
    except Exception as err:  # urllib, socket and torchvision all raise their own kinds
        raise DatasetError(
            f"{dataset_cls.__name__} is not in {folder} and could not be downloaded. Put {what}, "
            f"{DATA_DIR_HINT}. (Download error: {one_line(err)})"
        ) from err
