"""What the datamodules share: DataLoader construction and the data-folder hint of errors."""

from typing import Any

from torch.utils.data import DataLoader, Dataset

DATA_DIR_HINT = (
    "or point paths.data_dir (environment variable AIGC_DATA_DIR) at a folder that has it"
)


def make_loader(
    dataset: Dataset, batch_size: int, num_workers: int, pin_memory: bool, **kwargs: Any
) -> DataLoader:
    """A DataLoader that keeps its worker processes alive between epochs when it has any."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        **kwargs,
    )
