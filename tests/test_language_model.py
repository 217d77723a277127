"""The Transformer language model trained end to end through ``train`` on tiny texts."""

import math
import shutil
from itertools import pairwise
from pathlib import Path

import pytest
import torch

from aigc.core import Condition
from aigc.core.optim import warmup_cosine
from aigc.errors import ConfigError
from aigc.models.language_model import LanguageModel
from aigc.train import train

TINY_LM = [
    "model=language_model",
    "data=text",
    "model.block_size=16",
    "model.n_layer=2",
    "model.n_head=2",
    "model.n_embd=32",
    "model.dropout=0.0",
    "sampling.max_new_tokens=20",
    "data.batch_size=16",
    "data.val_batches=2",
    "trainer.log_every_n_steps=1",
]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("the quick brown fox jumps over the lazy dog.\n" * 50, encoding="utf-8")
    return path


def lm_cfg(make_cfg, corpus: Path, *overrides: str, output_dir: Path | None = None):
    return make_cfg(*TINY_LM, f"data.path={corpus}", *overrides, output_dir=output_dir)


def test_warmup_cosine_schedule() -> None:
    lrs = [warmup_cosine(step, 10, 100, 0.1) for step in range(120)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[55] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert all(a >= b for a, b in pairwise(lrs[9:]))  # decays monotonically
    assert lrs[100] == lrs[119] == pytest.approx(0.1)


def test_overfits_a_tiny_text(make_cfg, tmp_path: Path) -> None:
    # Each character fixes the next one, so a model that learns the text predicts it exactly.
    alphabet = tmp_path / "alphabet.txt"
    alphabet.write_text("abcdefghijklmnopqrstuvwxyz\n" * 40, encoding="utf-8")
    overrides = ("trainer.max_steps=100", "trainer.max_epochs=-1", "model.lr=1e-2", "logger=none")
    metrics = train(lm_cfg(make_cfg, alphabet, *overrides, "model.lr_decay_steps=100"))
    assert metrics["train/loss"] < 0.05
    assert metrics["val/loss"] < 0.05 and metrics["val/bpc"] < 0.1


def test_resume_continues_steps_and_lr_schedule(make_cfg, corpus: Path, tmp_path: Path) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    common = (
        "model.warmup_steps=3",
        "model.lr_decay_steps=20",
        "callbacks.samples.every_n_steps=0",
    )
    train(lm_cfg(make_cfg, corpus, "trainer.max_epochs=2", *common, output_dir=straight))
    train(lm_cfg(make_cfg, corpus, "trainer.max_epochs=1", *common, output_dir=resumed))
    first_half = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=True)
    train(
        lm_cfg(
            make_cfg, corpus, "trainer.max_epochs=2", "ckpt_path=last", *common, output_dir=resumed
        )
    )

    a, b = (
        torch.load(d / "checkpoints" / "last.ckpt", weights_only=True) for d in (straight, resumed)
    )
    assert b["global_step"] == a["global_step"] == 2 * first_half["global_step"] > 0
    (sched_a,), (sched_b,) = a["lr_schedulers"], b["lr_schedulers"]
    assert sched_b["last_epoch"] == sched_a["last_epoch"] == a["global_step"]
    assert sched_b["_last_lr"] == sched_a["_last_lr"]
    for name, tensor in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][name], tensor, msg=name)


def test_last_checkpoint_holds_the_final_step(make_cfg, corpus: Path, tmp_path: Path) -> None:
    steps = (
        "trainer.max_steps=5",
        "trainer.val_check_interval=2",
        "trainer.check_val_every_n_epoch=null",
    )
    train(lm_cfg(make_cfg, corpus, *steps, "logger=none"))
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 5


def test_a_run_ends_with_validation_and_the_lr_decays_over_it(
    make_cfg, corpus: Path, tmp_path: Path
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    steps = (
        "trainer.max_steps=5",
        "trainer.val_check_interval=4",
        "trainer.check_val_every_n_epoch=null",
        "model.warmup_steps=1",
        "model.lr=1e-3",
        "model.min_lr=1e-4",
    )
    metrics = train(lm_cfg(make_cfg, corpus, *steps))
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    # After step 4 and once more at the end, each at the index of the step before (from 0).
    assert [e.step for e in events.Scalars("val/loss")] == [3, 4]
    assert metrics["val/loss"] == pytest.approx(events.Scalars("val/loss")[-1].value)
    assert "train/loss" in metrics
    # lr_decay_steps is null: the cosine reaches min_lr at trainer.max_steps.
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["lr_schedulers"][0]["_last_lr"] == [pytest.approx(1e-4)] * 2  # 2 groups


def test_sampling_from_a_checkpoint_needs_no_dataset(
    make_cfg, corpus: Path, tmp_path: Path
) -> None:
    train(lm_cfg(make_cfg, corpus, "trainer.max_steps=5", "logger=none"))
    for path in [corpus, *corpus.parent.glob("*.tokens.bin")]:
        path.unlink()
    checkpoint_path = tmp_path / "run" / "checkpoints" / "last.ckpt"
    model = LanguageModel.load_from_checkpoint(checkpoint_path, weights_only=True)
    (text,) = model.sample(1, max_new_tokens=20).texts  # the model's own prompt: a newline
    assert text.startswith("\n") and len(text) == 1 + 20
    assert set(text) <= set("the quick brown fox jumps over the lazy dog.\n")


def test_bpe_model_samples_from_its_checkpoint_alone(
    make_cfg, corpus: Path, tmp_path: Path
) -> None:
    bpe = ("data.tokenizer=bpe", "data.vocab_size=300", "trainer.max_steps=3", "logger=none")
    metrics = train(lm_cfg(make_cfg, corpus, *bpe))
    assert "val/bpt" in metrics  # bits per token
    for path in [corpus, *corpus.parent.glob("*.tokens.bin")]:
        path.unlink()
    checkpoint_path = tmp_path / "run" / "checkpoints" / "last.ckpt"
    model = LanguageModel.load_from_checkpoint(checkpoint_path, weights_only=True)
    tokenizer = model.tokenizer
    assert tokenizer.kind == "bpe" and model.network.wte.num_embeddings == tokenizer.vocab_size
    line = "the quick brown fox jumps over the lazy dog.\n"
    assert tokenizer.decode(tokenizer.encode(line)) == line
    assert len(tokenizer.encode(line)) < len(line) / 2  # the merges learned from the corpus
    (text,) = model.sample(1, condition=Condition.of(texts="the fox"), max_new_tokens=5).texts
    assert text.startswith("the fox") and len(text) > len("the fox")


def test_tensorboard_gets_text_samples_and_throughput(
    make_cfg, corpus: Path, tmp_path: Path
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    overrides = ("trainer.val_check_interval=2", "trainer.check_val_every_n_epoch=null")
    train(
        lm_cfg(
            make_cfg, corpus, "trainer.max_steps=4", "callbacks.samples.every_n_steps=2", *overrides
        )
    )
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"tensors": 0})
    events.Reload()
    assert {"train/loss", "val/loss", "val/bpc", "lr", "tokens_per_sec"} <= set(
        events.Tags()["scalars"]
    )
    # Steps 2 and 4 (the run's end: sampled once, not again as the epoch's end).
    assert [e.step for e in events.Tensors("samples/text_summary")] == [2, 4]
    assert (tmp_path / "run" / "samples" / "step_0000002.txt").is_file()


