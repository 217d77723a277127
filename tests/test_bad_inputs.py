"""Settings and files that cannot work end a run with one clear line, before it trains."""

import importlib
import os
import sys
from pathlib import Path

import pytest
from conftest import TINY_GAN, TINY_LM

from aigc.errors import CheckpointError, ConfigError, DatasetError, exit_on_user_error
from aigc.train import train


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("the quick brown fox jumps over the lazy dog.\n" * 50, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.batch_size=0", "data.batch_size=0: must be greater than 0"),
        ("data.batch_size=-1", "data.batch_size=-1: must be greater than 0"),
        ("data.num_workers=-1", "data.num_workers=-1: must be 0 or more"),
        ("model.lr=-1", "model.lr=-1: must be greater than 0"),
        ("model.block_size=0", "model.block_size=0: must be greater than 0"),
        ("model.n_head=3", "model.n_embd=16 must be a multiple of model.n_head=3"),
    ],
)
def test_language_model_settings(make_cfg, corpus: Path, override: str, message: str) -> None:
    cfg = make_cfg(*TINY_LM, f"data.path={corpus}", "trainer.max_steps=1", override)
    with pytest.raises(ConfigError, match=message):
        train(cfg)


@pytest.mark.parametrize(
    ("model", "override"),
    [("gan", "model.lr=0"), ("gan", "model.latent_dim=0"), ("classifier", "model.lr=-1")],
)
def test_image_model_settings(make_cfg, tiny_mnist: Path, model: str, override: str) -> None:
    tiny = TINY_GAN if model == "gan" else []
    cfg = make_cfg(f"paths.data_dir={tiny_mnist}", f"model={model}", *tiny, override)
    with pytest.raises(ConfigError, match=f"{override}: must be greater than 0"):
        train(cfg)


def test_trainer_settings_lightning_refuses(make_cfg, corpus: Path) -> None:
    cfg = make_cfg(*TINY_LM, f"data.path={corpus}", "trainer.precision=64-mixed")
    with pytest.raises(ConfigError, match="trainer: Precision '64-mixed' is invalid"):
        train(cfg)


def test_a_text_too_short_for_one_window_says_so(make_cfg, tmp_path: Path) -> None:
    short = tmp_path / "five.txt"
    short.write_text("hello")
    with pytest.raises(DatasetError, match=r"fewer than block_size \+ 1 = 17"):
        train(make_cfg(*TINY_LM, f"data.path={short}"))


def test_resuming_with_other_sizes_names_the_difference(
    make_cfg, corpus: Path, tmp_path: Path
) -> None:
    train(make_cfg(*TINY_LM, f"data.path={corpus}", "trainer.max_steps=1", "logger=none"))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    cfg = make_cfg(
        *TINY_LM, f"data.path={corpus}", "model.n_embd=32", f"ckpt_path={last}", "logger=none"
    )
    with pytest.raises(
        CheckpointError, match=r"other sizes \(network\.wte\.weight: \(\d+, 16\) there"
    ):
        train(cfg)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_an_unwritable_file_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o500)
    with pytest.raises(SystemExit) as exit_:
        exit_on_user_error(lambda: (folder / "metrics.json").write_text("{}"))
    assert exit_.value.code == f"error: {folder / 'metrics.json'}: Permission denied"


def test_a_full_disk_is_one_line() -> None:
    def fill() -> None:
        raise OSError(28, "No space left on device", "/logs/run/metrics.json")

    with pytest.raises(SystemExit) as exit_:
        exit_on_user_error(fill)
    assert exit_.value.code == "error: /logs/run/metrics.json: No space left on device"


@pytest.mark.parametrize(
    ("entry_point", "override", "new"),
    [
        ("export", "out=folder", "output=folder"),
        ("export", "ema=false", "sampling.ema=false"),
        ("generate", "device=cpu", "accelerator=cpu"),
        ("eval", "device=cuda", "accelerator=cuda"),
        ("train", "data.val_samples=100", "data.val_images=100"),
    ],
)
def test_a_renamed_key_says_its_new_name_in_one_line(
    monkeypatch: pytest.MonkeyPatch, entry_point: str, override: str, new: str
) -> None:
    monkeypatch.setattr(sys, "argv", [f"{entry_point}.py", "ckpt_path=run", override])
    with pytest.raises(SystemExit) as exit_:
        importlib.import_module(f"aigc.{entry_point}").main()
    old = override.split("=")[0]
    assert exit_.value.code == f"error: {old} is now called {new.split('=')[0]}: use {new}"


@pytest.mark.parametrize(
    ("override", "new"),
    [
        ("model=transformer", "model=language_model"),
        ("model=multimodal", "model=text_image"),
        ("model=vqvae", "model=image_tokenizer"),
        ("experiment=mnist_multimodal", "experiment=mnist_text_image"),
        ("experiment=mnist_vqvae", "experiment=mnist_image_tokenizer"),
    ],
)
def test_a_renamed_config_says_its_new_name_in_one_line(
    monkeypatch: pytest.MonkeyPatch, override: str, new: str
) -> None:
    monkeypatch.setattr(sys, "argv", ["train.py", override])
    with pytest.raises(SystemExit) as exit_:
        importlib.import_module("aigc.train").main()
    assert exit_.value.code == f"error: {override} is now called {new}"
