"""A user's own image folder: PNG and JPEG, RGB and grayscale, jsonl and csv metadata."""

import json
from pathlib import Path

import pytest
import torch
from conftest import IMAGE_ROWS, write_image_folder
from PIL import Image

from aigc.data import ImageFolderDataModule
from aigc.errors import DatasetError
from aigc.train import train


def datamodule(folder: Path, **kwargs) -> ImageFolderDataModule:
    dm = ImageFolderDataModule(str(folder), batch_size=4, val_fraction=0.25, **kwargs)
    dm.setup()
    return dm


@pytest.mark.parametrize("metadata", ["jsonl", "csv"])
@pytest.mark.parametrize("channels", [3, 1])
def test_images_of_any_size_and_mode_become_one_shape(
    tmp_path: Path, metadata: str, channels: int
) -> None:
    dm = datamodule(write_image_folder(tmp_path, metadata), image_size=16, channels=channels)
    assert dm.image_shape == (channels, 16, 16)
    assert dm.batch_keys == {"image", "label", "text"}
    assert dm.class_names == ["circle", "square"]
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (12, 4, 4)
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert batch["image"].shape == (4, channels, 16, 16)
    assert batch["image"].min() >= -1 and batch["image"].max() <= 1
    for text, label in zip(batch["text"], batch["label"].tolist(), strict=True):
        assert text.endswith(dm.class_names[label])  # each caption kept with its own image
    kwargs = dm.model_kwargs()
    assert kwargs["num_classes"] == 2 and kwargs["image_shape"] == (channels, 16, 16)
    assert set(kwargs["sample_prompts"]) <= {row[3] for row in IMAGE_ROWS}


def test_a_folder_without_labels_or_captions(tmp_path: Path) -> None:
    dm = datamodule(write_image_folder(tmp_path, columns=()))
    assert dm.batch_keys == {"image"} and dm.class_names is None
    assert dm.model_kwargs() == {"image_shape": (3, 32, 32)}


def test_trains_a_text_conditional_gan(make_cfg, tmp_path: Path) -> None:
    folder = write_image_folder(tmp_path / "images")
    metrics = train(
        make_cfg(
            "data=image_folder",
            f"data.path={folder}",
            "data.image_size=16",
            "data.batch_size=4",
            "model.conditioning=text",
            "model.latent_dim=8",
            "model.generator_width=8",
            "model.discriminator_width=8",
            "model.text_encoder.n_embd=16",
            "debug=fdr",
        )
    )
    assert {"loss/g", "loss/d"} <= metrics.keys()


def test_missing_metadata(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"has no metadata file: add metadata\.jsonl"):
        datamodule(tmp_path)


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="is empty"):
        datamodule(tmp_path)
    with pytest.raises(DatasetError, match="is not a folder"):
        datamodule(tmp_path / "nowhere")


def test_row_naming_a_missing_image(tmp_path: Path) -> None:
    folder = write_image_folder(tmp_path)
    (folder / "0_red.png").unlink()
    with pytest.raises(DatasetError, match=r"lists 0_red\.png, which is missing"):
        datamodule(folder)


def test_unreadable_image(tmp_path: Path) -> None:
    folder = write_image_folder(tmp_path)
    (folder / "1_grey.jpg").write_text("not a picture")
    with pytest.raises(DatasetError, match=r"1_grey\.jpg is not a readable image"):
        datamodule(folder)


def test_bad_metadata_lines(tmp_path: Path) -> None:
    (tmp_path / "metadata.jsonl").write_text('{"file_name": "a.png"}\nnot json\n')
    with pytest.raises(DatasetError, match="line 2: not a JSON object"):
        datamodule(tmp_path)
    (tmp_path / "metadata.jsonl").write_text('{"text": "no file"}\n')
    with pytest.raises(DatasetError, match="row 1: it has no file_name"):
        datamodule(tmp_path)


def test_numeric_labels_keep_their_order(tmp_path: Path) -> None:
    Image.new("L", (8, 8)).save(tmp_path / "x.png")
    lines = [json.dumps({"file_name": "x.png", "label": label}) for label in (10, 2, 2, 10)]
    (tmp_path / "metadata.jsonl").write_text("\n".join(lines))
    dm = ImageFolderDataModule(str(tmp_path), image_size=8, channels=1, batch_size=1)
    assert dm.class_names == ["2", "10"]
    dm.setup()
    assert sorted(torch.cat([dm.train_set.labels, dm.val_set.labels]).tolist()) == [0, 0, 1, 1]
