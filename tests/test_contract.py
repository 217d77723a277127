"""The contract every model config in configs/model/ keeps: it builds on tiny data, trains a few
steps, samples through the one interface, and its checkpoint rebuilds with
``torch.load(weights_only=True)`` into a model that samples exactly the same, as does its export
(safetensors and config.json); a run stopped dead in the middle of an epoch resumes to exactly the
weights of a run never stopped.

A new family is covered by adding its config and a line to ``TINY`` below (the test fails for a
config without one). A family of another package keeps the same contract through
``keeps_the_contract`` and ``resumes_exactly``, given its own config source
(tests/test_example_family.py).
"""

from collections.abc import Callable
from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import (
    TINY_DIFFUSION,
    TINY_GAN,
    TINY_IMAGE_TOKENIZER,
    TINY_LM,
    TINY_TEXT_IMAGE,
    tiny_image_tokenizer,
    write_tiny_idx_dataset,
)
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig

from aigc.core.checkpoints import load_model
from aigc.core.module import GenerativeModule
from aigc.core.pretrained import from_pretrained, save_pretrained
from aigc.core.samples import Samples
from aigc.paths import CONFIG_DIR
from aigc.train import train

# Per model config: overrides that make it tiny, with the data it trains on ({corpus}: a tiny
# text file). Generative models keep an EMA, so that sampling with and without it is tested.
TINY = {
    "gan": [*TINY_GAN, "data=mnist", "data.batch_size=16", "model.ema_decay=0.9"],
    "language_model": [
        *TINY_LM,
        "data.path={corpus}",
        "model.dropout=0.1",
        "data.batch_size=4",
        "data.val_batches=2",
        "model.ema_decay=0.9",
    ],
    "diffusion": [*TINY_DIFFUSION, "data=mnist", "data.batch_size=16", "model.ema_decay=0.9"],
    "classifier": ["model.width=4", "model.feature_dim=8", "data=mnist", "data.batch_size=16"],
    "image_tokenizer": [*TINY_IMAGE_TOKENIZER, "data=mnist", "data.batch_size=16"],
    "text_image": [
        *TINY_TEXT_IMAGE,
        "model.image_tokenizer={tokenizer}",
        "data=mnist_captions",
        "data.batch_size=16",
        "data.group_by_length=true",  # as the recipe: resumes replay its batches too
        "model.dropout=0.1",
        "model.ema_decay=0.9",
        # Steps large enough that the average's logits draw other codes than the raw weights'.
        "model.lr=0.05",
        "model.warmup_steps=1",
    ],
}
# The conditioning switch, for every model config that has one.
CONDITIONED = {
    "label": ["model.conditioning=label", "data=mnist"],
    "text": ["model.conditioning=text", "data=mnist_captions", "model.text_encoder.n_embd=16"],
}


# Other switches that change what a model config builds: the image tokenizer's learned codebook.
VARIANTS = {
    "image_tokenizer": {
        "vq": ["model.quantizer=vq", "model.vq.codebook_size=16", "model.vq.dim=4"]
    },
}


def cases() -> list:
    params = []
    for path in sorted((CONFIG_DIR / "model").glob("*.yaml")):
        params.append(pytest.param(path.stem, [], id=path.stem))
        variants = dict(VARIANTS.get(path.stem, {}))
        if "conditioning:" in path.read_text():
            variants.update(CONDITIONED)
        for kind, overrides in variants.items():
            params.append(pytest.param(path.stem, overrides, id=f"{path.stem}-{kind}"))
    return params


# Composes a tiny run's config: ``(*overrides, output_dir=None) -> DictConfig``.
TinyConfig = Callable[..., DictConfig]


def tiny_cfg(
    make_cfg, tmp_path: Path, config: str, tiny: list[str], *overrides: str, **kwargs
) -> DictConfig:
    """The model config ``config`` made tiny by the overrides ``tiny``, on tiny data, logging
    nothing; then ``overrides``."""
    data_dir = tmp_path / "data"
    if not data_dir.exists():
        write_tiny_idx_dataset(data_dir)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog\n" * 30, encoding="utf-8")
    places = {"corpus": corpus}
    if any("{tokenizer}" in override for override in tiny):
        places["tokenizer"] = tiny_image_tokenizer(make_cfg, data_dir, tmp_path / "tokenizer")
    return make_cfg(
        f"model={config}",
        *(override.format(**places) for override in tiny),
        f"paths.data_dir={data_dir}",
        "logger=none",
        *overrides,
        **kwargs,
    )


