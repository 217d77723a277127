import gzip
from pathlib import Path

import pytest
import torch
from conftest import write_tiny_idx_dataset

from aigc.data import TorchvisionImageDataModule
from aigc.data.image_codes import image_codes
from aigc.data.image_files import read_idx
from aigc.data.pixels import to_signed_unit_range
from aigc.data.samplers import EpochSeededLengthGroupedSampler
from aigc.errors import DatasetError
from aigc.models.image_tokenizer import ImageTokenizer


def make_datamodule(root: Path, dataset: str = "mnist", **kwargs) -> TorchvisionImageDataModule:
    dm = TorchvisionImageDataModule(
        dataset=dataset, data_dir=str(root), batch_size=16, val_fraction=0.25, **kwargs
    )
    dm.prepare_data()
    dm.setup()
    return dm


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_datamodule_reads_idx_files(tmp_path: Path, compress: bool, no_network: None) -> None:
    write_tiny_idx_dataset(tmp_path, num_train=128, num_test=32, compress=compress)
    dm = make_datamodule(tmp_path)
    assert dm.image_shape == (1, 28, 28) and len(dm.class_names) == 10
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (96, 32, 32)

    assert dm.batch_keys == {"image", "label"}
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    images, labels = batch["image"], batch["label"]
    assert images.shape == (16, 1, 28, 28) and images.dtype == torch.float32
    assert images.min() >= -1.0 and images.max() <= 1.0
    assert labels.shape == (16,) and labels.dtype == torch.long


def test_compressed_and_plain_idx_hold_the_same_images(tmp_path: Path) -> None:
    plain = write_tiny_idx_dataset(tmp_path / "a")
    packed = write_tiny_idx_dataset(tmp_path / "b", compress=True)
    name = "train-images-idx3-ubyte"
    assert torch.equal(read_idx(plain / name), read_idx(packed / f"{name}.gz"))


def test_split_and_order_depend_only_on_seed(tiny_mnist: Path) -> None:
    a, b = make_datamodule(tiny_mnist, seed=1), make_datamodule(tiny_mnist, seed=1)
    c = make_datamodule(tiny_mnist, seed=2)
    first = [next(iter(dm.train_dataloader()))["image"] for dm in (a, b, c)]
    assert torch.equal(first[0], first[1])
    assert not torch.equal(first[0], first[2])


def test_validation_runs_on_the_first_val_images(tiny_mnist: Path) -> None:
    whole = make_datamodule(tiny_mnist)
    limited = make_datamodule(tiny_mnist, val_images=20)
    assert len(limited.val_dataloader()) == 2  # batches of 16: 16 + 4 images
    images = torch.cat([batch["image"] for batch in limited.val_dataloader()])
    assert torch.equal(images, whole.val_set.images[:20])
    assert len(whole.val_dataloader().dataset) == len(whole.val_set) == 32
    # The test split stands apart: the limit is validation's alone.
    assert len(limited.test_set) == len(whole.test_set)


def test_cifar10_datamodule(tiny_cifar10: Path, no_network: None) -> None:
    dm = make_datamodule(tiny_cifar10, dataset="cifar10")
    assert dm.image_shape == (3, 32, 32)
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert batch["image"].shape == (16, 3, 32, 32)
    assert len(dm.test_set) == 32


def test_missing_dataset_offline_names_folder_and_setting(tmp_path: Path, no_network: None) -> None:
    with pytest.raises(DatasetError) as err:
        make_datamodule(tmp_path / "empty")
    message = str(err.value)
    assert str(tmp_path / "empty" / "MNIST" / "raw") in message
    assert "paths.data_dir" in message and "AIGC_DATA_DIR" in message
    assert not (tmp_path / "empty").exists(), "a failed download leaves no folders behind"


def test_missing_cifar10_offline(tmp_path: Path, no_network: None) -> None:
    with pytest.raises(DatasetError, match=r"cifar-10-python\.tar\.gz"):
        make_datamodule(tmp_path, dataset="cifar10")


def test_truncated_idx_file_is_named(tiny_mnist: Path) -> None:
    path = tiny_mnist / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte is truncated or corrupt"):
        make_datamodule(tiny_mnist)


def test_file_that_is_not_idx_is_named(tiny_mnist: Path) -> None:
    path = tiny_mnist / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    path.write_bytes(b"<html>not found</html>")
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte is not a uint8 IDX file"):
        make_datamodule(tiny_mnist)


def test_corrupt_gzip_is_named(tmp_path: Path) -> None:
    raw = write_tiny_idx_dataset(tmp_path, compress=True)
    path = raw / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(path.read_bytes())[:20])
    with pytest.raises(DatasetError, match=r"train-labels-idx1-ubyte\.gz cannot be read"):
        make_datamodule(tmp_path)


def test_corrupt_cifar10_batch_is_named(tiny_cifar10: Path) -> None:
    path = tiny_cifar10 / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DatasetError, match="data_batch_3 is missing or corrupt"):
        make_datamodule(tiny_cifar10, dataset="cifar10")


def test_unknown_dataset_name() -> None:
    from aigc.errors import ConfigError

    with pytest.raises(ConfigError, match="choose one of"):
        TorchvisionImageDataModule(dataset="imagenet", data_dir=".")


