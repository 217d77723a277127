"""Shared fixtures: tiny datasets written in the real on-disk formats, and config composition."""

import csv
import gzip
import hashlib
import json
import os
import pickle
import struct
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf, open_dict
from PIL import Image

from aigc.paths import CONFIG_DIR

ROOT = Path(__file__).resolve().parents[1]
# Overrides that make the models small enough to train in a test.
TINY_GAN = ["model.latent_dim=16", "model.generator_width=8", "model.discriminator_width=8"]
TINY_LM_SIZES = ["model.block_size=16", "model.n_layer=1", "model.n_head=2", "model.n_embd=16"]
TINY_LM = ["model=language_model", "data=text", *TINY_LM_SIZES]
TINY_DIFFUSION = [
    "model.widths=[8,16]",
    "model.attention=[false,true]",
    "model.norm_groups=4",
    "model.attention_head_dim=8",
    "model.sampling.steps=2",
]
TINY_IMAGE_TOKENIZER = ["model.widths=[8,8,8]", "model.norm_groups=4", "model.levels=[4,3]"]
TINY_TEXT_IMAGE = ["model.n_layer=1", "model.n_head=2", "model.n_embd=16"]


def model_sampling(family: str, **settings) -> dict:
    """The sampling defaults of ``configs/model/<family>.yaml``, ``settings`` in their place: the
    ``sampling`` argument of a model built in Python."""
    defaults = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "model" / f"{family}.yaml"))
    return {**defaults["sampling"], **settings}


def tiny_run(make_cfg, data_dir: Path, *overrides: str, output_dir: Path | None = None):
    """The config of a tiny GAN on the tiny MNIST in ``data_dir``: 3 batches of 32 an epoch."""
    return make_cfg(
        f"paths.data_dir={data_dir}",
        "data.batch_size=32",
        "data.val_fraction=0.25",
        *TINY_GAN,
        *overrides,
        output_dir=output_dir,
    )


def tiny_image_tokenizer(make_cfg, data_dir: Path, run_dir: Path) -> Path:
    """The run directory of a tiny image tokenizer (model=image_tokenizer) trained 2 steps on the
    tiny MNIST in ``data_dir``; trained once per ``run_dir``."""
    if not (run_dir / "checkpoints" / "last.ckpt").is_file():
        from aigc.train import train

        train(
            make_cfg(
                "model=image_tokenizer",
                "data=mnist",
                *TINY_IMAGE_TOKENIZER,
                f"paths.data_dir={data_dir}",
                "data.batch_size=16",
                "trainer.max_steps=2",
                "logger=none",
                output_dir=run_dir,
            )
        )
    return run_dir


def tiny_classifier(make_cfg, data_dir: Path, run_dir: Path) -> Path:
    """The run directory of a tiny classifier (a feature network for eval.py) trained 3 steps on
    the MNIST-layout data in ``data_dir``."""
    from aigc.train import train

    train(
        make_cfg(
            "model=classifier",
            "data=mnist",
            f"paths.data_dir={data_dir}",
            "model.width=4",
            "trainer.max_steps=3",
            "logger=none",
            output_dir=run_dir,
        )
    )
    return run_dir


def guided_draws_with_and_without_cache(model, texts: Sequence[str]) -> list:
    """The image tokens that a text + image ``model`` draws for ``texts`` at guidance 3 from one
    seed on its device: with the KV cache, then without. The unconditional rows are empty
    prompts padded to the prompts' length, so that decoding must pass over pads."""
    import torch

    from aigc.models.text_image.sampling import allowed, decode

    layout, device, vocab = model.layout, model.device, model.vocab
    length = layout.caption_length(texts)
    prefix = layout.image_prefixes(texts).to(device)
    free = layout.image_prefixes([""] * len(texts), length).to(device)
    return [
        decode(
            model.network,
            prefix,
            vocab.tokens_per_image,
            1.0,
            None,
            torch.Generator().manual_seed(0),
            allowed=allowed(vocab.vocab_size, vocab.image_ids, device),
            use_cache=cached,
            guidance_scale=3.0,
            unconditional=free,
            positions=layout.positions(torch.tensor([False]), length)[0].to(device),
            pad_id=vocab.special["pad"],
        )
        for cached in (True, False)
    ]


def run_train_cli(
    *args: str, cwd: Path = ROOT, data_dir: Path | None = None, launcher: Sequence[str] = ()
) -> subprocess.CompletedProcess:
    """``python <launcher> train.py <args>`` in ``cwd``, reading data from ``data_dir``
    (AIGC_DATA_DIR); ``launcher`` such as ``["-m", "torch.distributed.run", ...]``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # several processes share the test machine
    if data_dir is not None:
        env["AIGC_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, *launcher, str(ROOT / "train.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    """Writes a uint8 array in the IDX format that MNIST ships in."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