def test_byte_tokenizer_reports_bits_per_byte(make_cfg, corpus: Path) -> None:
    metrics = train(lm_cfg(make_cfg, corpus, "data.tokenizer=byte", "debug=fdr"))
    assert "val/bpb" in metrics


def test_sample_prompt_outside_the_vocabulary(make_cfg, corpus: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"model\.sample_prompts: the prompt 'Zebra'.*'Z' is not in the vocabulary",
    ):
        train(lm_cfg(make_cfg, corpus, "model.sample_prompts=[Zebra]"))


def test_transformer_on_image_data_is_refused(make_cfg, tiny_mnist: Path) -> None:
    cfg = make_cfg("model=language_model", f"paths.data_dir={tiny_mnist}")
    with pytest.raises(ConfigError, match="needs tokenizer_state"):
        train(cfg)


def test_bf16_mixed_precision_on_cpu(make_cfg, corpus: Path) -> None:
    metrics = train(lm_cfg(make_cfg, corpus, "trainer.precision=bf16-mixed", "debug=fdr"))
    assert math.isfinite(metrics["train/loss"])


def test_unknown_attention_backend(make_cfg, corpus: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown attention backends \['fast'\]"):
        train(lm_cfg(make_cfg, corpus, "model.attention_backends=[fast]", "debug=fdr"))


@pytest.mark.slow
def test_compiled_model_trains_and_keeps_checkpoint_names(
    make_cfg, corpus: Path, tmp_path: Path
) -> None:
    train(lm_cfg(make_cfg, corpus, "model.compile=true", "trainer.max_steps=3", "logger=none"))
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert all("_orig_mod" not in name for name in checkpoint["state_dict"])


def test_resumed_curves_have_each_step_once(make_cfg, corpus: Path, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    every_step = (
        "trainer.log_every_n_steps=1",
        "trainer.val_check_interval=5",
        "trainer.check_val_every_n_epoch=null",
        "callbacks.samples.every_n_steps=0",
    )
    train(lm_cfg(make_cfg, corpus, "trainer.max_steps=8", *every_step))
    # Killed at step 8, after the checkpoint of step 5: that checkpoint is the newest one.
    folder = tmp_path / "run" / "checkpoints"
    shutil.copy(folder / "epoch_000-step_0000005.ckpt", folder / "last.ckpt")
    train(lm_cfg(make_cfg, corpus, "trainer.max_steps=10", "ckpt_path=last", *every_step))

    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    steps = [event.step for event in events.Scalars("train/loss")]
    assert steps == sorted(set(steps)) and len(steps) == 10


def test_resume_mid_epoch_is_exact(make_cfg, corpus: Path, tmp_path: Path) -> None:
    # Dropout draws from the global generator; the epoch has 10 batches, the checkpoint is at 5.
    common = (
        "model.dropout=0.2",
        "model.lr_decay_steps=20",
        "trainer.val_check_interval=5",
        "trainer.check_val_every_n_epoch=null",
        "callbacks.samples.every_n_steps=0",
        "logger=none",
    )
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    train(lm_cfg(make_cfg, corpus, "trainer.max_steps=8", *common, output_dir=straight))
    # Killed at step 7, after the checkpoint of step 5: that checkpoint is the newest one.
    train(lm_cfg(make_cfg, corpus, "trainer.max_steps=7", *common, output_dir=killed))
    folder = killed / "checkpoints"
    shutil.copy(folder / "epoch_000-step_0000005.ckpt", folder / "last.ckpt")
    train(
        lm_cfg(
            make_cfg, corpus, "trainer.max_steps=8", "ckpt_path=last", *common, output_dir=killed
        )
    )

    a, b = (
        torch.load(d / "checkpoints" / "last.ckpt", weights_only=True) for d in (straight, killed)
    )
    assert a["global_step"] == b["global_step"] == 8
    for name, tensor in a["state_dict"].items():
        assert torch.equal(b["state_dict"][name], tensor), name