def contract_cfg(make_cfg, tmp_path: Path, config: str, extra: list[str]) -> TinyConfig:
    """The tiny config of ``configs/model/<config>.yaml``, with the overrides ``extra``."""
    assert config in TINY, f"add tiny overrides for configs/model/{config}.yaml to TINY"
    return partial(tiny_cfg, make_cfg, tmp_path, config, [*TINY[config], *extra])


class Killed(Exception):
    """Stands in for kill -9: nothing after it runs, and nothing is saved on the way out."""


class KillAt(Callback):
    """Saves a checkpoint at the validation after ``step`` steps, where the run's own checkpoints
    are taken (after the batch's EMA update and LR step), then ends the run at once."""

    def __init__(self, step: int, path: str) -> None:
        self.step, self.path = step, path

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_step == self.step:
            trainer.save_checkpoint(self.path)
            raise Killed


@pytest.mark.parametrize(("config", "extra"), cases())
def test_model_config_keeps_the_contract(
    make_cfg, tmp_path: Path, config: str, extra: list[str]
) -> None:
    keeps_the_contract(contract_cfg(make_cfg, tmp_path, config, extra), tmp_path)


@pytest.mark.parametrize(("config", "extra"), cases())
def test_model_config_resumes_exactly(
    make_cfg, tmp_path: Path, config: str, extra: list[str]
) -> None:
    resumes_exactly(contract_cfg(make_cfg, tmp_path, config, extra), tmp_path)


def keeps_the_contract(tiny: TinyConfig, tmp_path: Path) -> None:
    """Trains the model of the config that ``tiny`` composes for 3 steps; its checkpoint, its run
    directory and its export rebuild it to score or sample exactly as it does, with and without
    its average."""
    cfg = tiny("trainer.max_steps=3")
    train(cfg)
    path = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(path, weights_only=True)  # tensors and plain values only
    assert checkpoint["global_step"] == 3

    trained = load_model(path)
    rebuilt = load_model(path.parents[1])  # and from the run directory
    exported = from_pretrained(save_pretrained(trained, tmp_path / "export"))
    if not isinstance(trained, GenerativeModule):
        images = torch.rand(4, *trained.hparams.image_shape) * 2 - 1
        for model in (rebuilt, exported):
            torch.testing.assert_close(trained(images), model(images), rtol=0, atol=0)
        return

    def draw(model: GenerativeModule, **settings) -> Samples:
        sampling = {"seed": 0, "num_samples": None, **settings}
        if model.produces == "text":
            sampling["max_new_tokens"] = 5
        return model.sample_from_config(sampling)

    # The export holds the averaged weights, which sampling uses by default; or the raw ones.
    raw = from_pretrained(save_pretrained(trained, tmp_path / "export_raw", ema=False))
    first, again, portable = draw(trained), draw(rebuilt), draw(exported)
    raw_samples, portable_raw = draw(rebuilt, ema=False), draw(raw)
    assert len(first) > 0
    if first.images is not None:
        assert first.images.dtype == torch.float32 and first.images.abs().max() <= 1.0
        for other in (again, portable):
            torch.testing.assert_close(first.images, other.images, rtol=0, atol=0)
        torch.testing.assert_close(raw_samples.images, portable_raw.images, rtol=0, atol=0)
        # The averaged weights are not the raw ones.
        assert not torch.equal(first.images, raw_samples.images)
    else:
        assert first.texts == again.texts == portable.texts
        assert raw_samples.texts == portable_raw.texts
    assert first.captions == again.captions == portable.captions


def resumes_exactly(tiny: TinyConfig, tmp_path: Path) -> None:
    """A run of the config that ``tiny`` composes, killed inside its first epoch and resumed,
    ends with exactly the weights of a run never stopped, and keeps a best checkpoint."""
    steps = (
        "trainer.max_steps=4",
        "trainer.val_check_interval=2",
        "trainer.check_val_every_n_epoch=null",
        "callbacks.samples.every_n_steps=0",
    )
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    train(tiny(*steps, output_dir=straight))
    last = killed / "checkpoints" / "last.ckpt"
    kill = (
        f"+callbacks.kill._target_={__name__}.KillAt",
        "+callbacks.kill.step=2",  # inside the first epoch
        f"+callbacks.kill.path={last}",
    )
    with pytest.raises(Killed):
        train(tiny(*steps, *kill, output_dir=killed))
    train(tiny(*steps, "ckpt_path=last", output_dir=killed))

    a, b = (
        torch.load(d / "checkpoints" / "last.ckpt", weights_only=True) for d in (straight, killed)
    )
    assert a["global_step"] == b["global_step"] == 4
    # The family logs the metric it declares better by, and its best checkpoint is kept.
    assert (straight / "checkpoints" / "best.ckpt").is_file()
    for name, tensor in a["state_dict"].items():
        assert torch.equal(b["state_dict"][name], tensor), name
