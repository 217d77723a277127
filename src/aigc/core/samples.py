"""What every generative model's ``sample()`` returns: images or texts that can save and show
themselves, each with the caption of what it was asked to be."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torchvision.utils import make_grid, save_image
from tqdm import tqdm

from aigc.errors import ConfigError

# Images per grid row when samples have no captions, and samples per condition (a row each) when no
# count is given.
SAMPLES_PER_ROW = 8
_PADDING = 2  # pixels between grid tiles, as make_grid's default


@dataclass(frozen=True)
class Samples:
    """Generated images ``(N, C, H, W)`` in [-1, 1] or texts, on the CPU.

    ``captions`` says, per sample, what it was drawn for: a class name or a prompt (None for
    unconditional samples). Samples drawn for the same caption sit next to each other, so a grid
    shows one row per caption.
    """

    images: torch.Tensor | None = None
    texts: list[str] | None = None
    captions: list[str] | None = None

    def __post_init__(self) -> None:
        if (self.images is None) == (self.texts is None):
            raise ValueError("Samples hold either images or texts")
        if self.captions is not None and len(self.captions) != len(self):
            raise ValueError(f"{len(self.captions)} captions for {len(self)} samples")

    def __len__(self) -> int:
        return len(self.images) if self.images is not None else len(self.texts)

    @property
    def suffix(self) -> str:
        """The file suffix of ``save``: a PNG grid for images, a text file for texts."""
        return ".png" if self.images is not None else ".txt"

    @staticmethod
    def cat(parts: Sequence[Samples]) -> Samples:
        """The samples of several ``sample()`` calls, in order."""
        first = parts[0]
        captions = None if first.captions is None else [c for p in parts for c in p.captions]
        if first.images is not None:
            return Samples(images=torch.cat([p.images for p in parts]), captions=captions)
        return Samples(texts=[t for p in parts for t in p.texts], captions=captions)

    def save(self, path: str | Path) -> Path:
        """Writes all samples to one file, ``path`` with ``suffix`` added when it has none."""
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(self.suffix)
        elif path.suffix.lower() != self.suffix:
            raise ConfigError(f"{path}: these samples are saved as a {self.suffix} file")
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.images is not None:
            self.picture().save(path)
        else:
            path.write_text("\n\n".join(self.texts) + "\n", encoding="utf-8")
        return path

    def save_each(self, folder: str | Path) -> list[Path]:
        """Writes every sample to a file of its own in ``folder``: 00000.png, 00001.png, ..."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / f"{i:05d}{self.suffix}" for i in range(len(self))]
        for i, path in enumerate(paths):
            if self.images is not None:
                save_image(self.images[i], path, normalize=True, value_range=(-1, 1))
            else:
                path.write_text(self.texts[i] + "\n", encoding="utf-8")
        return paths

    def picture(self) -> Image.Image:
        """The ``grid`` as a picture: grayscale or RGB."""
        return Image.fromarray(self.grid().permute(1, 2, 0).squeeze(-1).numpy())

    def grid(self) -> torch.Tensor:
        """The images as one uint8 picture ``(C, H, W)``: a row per caption, labelled on the left,
        when every caption has as many samples next to each other, else a row per captioned
        image; uncaptioned images in rows of ``SAMPLES_PER_ROW``."""
        if self.images is None:
            raise ValueError("text samples have no grid")
        labels = None
        columns = SAMPLES_PER_ROW
        if self.captions is not None and self.captions[0] is not None:
            runs = [(caption, len(list(run))) for caption, run in groupby(self.captions)]
            equal = len({length for _, length in runs}) == 1
            labels = [caption for caption, _ in runs] if equal else list(self.captions)
            columns = runs[0][1] if equal else 1
        grid = make_grid(
            self.images.float(), nrow=columns, padding=_PADDING, normalize=True, value_range=(-1, 1)
        )
        pixels = grid.mul(255).round_().to(torch.uint8)  # (3, H, W)
        if self.images.size(1) == 1:
            pixels = pixels[:1]  # make_grid repeats a single channel three times
        if labels is None:
            return pixels
        return _label_rows(pixels, labels, row_height=self.images.size(2) + _PADDING)


class TerminalProgress:
    """Shows sampling in a terminal: a text being written, as it is written; else a progress bar
    over the sampling steps. Pass it to ``sample(progress=...)``."""

    def __init__(self) -> None:
        self.shown = ""  # the text on screen
        self.bar: tqdm | None = None

    def __call__(self, done: int, total: int, partial: Samples | None) -> None:
        if partial is not None and partial.texts is not None and len(partial) == 1:
            self._stream(partial.texts[0])
            return
        if self.bar is None:
            self.bar = tqdm(total=total, desc="sampling", leave=False)
        self.bar.update(done - self.bar.n)
        if done == total:
            self.bar.close()
            self.bar = None

    def _stream(self, text: str) -> None:
        # A byte sequence may end inside a multi-byte character: hold it back until whole.
        text = text.removesuffix("\ufffd")
        if not text.startswith(self.shown):  # the next sample has begun
            print("\n" + "-" * 40)
            self.shown = ""
        print(text[len(self.shown) :], end="", flush=True)
        self.shown = text

    def close(self) -> None:
        """Ends the output: the cursor on a new line."""
        if self.shown:
            print()
            self.shown = ""


# Fonts with accented and other non-ASCII letters, tried in turn before Pillow's own, whose
# letters are ASCII only ("dígito" would show a box). Pillow finds them in the system's font
# folders; CJK needs a CJK font, such as Noto Sans CJK.
_LABEL_FONTS = ("NotoSansCJK-Regular.ttc", "DejaVuSans.ttf", "NotoSans-Regular.ttf", "Arial.ttf")


def _label_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for name in _LABEL_FONTS:
        try:
            return ImageFont.truetype(name, size)
        except OSError:  # not installed
            continue
    return ImageFont.load_default(size=size)


def _label_rows(pixels: torch.Tensor, labels: list[str], row_height: int) -> torch.Tensor:
    """``pixels`` (C, H, W) with a white margin on the left holding one label per row."""
    font = _label_font(size=max(8, min(14, row_height - 6)))
    margin = 6 + max(int(font.getlength(label)) for label in labels)
    channels, height, width = pixels.shape
    canvas = Image.new("RGB", (margin + width, height), "white")
    canvas.paste(Image.fromarray(pixels.expand(3, -1, -1).permute(1, 2, 0).numpy()), (margin, 0))
    draw = ImageDraw.Draw(canvas)
    for row, label in enumerate(labels):
        centre = _PADDING + row * row_height + (row_height - _PADDING) // 2
        draw.text((3, centre), label, fill="black", font=font, anchor="lm")
    labelled = torch.from_numpy(np.array(canvas)).permute(2, 0, 1)  # (3, H, margin + W)
    return labelled[:channels].contiguous()
