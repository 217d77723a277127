"""Samples save and show themselves: grids with a labelled row per caption, text files."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aigc.core.samples import Samples
from aigc.errors import ConfigError


def images(n: int, channels: int = 1) -> torch.Tensor:
    return torch.linspace(-1, 1, n * channels * 28 * 28).reshape(n, channels, 28, 28)


def test_unconditional_grid_has_rows_of_eight(tmp_path: Path) -> None:
    path = Samples(images=images(10)).save(tmp_path / "grid")
    assert path.suffix == ".png"
    grid = Image.open(path)
    assert grid.size == (2 + 8 * 30, 2 + 2 * 30) and grid.mode == "L"


def test_captioned_grid_has_a_labelled_row_per_caption(tmp_path: Path) -> None:
    captions = ["a seven"] * 3 + ["a one"] * 3
    samples = Samples(images=images(6, channels=3), captions=captions)
    grid = samples.grid()
    assert grid.shape[0] == 3 and grid.shape[1] == 2 + 2 * 30
    assert grid.shape[2] > 2 + 3 * 30  # a margin for the labels
    margin = grid[:, :, : grid.shape[2] - (2 + 3 * 30)]
    assert (margin < 128).any()  # dark text on the white margin
    # Runs of unequal length (images with their own captions): a labelled row per image.
    captions = ["a"] * 2 + ["b"] * 4
    each = Samples(images=images(6, channels=3), captions=captions).grid()
    assert each.shape[1] == 2 + 6 * 30 and each.shape[2] > 2 + 30
    unlabelled = Samples(images=images(6, channels=3)).grid()
    assert unlabelled.shape[1:] == (2 + 30, 2 + 6 * 30)  # one plain row (of 8)


def test_text_samples_and_per_sample_files(tmp_path: Path) -> None:
    samples = Samples(texts=["to be", "or not"], captions=["to", "or"])
    path = samples.save(tmp_path / "out")
    assert path.read_text(encoding="utf-8") == "to be\n\nor not\n"
    files = samples.save_each(tmp_path / "each")
    assert [f.read_text(encoding="utf-8") for f in files] == ["to be\n", "or not\n"]
    with pytest.raises(ConfigError, match=r"saved as a \.txt file"):
        samples.save(tmp_path / "out.png")
    image_files = Samples(images=images(3)).save_each(tmp_path / "images")
    assert [f.name for f in image_files] == ["00000.png", "00001.png", "00002.png"]


def test_cat_keeps_order_and_captions() -> None:
    parts = [
        Samples(images=images(2), captions=["a", "a"]),
        Samples(images=images(1), captions=["b"]),
    ]
    whole = Samples.cat(parts)
    assert len(whole) == 3 and whole.captions == ["a", "a", "b"]


def test_picture_is_the_grid() -> None:
    samples = Samples(images=images(4, channels=3), captions=["x"] * 4)
    picture = samples.picture()
    assert picture.mode == "RGB"
    assert torch.equal(torch.from_numpy(np.asarray(picture)).permute(2, 0, 1), samples.grid())


def test_samples_hold_images_or_texts() -> None:
    with pytest.raises(ValueError):
        Samples()
    with pytest.raises(ValueError, match="2 captions for 1 samples"):
        Samples(texts=["a"], captions=["a", "b"])
