"""Captions for labelled images, drawn from templates over the class names in several languages.

Each template is a format string over the fields of one class (its digit, its name in English,
German, French, Spanish and Chinese). Training captions use the training templates only; the
held-out templates never reach training, so that evaluation can tell whether prompts worded in
ways the model never saw still work.
"""

from dataclasses import dataclass

import torch

from aigc.errors import ConfigError


@dataclass(frozen=True)
class CaptionSet:
    """Caption templates over per-class words: ``fields[name][label]`` fills ``{name}``."""

    fields: dict[str, tuple[str, ...]]
    train_templates: tuple[str, ...]
    heldout_templates: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(next(iter(self.fields.values())))

    def caption(self, template: str, label: int) -> str:
        return template.format(**{name: words[label] for name, words in self.fields.items()})

    def draw(self, labels: torch.Tensor, seed: int) -> list[str]:
        """One caption per label, from a training template drawn at random (seeded)."""
        choice = torch.randint(
            len(self.train_templates),
            (len(labels),),
            generator=torch.Generator().manual_seed(seed),
        )
        return [
            self.caption(self.train_templates[t], label)
            for t, label in zip(choice.tolist(), labels.tolist(), strict=True)
        ]

    def prompts(self, heldout: bool) -> list[tuple[str, int]]:
        """Every (caption, label) of the training or the held-out templates."""
        templates = self.heldout_templates if heldout else self.train_templates
        return [
            (self.caption(template, label), label)
            for template in templates
            for label in range(self.num_classes)
        ]

    def sample_prompts(self) -> list[str]:
        """A caption per class, each from another training template: what sample grids show."""
        templates = self.train_templates
        return [self.caption(templates[c % len(templates)], c) for c in range(self.num_classes)]


DIGITS = CaptionSet(
    fields={
        "digit": tuple("0123456789"),
        "en": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
        "de": ("null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"),
        "fr": ("zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf"),
        "es": ("cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve"),
        "zh": ("零", "一", "二", "三", "四", "五", "六", "七", "八", "九"),
    },
    train_templates=(
        "a handwritten {en}",
        "the digit {digit}",
        "{digit}",
        "{en}",
        "the number {en}",
        "a {en}",
        "handwritten digit {digit}",
        "an image of the digit {en}",
        "number {digit}",
        "a drawing of a {en}",
        "{de}",
        "die Ziffer {de}",
        "eine handgeschriebene {de}",
        "{fr}",
        "le chiffre {fr}",
        "{es}",
        "el número {es}",
        "{zh}",
        "数字{zh}",
        "手写的{zh}",
    ),
    heldout_templates=(
        "a picture of the number {en}",
        "please draw a {en}",
        "digit: {digit}",
        "{en}, written by hand",
        "die Zahl {de}",
        "un {fr} écrit à la main",
        "el dígito {es}",
        "写一个{zh}",
    ),
)

CAPTION_SETS = {"digits": DIGITS}


def caption_set(name: str) -> CaptionSet:
    if name not in CAPTION_SETS:
        raise ConfigError(f"unknown data.captions {name!r}; choose one of {sorted(CAPTION_SETS)}")
    return CAPTION_SETS[name]
