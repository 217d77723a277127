"""The VQ-VAE, the image tokenizer: its bottleneck, its tokenizer interface, what it logs, and a
round trip after a short training. The contract test (test_contract.py) covers training,
reloading, exports and exact resumes, for both quantizers."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_IMAGE_TOKENIZER, compose_config, tiny_classifier, write_idx

from aigc.core.checkpoints import load_model
from aigc.core.scoring import CodebookUsage
from aigc.errors import ConfigError
from aigc.eval import evaluate
from aigc.models.image_tokenizer import ImageTokenizer
from aigc.models.image_tokenizer.quantizer import Quantizer
from aigc.train import train

VQ = {
    "codebook_size": 16,
    "dim": 4,
    "decay": 0.9,
    "dead_code_threshold": 1,
    "commitment_weight": 0.25,
}


def tiny_model(**kwargs) -> ImageTokenizer:
    torch.manual_seed(0)
    sizes = dict(widths=(8, 8, 8), norm_groups=4, levels=(4, 3), vq=VQ)
    return ImageTokenizer((1, 28, 28), **{**sizes, **kwargs}).eval()


def write_rectangles(root: Path, num_train: int = 256, num_test: int = 64) -> Path:
    """An MNIST-layout IDX dataset of white rectangles on black, at random places and sizes:
    images with structure an autoencoder can learn, unlike noise."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", num_train), ("t10k", num_test)):
        images = np.zeros((n, 28, 28), dtype=np.uint8)
        for image in images:
            top, left = rng.integers(2, 14, 2)
            height, width = rng.integers(6, 13, 2)
            image[top : top + height, left : left + width] = 255
        write_idx(raw / f"{split}-images-idx3-ubyte", images)
        write_idx(raw / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, (n,)))
    return root


@pytest.mark.parametrize("kind", ["fsq", "vq"])
def test_codes_stand_for_exactly_the_vectors_the_decoder_was_trained_on(kind: str) -> None:
    torch.manual_seed(0)
    quantizer = Quantizer(kind, (8, 5, 3), VQ)
    quantizer(torch.randn(8, quantizer.dim, 4, 4))  # a learned codebook initialises on a batch
    quantizer.eval()
    quantized, codes, _ = quantizer(torch.randn(2, quantizer.dim, 5, 5))
    assert codes.shape == (2, 5, 5) and codes.dtype == torch.long
    # decode(ids) looks up the very vectors the quantizer passed to the decoder.
    torch.testing.assert_close(quantizer.lookup(codes), quantized, rtol=0, atol=1e-6)
    if kind == "fsq":  # every code of the grid is its own vector
        every = torch.arange(quantizer.codebook_size).view(1, -1, 1)
        vectors = quantizer.lookup(every).squeeze(-1)[0].T  # (codebook_size, dim)
        assert len(torch.unique(vectors, dim=0)) == quantizer.codebook_size == 8 * 5 * 3


def test_fsq_vocabulary_is_the_product_of_its_levels() -> None:
    assert tiny_model(levels=(8, 5, 5, 5)).vocab_size == 1000
    assert tiny_model(quantizer="vq").vocab_size == 16


def test_the_tokenizer_interface_reads_and_writes_code_grids_row_by_row() -> None:
    model = tiny_model()
    images = torch.rand(3, 1, 28, 28) * 2 - 1
    ids = model.encode(images)
    assert ids.shape == (3, model.tokens_per_image) == (3, 49) and ids.dtype == torch.long
    assert ids.min() >= 0 and ids.max() < model.vocab_size
    grid = model.network.encode(images)  # (3, 7, 7)
    assert torch.equal(ids[:, 7:14], grid[:, 1])  # the second row of codes
    decoded = model.decode(ids)
    assert decoded.shape == images.shape and decoded.abs().max() <= 1
    torch.testing.assert_close(decoded, model(images), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.encode(torch.zeros(1, 3, 28, 28)), "this tokenizer reads (1, 28, 28)"),
        (lambda m: m.decode(torch.zeros(1, 48, dtype=torch.long)), "an image is 49 tokens"),
        (lambda m: m.decode(torch.full((1, 49), 12)), "must be in [0, 12)"),
    ],
)
def test_bad_tokenizer_input_is_refused(call, message: str) -> None:
    with pytest.raises(
        ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
    ):
        call(tiny_model())