def write_tiny_idx_dataset(
    root: Path,
    folder: str = "MNIST",
    num_train: int = 128,
    num_test: int = 32,
    compress: bool = False,
) -> Path:
    """MNIST/Fashion-MNIST layout: ``root/<folder>/raw/{train,t10k}-{images,labels}-...``."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", num_train), ("t10k", num_test)):
        write_idx(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), compress)
        write_idx(raw / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, (n,)), compress)
    return raw


@pytest.fixture
def tiny_mnist(tmp_path: Path) -> Path:
    """A data dir holding a tiny uncompressed MNIST; returns the data dir."""
    root = tmp_path / "data"
    write_tiny_idx_dataset(root)
    return root


def write_tiny_cifar10(root: Path) -> dict[str, object]:
    """A tiny CIFAR-10 in torchvision's pickled layout under ``root``; returns the ``CIFAR10``
    class attributes (file lists with their checksums) that make torchvision accept it."""
    from torchvision.datasets import CIFAR10

    folder = root / CIFAR10.base_folder
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def write(name: str, entry: dict) -> list[str]:
        path = folder / name
        path.write_bytes(pickle.dumps(entry))
        return [name, hashlib.md5(path.read_bytes()).hexdigest()]

    def batch(n: int) -> dict:
        return {
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            "labels": list(rng.integers(0, 10, n)),
        }

    train_list = [write(f"data_batch_{i}", batch(32)) for i in range(1, 6)]
    test_list = [write("test_batch", batch(32))]
    name, md5 = write("batches.meta", {"label_names": [f"class{i}" for i in range(10)]})
    meta = {"filename": name, "key": "label_names", "md5": md5}
    return {"train_list": train_list, "test_list": test_list, "meta": meta}


def accept_tiny_cifar10(monkeypatch: pytest.MonkeyPatch, attributes: dict[str, object]) -> None:
    from torchvision.datasets import CIFAR10

    for name, value in attributes.items():
        monkeypatch.setattr(CIFAR10, name, value)


@pytest.fixture
def tiny_cifar10(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data dir holding a tiny CIFAR-10 in torchvision's pickled layout, checksums included."""
    root = tmp_path / "data"
    accept_tiny_cifar10(monkeypatch, write_tiny_cifar10(root))
    return root


IMAGE_ROWS = [
    ("red.png", "RGB", (40, 30), "a red square", "square"),
    ("grey.jpg", "L", (16, 24), "a grey circle", "circle"),
    ("sub/blue.png", "RGB", (64, 64), "a blue square", "square"),
    ("dark.jpeg", "L", (20, 20), "a dark circle", "circle"),
] * 4


def write_image_folder(folder: Path, metadata: str = "jsonl", columns=("text", "label")) -> Path:
    """A folder of images of several sizes and modes, in the layout of Hugging Face's
    ``imagefolder`` (one subfolder too), described by ``metadata.jsonl`` or ``metadata.csv``."""
    rng = np.random.default_rng(0)
    records = []
    for i, (name, mode, size, text, label) in enumerate(IMAGE_ROWS):
        name = f"{i}_{name}" if "/" not in name else name.replace("/", f"/{i}_")
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
        record = {"file_name": name, "text": text, "label": label}
        records.append({key: record[key] for key in ("file_name", *columns)})
    if metadata == "jsonl":
        lines = [json.dumps(record, ensure_ascii=False) for record in records]
        (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=["file_name", *columns])
            writer.writeheader()
            writer.writerows(records)
    return folder


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes every download fail at once, as on a machine without internet."""
    import urllib.request

    import torch.hub

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(torch.hub, "urlopen", refuse)  # its own reference to it


@pytest.fixture
def offline_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """W&B offline, with no network and nothing written outside ``tmp_path``."""
    wandb = pytest.importorskip("wandb", reason="the wandb extra: pip install -e '.[wandb]'")
    home = tmp_path / "wandb-home"
    for name, value in {
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(home),
        "WANDB_CONFIG_DIR": str(home / "config"),
        "WANDB_CACHE_DIR": str(home / "cache"),
        "WANDB_DATA_DIR": str(home / "data"),
        "WANDB_SILENT": "true",
        "WANDB_DISABLE_GIT": "true",
        "WANDB_DISABLE_CODE": "true",
    }.items():
        monkeypatch.setenv(name, value)
    yield
    wandb.finish()  # a test that failed mid-run leaves no run behind for the next one


def compose_config(config_name: str, *overrides: str) -> DictConfig:
    """Composes ``configs/<config_name>.yaml`` as its entry point would, without running it."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides))


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """Composes ``configs/train.yaml`` with overrides, writing into a temporary run directory."""

    def _make(*overrides: str, output_dir: Path | None = None) -> DictConfig:
        cfg = compose_config("train", *overrides)
        with open_dict(cfg):
            cfg.paths.output_dir = str(output_dir or tmp_path / "run")
            cfg.paths.log_dir = str(tmp_path / "logs")
        return cfg

    return _make
