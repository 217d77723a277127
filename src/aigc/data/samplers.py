"""Training data in an order that depends only on (seed, epoch), and a loader that resumes in the
middle of an epoch, so that resumed runs replay the uninterrupted run's batches exactly."""

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler


class _EpochSeeded(Sampler[int]):
    """A sampler whose order depends only on ``seed + epoch``.

    A plain ``RandomSampler`` draws its order from the global RNG, whose state a checkpoint does
    not hold; these get their epoch from Lightning (``set_epoch``, called at every epoch start,
    also after a resume), so an interrupted and resumed run sees the same batches as a straight one.
    """

    def __init__(self, num_items: int, seed: int, items_per_epoch: int | None = None) -> None:
        self.num_items = num_items
        self.seed = seed
        self.items_per_epoch = min(items_per_epoch or num_items, num_items)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed + self.epoch)

    def __len__(self) -> int:
        return self.items_per_epoch


class EpochSeededRandomSampler(_EpochSeeded):
    """The first ``items_per_epoch`` of a random permutation of ``range(num_items)``, seeded by
    ``seed + epoch`` (all of it when ``items_per_epoch`` is None)."""

    def __iter__(self) -> Iterator[int]:
        order = torch.randperm(self.num_items, generator=self.generator())
        return iter(order[: self.items_per_epoch].tolist())


class EpochSeededLengthGroupedSampler(_EpochSeeded):
    """Batches of items of about the same length, for models that pad a batch to its longest
    item: a random permutation of ``range(len(lengths))`` (seeded by ``seed + epoch``) is cut
    into pools of ``pool`` batches, each pool is sorted by length and cut into batches, and the
    batches are shuffled. Only whole batches are drawn, so a loader with this ``batch_size``
    gets exactly these batches. Pools, rather than the whole epoch, are sorted so that the items
    that share a batch still change from epoch to epoch."""

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, pool: int = 50) -> None:
        super().__init__(len(lengths), seed, len(lengths) // batch_size * batch_size)
        self.lengths = torch.as_tensor(lengths)
        self.batch_size = batch_size
        self.pool = pool

    def __iter__(self) -> Iterator[int]:
        generator = self.generator()
        order = torch.randperm(self.num_items, generator=generator)[: self.items_per_epoch]
        pools = order.split(self.pool * self.batch_size)
        grouped = torch.cat([p[self.lengths[p].argsort(stable=True)] for p in pools])
        batches = grouped.view(-1, self.batch_size)  # (items_per_epoch // batch_size, batch_size)
        return iter(batches[torch.randperm(len(batches), generator=generator)].flatten().tolist())


class EpochSeededOffsetSampler(_EpochSeeded):
    """``items_per_epoch`` items of ``range(num_items)`` drawn at random, each independently (so one
    may come twice), seeded by ``seed + epoch``.

    They are drawn a block at a time: unlike a permutation, memory stays the same however many
    items there are, such as every token offset of a corpus larger than memory.
    """

    block = 1 << 16

    def __iter__(self) -> Iterator[int]:
        generator = self.generator()
        for start in range(0, self.items_per_epoch, self.block):
            size = min(self.block, self.items_per_epoch - start)
            yield from torch.randint(self.num_items, (size,), generator=generator).tolist()


class ResumableLoader(DataLoader):
    """A DataLoader that resumes in the middle of an epoch.

    Lightning saves its ``state_dict()`` (the batches it has handed out this epoch) in every
    checkpoint and loads it into the resumed run's loader, which then passes over those batches
    before handing out the next one. With a sampler whose order depends only on (seed, epoch), the
    resumed epoch goes on with exactly the batches of the uninterrupted run. Passing over batches
    (rather than indices) works with any sampler, also the distributed one Lightning wraps around
    it; it costs loading them once, which for data in memory is little.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handed_out = 0  # batches of the current epoch
        self._to_skip = 0

    def __iter__(self) -> Iterator[Any]:
        skip, self._to_skip = self._to_skip, 0
        self._handed_out = 0
        for batch in super().__iter__():
            self._handed_out += 1
            if self._handed_out > skip:
                yield batch

    def state_dict(self) -> dict[str, int]:
        return {"batches": self._handed_out}

    def load_state_dict(self, state: dict[str, int]) -> None:
        # A checkpoint from the end of an epoch resumes with the next epoch, from its start.
        batches = state["batches"]
        self._to_skip = batches if batches < len(self) else 0
