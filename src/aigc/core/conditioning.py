"""What a conditional model is told to generate: class labels or text prompts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from aigc.core.samples import SAMPLES_PER_ROW
from aigc.errors import ConfigError

# The values of `model.conditioning`: what a model consumes besides noise.
CONDITIONING_KINDS = ("label", "text")


@dataclass(frozen=True)
class Condition:
    """Class labels ``(N,)`` or N text prompts: one entry per sample, or per row of samples."""

    labels: torch.Tensor | None = None
    texts: list[str] | None = None

    def __post_init__(self) -> None:
        if (self.labels is None) == (self.texts is None):
            raise ValueError("a Condition holds either labels or texts")
        if self.labels is not None and self.labels.dim() != 1:
            raise ValueError(f"labels must be 1-D, got shape {tuple(self.labels.shape)}")

    @staticmethod
    def of(
        labels: int | Sequence[int] | None = None, texts: str | Sequence[str] | None = None
    ) -> Condition | None:
        """A Condition from one label or prompt or a list of them; None when neither is given."""
        if labels is None and texts is None:
            return None
        if labels is not None and texts is not None:
            raise ConfigError("give class labels or prompts, not both")
        if labels is not None:
            return Condition(labels=torch.as_tensor(labels, dtype=torch.long).reshape(-1))
        return Condition(texts=[texts] if isinstance(texts, str) else [str(t) for t in texts])

    @property
    def kind(self) -> str:
        """``"label"`` or ``"text"``, as in ``model.conditioning``."""
        return "label" if self.labels is not None else "text"

    def __len__(self) -> int:
        return len(self.labels) if self.labels is not None else len(self.texts)

    def repeat_each(self, times: int) -> Condition:
        """Every entry ``times`` times in a row: ``[a, b] -> [a, a, b, b]`` for 2."""
        if self.labels is not None:
            return Condition(labels=self.labels.repeat_interleave(times))
        return Condition(texts=[text for text in self.texts for _ in range(times)])

    def slice(self, start: int, stop: int) -> Condition:
        if self.labels is not None:
            return Condition(labels=self.labels[start:stop])
        return Condition(texts=self.texts[start:stop])

    def captions(self, class_names: Sequence[str] | None) -> list[str]:
        """What each entry asks for, in words: its class name, or the prompt itself."""
        if self.texts is not None:
            return list(self.texts)
        names = class_names or [str(i) for i in range(int(self.labels.max()) + 1)]
        return [names[i] for i in self.labels.tolist()]


def spread(condition: Condition | None, num_samples: int | None) -> tuple[int, Condition | None]:
    """How many samples to draw, and the condition of each: ``num_samples`` in all, split evenly
    over the entries of ``condition``, a row of samples per entry.

    ``num_samples`` None means ``SAMPLES_PER_ROW`` per entry, or ``SAMPLES_PER_ROW`` rows of them
    without a condition.
    """
    if num_samples is not None and num_samples < 1:
        raise ConfigError(f"num_samples={num_samples}: draw at least one sample")
    if condition is None:
        return (SAMPLES_PER_ROW**2 if num_samples is None else num_samples), None
    if num_samples is not None and num_samples % len(condition):
        what = "labels" if condition.kind == "label" else "prompts"
        raise ConfigError(
            f"num_samples={num_samples} does not split evenly over {len(condition)} {what}: "
            f"use a multiple of {len(condition)}"
        )
    per_entry = SAMPLES_PER_ROW if num_samples is None else num_samples // len(condition)
    expanded = condition.repeat_each(per_entry)
    return len(expanded), expanded
