"""Captions for labelled images, drawn from templates over the class names in several languages.

A template is a format string over the fields of one class (for digits: the digit and its name in
English, German, French, Spanish and Chinese). The training templates are every combination of a
prefix, a class word and a suffix in each language ("a handwritten {en}", "{en} in ink",
"die Ziffer {de} auf Papier", ...), so that the class word appears in many contexts and a text
encoder learns to find it rather than to memorise whole captions. The held-out templates are
wordings that no combination gives ("please draw a {en}", "die Zahl {de}", ...): they never
reach training, so that evaluation tells whether prompts worded in ways the model never saw still
work.
"""

from dataclasses import dataclass
from functools import cached_property

import torch

from aigc.errors import ConfigError


@dataclass(frozen=True)
class Wording:
    """Captions in one language: every ``prefix + word + suffix``."""

    words: tuple[str, ...]  # the class word's fields, such as "{en}" or "{digit}"
    prefixes: tuple[str, ...]
    suffixes: tuple[str, ...]

    def templates(self) -> list[str]:
        return [p + w + s for p in self.prefixes for w in self.words for s in self.suffixes]


@dataclass(frozen=True)
class CaptionSet:
    """Caption templates over per-class words: ``fields[name][label]`` fills ``{name}``."""

    fields: dict[str, tuple[str, ...]]
    wordings: tuple[Wording, ...]
    heldout_templates: tuple[str, ...]
    # Training templates per language that the scorecard prompts with (a seeded choice).
    scored_per_wording: int = 10

    @property
    def num_classes(self) -> int:
        return len(next(iter(self.fields.values())))

    @cached_property
    def train_templates(self) -> tuple[str, ...]:
        return tuple(t for wording in self.wordings for t in wording.templates())

    def caption(self, template: str, label: int) -> str:
        return template.format(**{name: words[label] for name, words in self.fields.items()})

    def draw(self, labels: torch.Tensor, seed: int) -> list[str]:
        """One caption per label, seeded: a language (wording) at random, then one of its
        templates at random, so that every language is about as frequent."""
        generator = torch.Generator().manual_seed(seed)
        languages = torch.randint(len(self.wordings), (len(labels),), generator=generator)
        picks = torch.rand(len(labels), generator=generator)
        templates = [wording.templates() for wording in self.wordings]
        captions = []
        for language, pick, label in zip(languages.tolist(), picks, labels.tolist(), strict=True):
            options = templates[language]
            captions.append(self.caption(options[int(pick * len(options))], label))
        return captions

    @cached_property
    def _labels(self) -> dict[str, int]:
        """Every caption any template gives (training or held out), with its class."""
        templates = (*self.train_templates, *self.heldout_templates)
        labels = {}
        for template in templates:
            for label in range(self.num_classes):
                labels[self.caption(template, label)] = label
        return labels

    def label_of(self, caption: str) -> int | None:
        """The class a caption names, when it is worded as one of the templates (training or
        held out); None for any other text."""
        return self._labels.get(caption.strip())

    def prompts(self, heldout: bool) -> list[tuple[str, int]]:
        """(caption, label) pairs for every class: of every held-out template, or of
        ``scored_per_wording`` training templates of each language (the same ones every time)."""
        if heldout:
            templates = list(self.heldout_templates)
        else:
            generator = torch.Generator().manual_seed(0)
            templates = []
            for wording in self.wordings:
                choice = torch.randperm(len(wording.templates()), generator=generator)
                templates += [wording.templates()[i] for i in choice[: self.scored_per_wording]]
        return [
            (self.caption(t, label), label) for t in templates for label in range(self.num_classes)
        ]

    def sample_prompts(self) -> list[str]:
        """A training caption per class, in the first language (the grids' default font may
        lack other scripts): what sample grids show."""
        templates = self.wordings[0].templates()
        choice = torch.randperm(len(templates), generator=torch.Generator().manual_seed(0))
        return [
            self.caption(templates[int(i)], c) for c, i in enumerate(choice[: self.num_classes])
        ]


DIGITS = CaptionSet(
    fields={
        "digit": tuple("0123456789"),
        "en": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
        "de": ("null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"),
        "fr": ("zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf"),
        "es": ("cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve"),
        "zh": ("零", "一", "二", "三", "四", "五", "六", "七", "八", "九"),
    },
    # No context word names a number, so that the class word is the only one in a caption (but
    # for the French and Spanish article "un", always right before the class word).
    wordings=(
        Wording(
            words=("{en}", "{digit}"),
            prefixes=(
                "",
                "a ",
                "the ",
                "a handwritten ",
                "the digit ",
                "the number ",
                "handwritten digit ",
                "number ",
                "an image of the digit ",
                "a drawing of a ",
                "a small ",
                "a large ",
                "a bold ",
                "a thin ",
                "a neat ",
                "a messy ",
                "a sketch of a ",
            ),
            suffixes=("", " in ink", " on paper", ", black on white", ", centred", " in pencil"),
        ),
        Wording(
            words=("{de}",),
            prefixes=(
                "",
                "die ",
                "die Ziffer ",
                "eine handgeschriebene ",
                "eine kleine ",
                "eine große ",
                "eine dünne ",
                "eine Skizze einer ",
            ),
            suffixes=("", " in Tinte", " auf Papier", " mit Bleistift", ", leicht schräg"),
        ),
        Wording(
            words=("{fr}",),
            prefixes=("", "le chiffre ", "un ", "un petit ", "un grand ", "le nombre "),
            suffixes=("", " à l'encre", " sur papier", " au crayon", ", un peu penché"),
        ),
        Wording(
            words=("{es}",),
            prefixes=("", "el número ", "un ", "un pequeño ", "un gran ", "el "),
            suffixes=("", " en tinta", " sobre papel", " a lápiz"),
        ),
        Wording(
            words=("{zh}",),
            prefixes=("", "数字", "手写的", "小的", "大的", "细的"),
            suffixes=("", "，黑白", "，在纸上"),  # noqa: RUF001 (the Chinese comma is meant)
        ),
    ),
    heldout_templates=(
        "a picture of the number {en}",
        "please draw a {en}",
        "digit: {digit}",
        "{en}, written by hand",
        "die Zahl {de}",
        "un {fr} écrit à la main",
        "el dígito {es}",
        # Not "写一个{zh}": its 一 is the word for one, so it would name two digits.
        "请写{zh}",
    ),
)

CAPTION_SETS = {"digits": DIGITS}


def caption_set(name: str) -> CaptionSet:
    if name not in CAPTION_SETS:
        raise ConfigError(f"unknown data.captions {name!r}; choose one of {sorted(CAPTION_SETS)}")
    return CAPTION_SETS[name]