def test_codebook_usage_is_perplexity_and_dead_fraction() -> None:
    usage = CodebookUsage(8)
    usage.update(torch.tensor([[0, 1], [2, 3]]))
    usage.update(torch.tensor([0, 1, 2, 3]))
    result = usage.compute()
    torch.testing.assert_close(result["perplexity"], torch.tensor(4.0))  # 4 codes, equally used
    torch.testing.assert_close(result["dead_fraction"], torch.tensor(0.5))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"quantizer": "lfq"}, "model.quantizer=lfq; choose fsq or vq"),
        ({"levels": (8, 1)}, "each channel needs 2 levels or more"),
        ({"widths": (8, 8, 8, 8)}, "28x28 does not divide by 8"),
        ({"norm_groups": 3}, "must divide every width"),
    ],
)
def test_bad_model_settings_are_one_line(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        tiny_model(**overrides)


def test_a_short_training_reconstructs_held_out_images_and_logs_its_scores(
    make_cfg, tmp_path: Path
) -> None:
    data_dir = write_rectangles(tmp_path / "data")
    cfg = make_cfg(
        "model=image_tokenizer",
        "data=mnist",
        "model.widths=[16,16,16]",
        "model.norm_groups=4",
        f"paths.data_dir={data_dir}",
        "data.batch_size=16",
        "data.val_fraction=0.125",
        "trainer.max_steps=150",
        "trainer.max_epochs=-1",
        "trainer.val_check_interval=50",
        "trainer.check_val_every_n_epoch=null",
        "callbacks.samples.every_n_steps=50",
        "logger=csv",
    )
    train(cfg)
    run = Path(cfg.paths.output_dir)
    model = load_model(run / "checkpoints" / "last.ckpt")
    raw = data_dir / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    test = torch.from_numpy(np.fromfile(raw, dtype=np.uint8)[16:].reshape(-1, 1, 28, 28).copy())
    images = test.float() / 127.5 - 1  # held-out rectangles
    with torch.no_grad():
        reconstruction = model.decode(model.encode(images))
    mse = (reconstruction - images).pow(2).mean()
    psnr = 10 * torch.log10(4 / mse)  # the range [-1, 1] is 2 wide
    baseline = 10 * torch.log10(4 / (images - images.mean(0)).pow(2).mean())  # the mean image
    assert psnr > 18 and psnr > baseline + 8, (psnr, baseline)
    # The logged scores and the reconstructions next to their originals.
    metrics = (run / "csv").rglob("metrics.csv")
    header = next(metrics).read_text().splitlines()[0].split(",")
    for name in ("val/loss", "val/psnr", "val/codebook_perplexity", "val/codebook_dead_fraction"):
        assert name in header, name
    assert (run / "samples" / "step_0000050.png").is_file()

    # eval.py's scorecard of a tokenizer: the same trip through the codes, and a classifier's view.
    classifier = tiny_classifier(make_cfg, data_dir, tmp_path / "classifier")
    scores = evaluate(
        compose_config(
            "eval",
            f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
            "data=mnist",
            f"paths.data_dir={data_dir}",
            f"image.feature_ckpt={classifier / 'checkpoints' / 'last.ckpt'}",
        )
    )
    assert scores["psnr"] == pytest.approx(float(psnr), abs=1e-3)
    assert 1 < scores["codebook_perplexity"] <= model.vocab_size
    assert 0 <= scores["codebook_dead_fraction"] < 1
    assert 0 <= scores["accuracy_reconstructions"] <= 1 and 0 <= scores["accuracy_originals"] <= 1
    assert scores["fid_reconstructions"] > 0
    assert scores["images"] == 64 and scores["tokens_per_image"] == 49


@pytest.mark.parametrize("quantizer", ["fsq", "vq"])
def test_bf16_mixed_precision_on_cpu(make_cfg, tiny_mnist: Path, quantizer: str) -> None:
    cfg = make_cfg(
        "model=image_tokenizer",
        "data=mnist",
        *TINY_IMAGE_TOKENIZER,
        f"model.quantizer={quantizer}",
        f"paths.data_dir={tiny_mnist}",
        "data.batch_size=16",
        "trainer.max_steps=2",
        "trainer.precision=bf16-mixed",
        "logger=none",
    )
    train(cfg)
    model = load_model(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert all(p.isfinite().all() for p in model.parameters())
