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
    """What each sample is asked for: class labels ``(N,)``, N text prompts, or N images
    ``(N, C, H, W)`` in [-1, 1] (to be described in words); one entry per sample, or per row of
    samples."""

    labels: torch.Tensor | None = None
    texts: list[str] | None = None
    images: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if sum(v is not None for v in (self.labels, self.texts, self.images)) != 1:
            raise ValueError("a Condition holds one of labels, texts and images")
        if self.labels is not None and self.labels.dim() != 1:
            raise ValueError(f"labels must be 1-D, got shape {tuple(self.labels.shape)}")
        if self.images is not None and self.images.dim() != 4:
            raise ValueError(f"images must be (N, C, H, W), got shape {tuple(self.images.shape)}")

    @staticmethod
    def of(
        labels: int | Sequence[int] | None = None,
        texts: str | Sequence[str] | None = None,
        images: torch.Tensor | None = None,
    ) -> Condition | None:
        """A Condition from one label or prompt or a list of them, or from images; None when none
        is given."""
        given = [v for v in (labels, texts, images) if v is not None]
        if not given:
            return None
        if len(given) > 1:
            raise ConfigError("give class labels, prompts or images, only one of them")
        if labels is not None:
            return Condition(labels=torch.as_tensor(labels, dtype=torch.long).reshape(-1))
        if images is not None:
            return Condition(images=images)
        return Condition(texts=[texts] if isinstance(texts, str) else [str(t) for t in texts])

    @property
    def kind(self) -> str:
        """``"label"``, ``"text"`` (as in ``model.conditioning``) or ``"image"``."""
        if self.labels is not None:
            return "label"
        return "text" if self.texts is not None else "image"

    @property
    def _entries(self) -> torch.Tensor | list[str]:
        return next(v for v in (self.labels, self.texts, self.images) if v is not None)

    def __len__(self) -> int:
        return len(self._entries)

    def repeat_each(self, times: int) -> Condition:
        """Every entry ``times`` times in a row: ``[a, b] -> [a, a, b, b]`` for 2."""
        if self.texts is not None:
            return Condition(texts=[text for text in self.texts for _ in range(times)])
        return Condition(**{self.kind + "s": self._entries.repeat_interleave(times, dim=0)})

    def slice(self, start: int, stop: int) -> Condition:
        return Condition(**{self.kind + "s": self._entries[start:stop]})

    def captions(self, class_names: Sequence[str] | None) -> list[str]:
        """What each entry asks for, in words: its class name, or the prompt itself."""
        if self.texts is not None:
            return list(self.texts)
        if self.labels is None:
            raise ValueError("images have no words of their own")
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
        what = {"label": "labels", "text": "prompts", "image": "images"}[condition.kind]
        raise ConfigError(
            f"num_samples={num_samples} does not split evenly over {len(condition)} {what}: "
            f"use a multiple of {len(condition)}"
        )
    # A grid row per label or prompt; one description per image.
    default = 1 if condition.kind == "image" else SAMPLES_PER_ROW
    per_entry = default if num_samples is None else num_samples // len(condition)
    expanded = condition.repeat_each(per_entry)
    return len(expanded), expanded
