"""Conditions, the sampling interface's checks, prompts reaching the text encoder, and EMA."""

from pathlib import Path

import pytest
import torch
from conftest import TINY_GAN

from aigc.core.conditioning import Condition, spread
from aigc.errors import ConfigError
from aigc.models.gan import GAN
from aigc.nn import TextEncoder
from aigc.train import train


def test_condition_of_plain_values() -> None:
    assert Condition.of() is None
    assert Condition.of(labels=7).labels.tolist() == [7]
    assert Condition.of(labels=[0, 1]).labels.tolist() == [0, 1]
    assert Condition.of(texts="a seven").texts == ["a seven"]
    assert Condition.of(texts=["a", "b"]).kind == "text"
    with pytest.raises(ConfigError, match="only one of them"):
        Condition.of(labels=1, texts="one")
    images = torch.zeros(2, 1, 28, 28)
    assert Condition.of(images=images).kind == "image" and len(Condition.of(images=images)) == 2
    with pytest.raises(ConfigError, match="only one of them"):
        Condition.of(texts="one", images=images)


def test_spread_gives_each_condition_a_row() -> None:
    n, per_sample = spread(Condition.of(labels=[3, 5]), 6)
    assert n == 6 and per_sample.labels.tolist() == [3, 3, 3, 5, 5, 5]
    n, per_sample = spread(Condition.of(texts=["a", "b"]), None)  # 8 each by default
    assert n == 16 and per_sample.texts == ["a"] * 8 + ["b"] * 8
    assert spread(None, None) == (64, None) and spread(None, 5) == (5, None)
    images = torch.arange(2.0).view(2, 1, 1, 1)
    n, per_sample = spread(Condition.of(images=images), None)  # one description each
    assert n == 2 and torch.equal(per_sample.images, images)
    n, per_sample = spread(Condition.of(images=images), 4)
    assert n == 4 and per_sample.images.flatten().tolist() == [0, 0, 1, 1]
    assert per_sample.slice(1, 3).images.flatten().tolist() == [0, 1]
    with pytest.raises(ConfigError, match="num_samples=7 does not split evenly over 2 prompts"):
        spread(Condition.of(texts=["a", "b"]), 7)


def text_gan(**kwargs) -> GAN:
    torch.manual_seed(0)
    return GAN(
        image_shape=(1, 28, 28),
        latent_dim=8,
        generator_width=8,
        discriminator_width=8,
        conditioning="text",
        text_encoder={"n_layer": 1, "n_head": 2, "n_embd": 16, "max_length": 32},
        sample_prompts=["a one", "a two"],
        **kwargs,
    )


def test_a_prompt_reaches_the_text_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    gan = text_gan()
    seen = []
    forward = TextEncoder.forward
    monkeypatch.setattr(
        TextEncoder, "forward", lambda self, texts: seen.append(texts) or forward(self, texts)
    )

    def draw(prompt: str) -> torch.Tensor:
        generator = torch.Generator().manual_seed(0)
        condition = Condition.of(texts=[prompt] * 3)
        return gan.sample(3, condition=condition, generator=generator).images

    seven, three = draw("a handwritten seven"), draw("three")
    assert seen == [["a handwritten seven"] * 3, ["three"] * 3]
    assert not torch.allclose(seven, three)  # the same latents, another prompt: other images


def test_text_encoder_masks_padding() -> None:
    torch.manual_seed(0)
    encoder = TextEncoder(n_layer=1, n_head=2, n_embd=16, max_length=32).eval()
    alone = encoder(["七"]).pooled
    padded = encoder(["七", "a much longer prompt"]).pooled[:1]  # "七" padded to the longer one
    torch.testing.assert_close(alone, padded)
    with pytest.raises(ConfigError, match="is 33 bytes long; this model reads at most 32"):
        encoder(["x" * 33])
    with pytest.raises(ConfigError, match="prompt is empty"):
        encoder([""])
    with pytest.raises(ConfigError, match="kernel_size must be odd, not 4"):
        TextEncoder(kernel_size=4)


def test_unconditional_and_label_models_refuse_the_other_kinds() -> None:
    torch.manual_seed(0)
    label_gan = GAN((1, 28, 28), 8, 8, 8, conditioning="label", num_classes=3)
    with pytest.raises(ConfigError, match="takes class labels, not texts"):
        label_gan.sample(1, condition=Condition.of(texts="one"))
    with pytest.raises(ConfigError, match="label 3 is out of range"):
        label_gan.sample(1, condition=Condition.of(labels=3))
    with pytest.raises(ConfigError, match="takes text prompts, not labels"):
        text_gan().sample(1, condition=Condition.of(labels=0))
    with pytest.raises(ConfigError, match="needs labelled data"):
        GAN((1, 28, 28), conditioning="label")
    with pytest.raises(ConfigError, match="needs captioned data"):
        GAN((1, 28, 28), conditioning="text")
    with pytest.raises(ConfigError, match=r"model\.conditioning=style; choose null, label or text"):
        GAN((1, 28, 28), conditioning="style")
    with pytest.raises(ConfigError, match=r"model.ema_decay=1.5; choose a value in \(0, 1\)"):
        GAN((1, 28, 28), ema_decay=1.5)


def test_conditional_model_on_data_without_conditions(make_cfg, tiny_mnist: Path) -> None:
    cfg = make_cfg(f"paths.data_dir={tiny_mnist}", "model.conditioning=text", *TINY_GAN)
    with pytest.raises(ConfigError, match="needs captioned data"):
        train(cfg)


def ema_run(make_cfg, data_dir: Path, output_dir: Path, *overrides: str) -> dict:
    train(
        make_cfg(
            f"paths.data_dir={data_dir}",
            "data.batch_size=32",
            "model.ema_decay=0.9",
            "model.conditioning=label",
            "logger=none",
            "callbacks.samples.every_n_steps=0",
            *TINY_GAN,
            *overrides,
            output_dir=output_dir,
        )
    )
    return torch.load(output_dir / "checkpoints" / "last.ckpt", weights_only=True)


def test_ema_differs_from_the_raw_weights_and_resumes_exactly(
    make_cfg, tiny_mnist: Path, tmp_path: Path
) -> None:
    straight = ema_run(make_cfg, tiny_mnist, tmp_path / "straight", "trainer.max_epochs=2")
    ema_run(make_cfg, tiny_mnist, tmp_path / "resumed", "trainer.max_epochs=1")
    resumed = ema_run(
        make_cfg, tiny_mnist, tmp_path / "resumed", "trainer.max_epochs=2", "ckpt_path=last"
    )
    weights = straight["state_dict"]
    averaged = {k: v for k, v in weights.items() if k.startswith("ema.module.")}
    assert averaged and int(weights["ema.n_averaged"]) == straight["global_step"] == 6
    raw = weights["network.net.0.weight"]
    assert not torch.allclose(weights["ema.module.net.0.weight"], raw)
    for name, tensor in weights.items():
        assert torch.equal(resumed["state_dict"][name], tensor), name
