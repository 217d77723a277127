"""What every datamodule shares: dict batches, the sizes a model takes from the data, loaders."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from aigc.data.samplers import ResumableLoader
from aigc.errors import ConfigError, check_positive

DATA_DIR_HINT = (
    "or point paths.data_dir (environment variable AIGC_DATA_DIR) at a folder that has it"
)


@contextmanager
def removing_new_folders(path: Path) -> Iterator[None]:
    """Runs a download into ``path``; when it fails, removes the folders it made that are still
    empty (``path`` itself, or ``MNIST/raw`` inside an existing data folder), so that a failed
    start leaves no empty data folders behind."""
    existing = Path(path).absolute()
    while not existing.exists():
        existing = existing.parent
    before = {child.name for child in existing.iterdir()} if existing.is_dir() else set()
    try:
        yield
    except BaseException:
        for child in existing.iterdir() if existing.is_dir() else ():
            if child.name not in before and child.is_dir():
                _remove_empty_folders(child)
        raise


def _remove_empty_folders(top: Path) -> None:
    """Removes ``top`` and the folders below it that hold no files, deepest first."""
    folders = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
    for folder in [*folders, top]:
        with suppress(OSError):  # it holds a file: keep it
            folder.rmdir()


class DictDataset(Dataset):
    """Rows of named, equally long columns (tensors or lists); row i is ``{name: column[i]}``.

    The default collate function turns a list of rows into a dict batch: tensors are stacked,
    strings gathered into lists.
    """

    def __init__(self, **columns: torch.Tensor | Sequence[Any]) -> None:
        lengths = {name: len(column) for name, column in columns.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"columns of different lengths: {lengths}")
        self.columns = columns

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {name: column[index] for name, column in self.columns.items()}


class AigcDataModule(L.LightningDataModule):
    """A datamodule whose batches are dicts, and that says what they hold.

    ``batch_keys`` are the batch entries (``image``, ``label``, ``text``, ``tokens``): models
    declare the ones they train on, and a model paired with data that lacks one is refused before
    anything runs. ``model_kwargs()`` are the model constructor arguments that the data decides
    (image shape, vocabulary, classes), so that no size is typed twice. ``class_names`` names the
    classes, where there are any. Subclasses save ``batch_size``, ``num_workers`` and
    ``pin_memory`` as hyperparameters.
    """

    def __init__(self, batch_size: int, num_workers: int) -> None:
        """Refuses the loader settings that cannot work, with a ConfigError."""
        super().__init__()
        check_positive("data", batch_size=batch_size)
        if num_workers < 0:
            raise ConfigError(f"data.num_workers={num_workers}: must be 0 or more")

    @property
    def batch_keys(self) -> frozenset[str]:
        raise NotImplementedError

    @property
    def class_names(self) -> list[str] | None:
        return None

    def model_kwargs(self) -> dict[str, Any]:
        raise NotImplementedError

    def make_loader(self, dataset: Dataset, train: bool = False, **kwargs: Any) -> DataLoader:
        """A DataLoader with this datamodule's batch size, workers and memory pinning; worker
        processes, when there are any, stay alive between epochs. The training loader resumes in
        the middle of an epoch (``ResumableLoader``).

        Each loader draws its workers' seeds from a generator of its own: from the global one,
        starting an epoch would change the random numbers training draws (dropout, say), and a
        resumed run, which starts its epoch at another moment, would draw others."""
        hp = self.hparams
        loader = ResumableLoader if train else DataLoader
        return loader(
            dataset,
            batch_size=hp.batch_size,
            num_workers=hp.num_workers,
            pin_memory=hp.pin_memory,
            persistent_workers=hp.num_workers > 0,
            generator=torch.Generator().manual_seed(hp.get("seed", 0)),
            **kwargs,
        )
