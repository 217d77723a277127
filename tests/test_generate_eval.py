"""``generate`` and ``eval`` end to end on checkpoints of tiny training runs of each family."""

import json
from pathlib import Path

import pytest
import torch
from conftest import TINY_GAN, TINY_LM, compose_config
from PIL import Image

from aigc.errors import CheckpointError, ConfigError
from aigc.evaluate import evaluate, report
from aigc.generate import generate
from aigc.train import train


def checkpoint_of(make_cfg, output_dir: Path, *overrides: str) -> Path:
    train(make_cfg(*overrides, "trainer.max_steps=2", "logger=none", output_dir=output_dir))
    return output_dir / "checkpoints" / "last.ckpt"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("to be, or not to be, that is the question:\n" * 40, encoding="utf-8")
    return path


@pytest.fixture
def gan_ckpt(make_cfg, tiny_mnist: Path, tmp_path: Path) -> Path:
    data = [f"paths.data_dir={tiny_mnist}", "data.batch_size=32"]
    return checkpoint_of(make_cfg, tmp_path / "gan", *data, *TINY_GAN)


@pytest.fixture
def lm_ckpt(make_cfg, corpus: Path, tmp_path: Path) -> Path:
    return checkpoint_of(
        make_cfg, tmp_path / "lm", *TINY_LM, f"data.path={corpus}", "data.batch_size=8"
    )


@pytest.fixture
def classifier_ckpt(make_cfg, tiny_mnist: Path, tmp_path: Path) -> Path:
    data = [f"paths.data_dir={tiny_mnist}", "data.batch_size=32"]
    return checkpoint_of(
        make_cfg, tmp_path / "classifier", "model=classifier", *data, "model.width=8"
    )


def test_generate_image_grid_and_files(gan_ckpt: Path, tmp_path: Path) -> None:
    grid = tmp_path / "out" / "grid.png"
    cfg = compose_config(
        "generate",
        f"ckpt_path={gan_ckpt}",
        "num_samples=10",
        f"image.output={grid}",
        "image.nrow=5",
        f"image.per_sample_dir={tmp_path / 'each'}",
    )
    assert generate(cfg) == grid
    width, height = Image.open(grid).size
    assert (width, height) == (2 + 5 * 30, 2 + 2 * 30)  # 28 px images with 2 px padding
    assert len(list((tmp_path / "each").glob("*.png"))) == 10


def test_generate_is_seeded(gan_ckpt: Path, tmp_path: Path) -> None:
    def grid(seed: int, name: str) -> bytes:
        path = tmp_path / name
        generate(
            compose_config(
                "generate", f"ckpt_path={gan_ckpt}", f"seed={seed}", f"image.output={path}"
            )
        )
        return path.read_bytes()

    assert grid(1, "a.png") == grid(1, "b.png") != grid(2, "c.png")


def test_generate_text_streams_prompt_and_continuation(
    lm_ckpt: Path, tmp_path: Path, capsys
) -> None:
    output = tmp_path / "sample.txt"
    cfg = compose_config(
        "generate",
        f"ckpt_path={lm_ckpt}",
        "num_samples=2",
        "text.prompt=to be",
        "text.max_new_tokens=30",
        "text.top_k=5",
        f"text.output={output}",
        "precision=bf16",
    )
    samples = generate(cfg)
    assert len(samples) == 2 and all(s.startswith("to be") and len(s) == 35 for s in samples)
    printed = capsys.readouterr().out
    assert samples[0] in printed and samples[1] in printed
    assert output.read_text(encoding="utf-8") == "\n\n".join(samples) + "\n"


def test_generate_needs_no_dataset(lm_ckpt: Path, corpus: Path) -> None:
    corpus.unlink()
    (sample,) = generate(
        compose_config("generate", f"ckpt_path={lm_ckpt}", "num_samples=1", "text.max_new_tokens=5")
    )
    assert len(sample) == 6


def test_eval_language_model(lm_ckpt: Path, corpus: Path, tmp_path: Path) -> None:
    cfg = compose_config("eval", f"ckpt_path={lm_ckpt}", "data=text", f"data.path={corpus}")
    results = evaluate(cfg)
    assert results["perplexity"] == pytest.approx(
        torch.tensor(results["loss"]).exp().item(), rel=1e-5
    )
    assert results["bits_per_character"] == pytest.approx(
        results["loss"] / torch.log(torch.tensor(2.0)).item()
    )
    report(results, tmp_path / "metrics.json")
    assert json.loads((tmp_path / "metrics.json").read_text())["loss"] == results["loss"]


def test_eval_generator_with_classifier_features(
    gan_ckpt: Path, classifier_ckpt: Path, tiny_mnist: Path
) -> None:
    cfg = compose_config(
        "eval",
        f"ckpt_path={gan_ckpt}",
        "data=mnist",
        f"paths.data_dir={tiny_mnist}",
        f"image.feature_ckpt={classifier_ckpt}",
        "image.num_samples=64",
        "image.batch_size=32",
    )
    results = evaluate(cfg)
    assert results["fid"] > 0 and results["kid_mean"] > 0 and results["is_mean"] >= 1.0
    assert results["feature_network"].startswith("classifier")
    assert isinstance(results["inception_fid"], str) and "InceptionV3" in results["inception_fid"]


def test_eval_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        evaluate(compose_config("eval", f"ckpt_path={tmp_path / 'none.ckpt'}", "data=mnist"))


def test_eval_wrong_family_for_data(lm_ckpt: Path, tiny_mnist: Path) -> None:
    cfg = compose_config(
        "eval", f"ckpt_path={lm_ckpt}", "data=mnist", f"paths.data_dir={tiny_mnist}"
    )
    with pytest.raises(CheckpointError, match="holds a LanguageModel, a text model"):
        evaluate(cfg)


def test_eval_without_feature_network(gan_ckpt: Path, tiny_mnist: Path) -> None:
    cfg = compose_config(
        "eval", f"ckpt_path={gan_ckpt}", "data=mnist", f"paths.data_dir={tiny_mnist}"
    )
    with pytest.raises(ConfigError, match="experiment=mnist_classifier"):
        evaluate(cfg)


def test_eval_with_a_generator_as_feature_network(gan_ckpt: Path, tiny_mnist: Path) -> None:
    cfg = compose_config(
        "eval",
        f"ckpt_path={gan_ckpt}",
        "data=mnist",
        f"paths.data_dir={tiny_mnist}",
        f"image.feature_ckpt={gan_ckpt}",
    )
    with pytest.raises(CheckpointError):
        evaluate(cfg)


def test_eval_needs_data(gan_ckpt: Path) -> None:
    with pytest.raises(ConfigError, match="data=<config>"):
        evaluate(compose_config("eval", f"ckpt_path={gan_ckpt}"))