def test_captions_are_seeded_and_come_from_training_templates(tiny_mnist: Path) -> None:
    from aigc.data.captions import DIGITS

    a, b = (make_datamodule(tiny_mnist, captions="digits", seed=3) for _ in range(2))
    assert a.batch_keys == {"image", "label", "text"}
    assert a.train_set.texts == b.train_set.texts  # the same captions in every run
    training = {
        (DIGITS.caption(t, label), label) for t in DIGITS.train_templates for label in range(10)
    }
    pairs = zip(a.train_set.texts, a.train_set.labels.tolist(), strict=True)
    assert set(pairs) <= training  # each caption names its image's digit
    batch = next(iter(a.train_dataloader()))
    assert isinstance(batch["text"], list) and len(batch["text"]) == 16
    assert a.model_kwargs()["sample_prompts"] == DIGITS.sample_prompts()


def test_unknown_caption_set(tiny_mnist: Path) -> None:
    from aigc.errors import ConfigError

    with pytest.raises(ConfigError, match=r"unknown data\.captions 'poems'"):
        make_datamodule(tiny_mnist, captions="poems")


def test_image_codes_are_encoded_once_and_cached_by_content(tmp_path: Path) -> None:
    torch.manual_seed(0)
    tokenizer = ImageTokenizer(
        image_shape=(1, 28, 28), widths=(8, 8, 8), norm_groups=4, levels=(4, 3)
    )
    tokenizer.eval()
    images = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8)
    codes = image_codes(images, tokenizer, tmp_path)
    assert codes.dtype == torch.int32 and codes.shape == (6, 49)
    assert torch.equal(codes.long(), tokenizer.encode(to_signed_unit_range(images)))
    (cached,) = tmp_path.glob("image-codes-*.pt")

    def refuse(images: torch.Tensor) -> torch.Tensor:
        raise AssertionError("encoded again")

    encode, tokenizer.encode = tokenizer.encode, refuse
    assert torch.equal(image_codes(images, tokenizer, tmp_path), codes)  # from the file
    tokenizer.encode = encode
    other = images.clone()
    other[0, 0, 0, 0] ^= 1  # one pixel: other content, another file
    image_codes(other, tokenizer, tmp_path)
    with torch.no_grad():
        tokenizer.network.encoder.conv_in.weight.mul_(2)  # other weights: another file
    image_codes(images, tokenizer, tmp_path)
    assert len(list(tmp_path.glob("image-codes-*.pt"))) == 3 and cached.is_file()


def test_the_datamodule_serves_codes_once_asked(tmp_path: Path) -> None:
    write_tiny_idx_dataset(tmp_path, num_train=64, num_test=16)
    dm = make_datamodule(tmp_path, captions="digits", cache_dir=str(tmp_path / "cache"))
    tokenizer = ImageTokenizer(
        image_shape=(1, 28, 28), widths=(8, 8, 8), norm_groups=4, levels=(4, 3)
    )
    dm.tokenize_images(tokenizer.eval())
    batch = dm.on_after_batch_transfer(next(iter(dm.val_dataloader())), 0)
    assert set(batch) == {"image", "label", "text", "codes"}
    torch.testing.assert_close(batch["codes"].long(), tokenizer.encode(batch["image"]))
    assert len(list((tmp_path / "cache").glob("image-codes-*.pt"))) == 3  # train, val, test


def test_length_grouped_batches_hold_captions_of_about_one_length(tiny_mnist: Path) -> None:
    from aigc.errors import ConfigError

    def spread(lengths: list[int], order: list[int], batch_size: int) -> float:
        """The mean difference of the longest and shortest item of a batch."""
        batches = torch.tensor(lengths)[order].view(-1, batch_size)
        return float((batches.max(1).values - batches.min(1).values).float().mean())

    lengths = torch.randint(0, 40, (1000,), generator=torch.Generator().manual_seed(0)).tolist()
    sampler = EpochSeededLengthGroupedSampler(lengths, batch_size=10, seed=1, pool=5)
    order = list(sampler)
    assert len(order) == len(sampler) == 1000 and sorted(order) == list(range(1000))
    # A pool of 5 batches spans the 40 lengths, so each batch spans about 8 (random ones: 32).
    assert spread(lengths, order, 10) < 10 < 25 < spread(lengths, list(range(1000)), 10)
    assert order == list(sampler)  # seeded: the same order again
    sampler.set_epoch(1)
    assert order != list(sampler)
    assert len(EpochSeededLengthGroupedSampler(lengths[:995], 10, seed=1)) == 990  # whole batches

    # The datamodule's training batches, with data.group_by_length and without.
    def caption_spread(group_by_length: bool) -> float:
        dm = make_datamodule(tiny_mnist, captions="digits", group_by_length=group_by_length)
        batches = list(dm.train_dataloader())
        assert len(batches) == len(dm.train_set) // 16
        lengths = [len(text.encode()) for batch in batches for text in batch["text"]]
        return spread(lengths, list(range(len(lengths))), 16)

    assert caption_spread(True) < caption_spread(False) / 2
    with pytest.raises(ConfigError, match=r"data.group_by_length=true batches captions of"):
        make_datamodule(tiny_mnist, group_by_length=True).train_dataloader()
