"""CUDA training in each mixed precision, compiled and sharded, and CUDA sampling and scoring
that match the CPU's; skipped without a GPU."""

from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import (
    TINY_DIFFUSION,
    TINY_GAN,
    TINY_IMAGE_TOKENIZER,
    TINY_TEXT_IMAGE,
    compose_config,
    guided_draws_with_and_without_cache,
    tiny_classifier,
)

from aigc.core.checkpoints import load_model
from aigc.core.conditioning import Condition
from aigc.eval import evaluate
from aigc.train import train
from aigc.utils.instantiate import instantiate

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
two_gpus = pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")


def tiny_text(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.txt"
    path.write_text("the quick brown fox jumps over the lazy dog\n" * 200)
    return path


def lm_overrides(tmp_path: Path) -> list[str]:
    return [
        "model=language_model",
        "data=text",
        f"data.path={tiny_text(tmp_path)}",
        "model.block_size=32",
        "model.n_layer=2",
        "model.n_head=2",
        "model.n_embd=64",
        "data.batch_size=8",
        "data.val_batches=2",
        "trainer.val_check_interval=4",
        "trainer.check_val_every_n_epoch=null",
        "trainer.log_every_n_steps=2",
    ]


@cuda
@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("conditioning", ["null", "label", "text"])
def test_gan_on_gpu(
    make_cfg, tiny_mnist: Path, precision: str, compiled: bool, conditioning: str
) -> None:
    metrics = train(
        make_cfg(
            "trainer=gpu",
            f"trainer.precision={precision}",
            f"model.compile={compiled}",
            f"model.conditioning={conditioning}",
            "data=mnist_captions",
            "model.ema_decay=0.9",
            f"paths.data_dir={tiny_mnist}",
            "data.batch_size=32",
            "trainer.max_steps=4",
            "trainer.log_every_n_steps=2",
            *TINY_GAN,
        )
    )
    assert torch.isfinite(torch.tensor(metrics["loss/g"]))


@cuda
@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("conditioning", ["null", "label", "text"])
def test_diffusion_on_gpu(
    make_cfg, tiny_mnist: Path, tmp_path: Path, precision: str, compiled: bool, conditioning: str
) -> None:
    train(
        make_cfg(
            "model=diffusion",
            "trainer=gpu",
            f"trainer.precision={precision}",
            f"model.compile={compiled}",
            f"model.conditioning={conditioning}",
            "data=mnist_captions",
            "model.text_encoder.n_embd=16",
            f"paths.data_dir={tiny_mnist}",
            "data.batch_size=32",
            "trainer.max_steps=4",
            "logger=none",
            *TINY_DIFFUSION,
        )
    )
    model = load_model(tmp_path / "run", device="cuda")
    # The noise is drawn on the CPU: the same images on either device, up to kernel rounding.
    sampling = {"seed": 0, "num_samples": 20 if conditioning == "null" else None}
    on_gpu = model.sample_from_config(sampling)
    on_cpu = load_model(tmp_path / "run").sample_from_config(sampling)
    torch.testing.assert_close(on_gpu.images, on_cpu.images, atol=2e-3, rtol=0)


@cuda
def test_samples_on_gpu_match_the_cpu(make_cfg, tiny_mnist: Path, tmp_path: Path) -> None:
    train(
        make_cfg(
            "trainer=gpu",
            "model.conditioning=label",
            f"paths.data_dir={tiny_mnist}",
            "data.batch_size=32",
            "trainer.max_steps=2",
            "logger=none",
            *TINY_GAN,
        )
    )
    sampling = {"seed": 0, "num_samples": 20}
    on_gpu = load_model(tmp_path / "run", device="cuda").sample_from_config(sampling)
    on_cpu = load_model(tmp_path / "run").sample_from_config(sampling)
    # The latents are drawn on the CPU: the same images on either device, up to kernel rounding.
    torch.testing.assert_close(on_gpu.images, on_cpu.images, atol=1e-3, rtol=0)


@cuda
@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
@pytest.mark.parametrize("compiled", [False, True])
def test_language_model_on_gpu(make_cfg, tmp_path: Path, precision: str, compiled: bool) -> None:
    metrics = train(
        make_cfg(
            "trainer=gpu",
            f"trainer.precision={precision}",
            f"model.compile={compiled}",
            "trainer.max_steps=8",
            *lm_overrides(tmp_path),
        )
    )
    assert torch.isfinite(torch.tensor(metrics["val/loss"]))


@cuda
@pytest.mark.parametrize("compiled", [False, True])
def test_text_image_model_on_gpu(
    make_cfg, tiny_mnist: Path, tmp_path: Path, compiled: bool
) -> None:
    on_gpu = [
        "trainer=gpu",
        "trainer.precision=bf16-mixed",
        f"paths.data_dir={tiny_mnist}",
        "data.batch_size=16",
        "trainer.max_steps=4",
        "logger=none",
    ]
    tokenizer, run = tmp_path / "tokenizer", tmp_path / "run"
    train(
        make_cfg(
            "model=image_tokenizer",
            "data=mnist",
            *TINY_IMAGE_TOKENIZER,
            *on_gpu,
            output_dir=tokenizer,
        )
    )
    train(
        make_cfg(
            "model=text_image",
            "data=mnist_captions",
            *TINY_TEXT_IMAGE,
            f"model.image_tokenizer={tokenizer}",
            f"model.compile={compiled}",
            *on_gpu,
            output_dir=run,
        )
    )
    model, on_cpu = load_model(run, device="cuda"), load_model(run)
    # Both directions score the same rows the same on either device, up to kernel rounding.
    torch.manual_seed(0)
    images = torch.rand(4, 1, 28, 28) * 2 - 1
    texts = ["a one", "the digit two", "", "3"]
    codes = on_cpu.image_tokenizer.encode(images)  # (4, tokens_per_image)
    for image_first in (False, True):
        expected = on_cpu.layout.segment_nll(on_cpu.network, codes, texts, image_first)
        got = model.layout.segment_nll(model.network, codes.cuda(), texts, image_first)
        torch.testing.assert_close(got.cpu(), expected, rtol=1e-3, atol=1e-3)
    # Drawing with guidance and best-of-2 reranking, and captioning, from CPU inputs.
    generator = torch.Generator().manual_seed(0)
    drawn = model.sample(
        4, condition=Condition(texts=texts), generator=generator, guidance_scale=3.0, best_of=2
    )
    assert drawn.images.shape == (4, 1, 28, 28) and drawn.images.abs().max() <= 1
    assert all(isinstance(caption, str) for caption in model.caption(images))
    # The KV cache changes only the speed on the GPU too.
    draws = guided_draws_with_and_without_cache(model, texts)
    assert draws[0].is_cuda and torch.equal(draws[0], draws[1])
    # eval.py on the GPU in bf16: the likelihoods of the CPU's fp32 scorecard, up to rounding.
    classifier = tiny_classifier(make_cfg, tiny_mnist, tmp_path / "classifier")

    def scorecard(*overrides: str) -> dict:
        return evaluate(
            compose_config(
                "eval",
                f"ckpt_path={run}",
                "data=mnist_captions",
                f"paths.data_dir={tiny_mnist}",
                f"image.feature_ckpt={classifier}",
                "sampling.num_samples=2000",
                *overrides,
            )
        )

    scores, cpu_scores = (
        scorecard("accelerator=gpu", "precision=bf16-mixed"),
        scorecard("accelerator=cpu"),
    )
    for name in ("image_bits_per_dim", "caption_bits_per_byte"):
        assert scores[name] == pytest.approx(cpu_scores[name], rel=2e-2), name
    assert 0 <= scores["heldout/conditional_accuracy"] <= 1


@two_gpus
def test_fsdp_language_model_checkpoint_loads_whole(make_cfg, tmp_path: Path) -> None:
    metrics = train(
        make_cfg(
            "trainer=fsdp", "trainer.devices=2", "trainer.max_steps=8", *lm_overrides(tmp_path)
        )
    )
    model = load_model(tmp_path / "run", device="cuda")
    # Gathered, not sharded: every tensor has the whole model's shape.
    whole = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    for name, tensor in model.state_dict().items():
        assert whole["state_dict"][name].shape == tensor.shape, name
    # The gathered weights are the trained ones: their validation loss is the run's.
    datamodule = instantiate(make_cfg("trainer=gpu", *lm_overrides(tmp_path)).data)
    (results,) = L.Trainer(accelerator="gpu", devices=1, logger=False).validate(
        model, datamodule=datamodule, verbose=False
    )
    assert results["val/loss"] == pytest.approx(metrics["val/loss"], rel=1e-3)
