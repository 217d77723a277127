"""Samplers whose order depends only on (seed, epoch), so that resumed runs replay it exactly."""

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochSeededRandomSampler(Sampler[int]):
    """The first ``num_samples`` of a random permutation of ``range(num_items)``, seeded by
    ``seed + epoch`` (all of it when ``num_samples`` is None).

    A plain ``RandomSampler`` draws its order from the global RNG, whose state a checkpoint does
    not hold; this one gets its epoch from Lightning (``set_epoch``, called at every epoch start,
    also after a resume), so an interrupted and resumed run sees the same batches as a straight one.
    """

    def __init__(self, num_items: int, seed: int, num_samples: int | None = None) -> None:
        self.num_items = num_items
        self.seed = seed
        self.num_samples = min(num_samples or num_items, num_items)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.num_items, generator=generator)
        return iter(order[: self.num_samples].tolist())

    def __len__(self) -> int:
        return self.num_samples
