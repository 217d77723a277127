"""``generate`` and ``eval`` end to end on checkpoints of tiny training runs of each family."""

import json
from pathlib import Path

import pytest
import torch
from conftest import TINY_GAN, TINY_LM, compose_config
from PIL import Image

from aigc.errors import CheckpointError, ConfigError
from aigc.eval import evaluate, output_path, report
from aigc.generate import generate
from aigc.train import train

MNIST_DIGITS = [
    f"{i} - {name}"
    for i, name in enumerate(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    )
]


def checkpoint_of(make_cfg, output_dir: Path, *overrides: str) -> Path:
    train(make_cfg(*overrides, "trainer.max_steps=2", "logger=none", output_dir=output_dir))
    return output_dir / "checkpoints" / "last.ckpt"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("to be, or not to be, that is the question:\n" * 40, encoding="utf-8")
    return path


def gan_checkpoint(make_cfg, data_dir: Path, run_dir: Path, *overrides: str) -> Path:
    data = [f"paths.data_dir={data_dir}", "data.batch_size=32"]
    return checkpoint_of(make_cfg, run_dir, *data, *TINY_GAN, *overrides)


@pytest.fixture
def gan_ckpt(make_cfg, tiny_mnist: Path, tmp_path: Path) -> Path:
    return gan_checkpoint(make_cfg, tiny_mnist, tmp_path / "gan")


@pytest.fixture
def label_gan_ckpt(make_cfg, tiny_mnist: Path, tmp_path: Path) -> Path:
    return gan_checkpoint(make_cfg, tiny_mnist, tmp_path / "label_gan", "model.conditioning=label")


@pytest.fixture
def text_gan_ckpt(make_cfg, tiny_mnist: Path, tmp_path: Path) -> Path:
    return gan_checkpoint(
        make_cfg,
        tiny_mnist,
        tmp_path / "text_gan",
        "data=mnist_captions",
        "model.conditioning=text",
    )


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


def run_generate(ckpt: Path, *overrides: str):
    return generate(compose_config("generate", f"ckpt_path={ckpt}", *overrides))


def test_generate_image_grid_and_files(gan_ckpt: Path, tmp_path: Path) -> None:
    samples, path = run_generate(
        gan_ckpt,
        "sampling.num_samples=10",
        f"output={tmp_path / 'out' / 'grid'}",
        f"per_sample_dir={tmp_path / 'each'}",
    )
    assert path == tmp_path / "out" / "grid.png" and len(samples) == 10
    # Unconditional samples: rows of 8 tiles of 28 px with 2 px padding; one channel.
    image = Image.open(path)
    assert image.size == (2 + 8 * 30, 2 + 2 * 30) and image.mode == "L"
    assert len(list((tmp_path / "each").glob("*.png"))) == 10


def test_generate_accepts_a_run_directory_and_is_seeded(gan_ckpt: Path, tmp_path: Path) -> None:
    run_dir = gan_ckpt.parents[1]

    def grid(seed: int, name: str) -> bytes:
        _, path = run_generate(run_dir, f"sampling.seed={seed}", f"output={tmp_path / name}")
        return path.read_bytes()

    assert grid(1, "a.png") == grid(1, "b.png") != grid(2, "c.png")


def test_generate_and_eval_take_a_runs_best_checkpoint(
    make_cfg, tiny_mnist: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    # By this metric the first validation is the best: best.ckpt holds epoch 0, last.ckpt epoch 1.
    first_is_best = ("callbacks.best_checkpoint.monitor=step", "callbacks.best_checkpoint.mode=min")
    data = (f"paths.data_dir={tiny_mnist}", "data.batch_size=32")
    train(make_cfg(*data, *TINY_GAN, "trainer.max_epochs=2", *first_is_best, "logger=none"))
    best_file = run_dir / "checkpoints" / "best.ckpt"

    def grid(ckpt: Path, name: str) -> torch.Tensor:
        return run_generate(ckpt, "sampling.num_samples=4", f"output={tmp_path / name}")[0].images

    assert torch.equal(grid(run_dir / "best", "a"), grid(best_file, "b"))
    assert not torch.equal(grid(run_dir / "best", "a"), grid(run_dir, "c"))  # last.ckpt
    cfg = compose_config("eval", f"ckpt_path={run_dir / 'best'}", "data=mnist")
    assert output_path(cfg) == best_file.with_name("metrics.json")


def test_a_run_without_a_best_checkpoint(gan_ckpt: Path, tiny_mnist: Path) -> None:
    run_dir = gan_ckpt.parents[1]  # trained 2 steps, never validated during training
    message = r"without checkpoints/best\.ckpt: a run keeps best\.ckpt from its first validation"
    with pytest.raises(CheckpointError, match=message):
        run_generate(run_dir / "best")
    with pytest.raises(CheckpointError, match=message):
        evaluate(compose_config("eval", f"ckpt_path={run_dir / 'best'}", "data=mnist"))


def test_generate_one_class_or_a_list_of_classes(label_gan_ckpt: Path, tmp_path: Path) -> None:
    samples, _ = run_generate(label_gan_ckpt, "label=7", f"output={tmp_path / 'a'}")
    assert samples.captions == [MNIST_DIGITS[7]] * 8  # 8 per condition by default
    samples, path = run_generate(
        label_gan_ckpt, "label=[0,1,2]", "sampling.num_samples=6", f"output={tmp_path / 'b'}"
    )
    assert samples.captions == [MNIST_DIGITS[i] for i in (0, 0, 1, 1, 2, 2)]
    # One row per label, labelled in a margin left of the 2 x 30 px tiles.
    width, height = Image.open(path).size
    assert height == 2 + 3 * 30 and width > 2 + 2 * 30


def test_generate_every_class_by_default(label_gan_ckpt: Path, tmp_path: Path) -> None:
    samples, _ = run_generate(label_gan_ckpt, "sampling.num_samples=20", f"output={tmp_path / 'g'}")
    assert samples.captions == [name for name in MNIST_DIGITS for _ in range(2)]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("label=10", "label 10 is out of range: this model knows classes 0 to 9"),
        ("prompt=a seven", "takes class labels, not texts"),
        ("sampling.num_samples=15", "num_samples=15 does not split evenly over 10 labels"),
        ("sampling.temperature=0.5", "temperature: not a sampling setting of a GAN"),
    ],
)
def test_generate_bad_input_for_a_label_model(
    label_gan_ckpt: Path, tmp_path: Path, override: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        run_generate(label_gan_ckpt, override, f"output={tmp_path / 'x'}")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("label=3", "is unconditional: it takes no labels"),
        ("prompt=a seven", "is unconditional: it takes no texts"),
        ("sampling.num_samples=0", "num_samples=0: draw at least one sample"),
        ("sampling.ema=true", "keeps no average of its weights"),
        ("precision=bf16", "precision=bf16 is now called bf16-mixed"),
        ("precision=16-mixed", "precision=16-mixed needs a CUDA GPU; use bf16-mixed"),
        ("accelerator=tpu", "accelerator=tpu; choose auto, cpu or gpu"),
    ],
)
def test_generate_bad_input_for_an_unconditional_model(
    gan_ckpt: Path, tmp_path: Path, override: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        run_generate(gan_ckpt, override, f"output={tmp_path / 'x'}")


def test_generate_from_prompts(text_gan_ckpt: Path, tmp_path: Path) -> None:
    samples, _ = run_generate(
        text_gan_ckpt,
        "prompt=a handwritten seven",
        "sampling.num_samples=4",
        f"output={tmp_path / 'p'}",
    )
    assert samples.images.shape == (4, 1, 28, 28)
    assert samples.captions == ["a handwritten seven"] * 4
    with pytest.raises(ConfigError, match="takes text prompts, not labels"):
        run_generate(text_gan_ckpt, "label=7", f"output={tmp_path / 'q'}")
    with pytest.raises(ConfigError, match="at most 64"):
        run_generate(text_gan_ckpt, f"prompt={'seven ' * 20}", f"output={tmp_path / 'r'}")


def test_generate_text_streams_prompt_and_continuation(
    lm_ckpt: Path, tmp_path: Path, capsys
) -> None:
    samples, path = run_generate(
        lm_ckpt,
        "sampling.num_samples=2",
        "prompt=to be",
        "sampling.max_new_tokens=30",
        "sampling.top_k=5",
        f"output={tmp_path / 'sample'}",
        "precision=bf16-mixed",
    )
    texts = samples.texts
    assert len(texts) == 2 and all(s.startswith("to be") and len(s) == 35 for s in texts)
    printed = capsys.readouterr().out
    assert texts[0] in printed and texts[1] in printed
    assert path.read_text(encoding="utf-8") == "\n\n".join(texts) + "\n"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("sampling.top_p=1.5", r"top_p must be in \(0, 1\]"),
        ("sampling.top_k=0", "top_k must be >= 1"),
        ("sampling.temperature=-1", "temperature must be >= 0"),
        ("sampling.max_new_tokens=-1", "max_new_tokens=-1: generate at least one token"),
        ("prompt=Zebra", "'Z' is not in the vocabulary"),
    ],
)
def test_generate_bad_text_settings(lm_ckpt: Path, tmp_path: Path, override: str, message: str):
    with pytest.raises(ConfigError, match=message):
        run_generate(lm_ckpt, override, f"output={tmp_path / 'x'}")


def test_generate_needs_no_dataset(lm_ckpt: Path, corpus: Path, tmp_path: Path) -> None:
    corpus.unlink()
    samples, _ = run_generate(
        lm_ckpt, "sampling.num_samples=1", "sampling.max_new_tokens=5", f"output={tmp_path / 's'}"
    )
    assert len(samples.texts[0]) == 6  # the model's own prompt, a newline, and 5 characters


def test_weights_that_do_not_fit_the_model_are_one_line(gan_ckpt: Path, tmp_path: Path) -> None:
    checkpoint = torch.load(gan_ckpt, weights_only=True)
    name = next(k for k, v in checkpoint["state_dict"].items() if v.dim() == 4)
    checkpoint["state_dict"][name] = checkpoint["state_dict"][name][:1]  # an older layout's size
    torch.save(checkpoint, tmp_path / "old.ckpt")
    with pytest.raises(CheckpointError, match=rf"old\.ckpt does not fit the GAN .*{name}") as err:
        run_generate(tmp_path / "old.ckpt")
    assert "\n" not in str(err.value)


def test_generate_refuses_a_classifier(classifier_ckpt: Path) -> None:
    with pytest.raises(CheckpointError, match="holds a Classifier, not a GenerativeModule"):
        run_generate(classifier_ckpt)


def test_eval_refuses_a_classifier(classifier_ckpt: Path, tiny_mnist: Path) -> None:
    cfg = compose_config(
        "eval", f"ckpt_path={classifier_ckpt}", "data=mnist", f"paths.data_dir={tiny_mnist}"
    )
    with pytest.raises(ConfigError, match=r"holds a Classifier, which eval\.py does not score"):
        evaluate(cfg)


def test_eval_language_model(lm_ckpt: Path, corpus: Path, tmp_path: Path) -> None:
    cfg = compose_config("eval", f"ckpt_path={lm_ckpt}", "data=text", f"data.path={corpus}")
    results = evaluate(cfg)
    assert results["perplexity"] == pytest.approx(
        torch.tensor(results["loss"]).exp().item(), rel=1e-5
    )
    assert results["bpc"] == pytest.approx(results["loss"] / torch.log(torch.tensor(2.0)).item())
    report(results, tmp_path / "metrics.json")
    assert json.loads((tmp_path / "metrics.json").read_text())["loss"] == results["loss"]


def eval_generator(ckpt: Path, data_dir: Path, classifier: Path, *overrides: str) -> dict:
    cfg = compose_config(
        "eval",
        f"ckpt_path={ckpt}",
        "data=mnist",
        f"paths.data_dir={data_dir}",
        f"paths.cache_dir={data_dir / 'cache'}",
        f"image.feature_ckpt={classifier}",
        "sampling.num_samples=60",
        "image.batch_size=32",
        *overrides,
    )
    return evaluate(cfg)


def test_eval_generator_scorecard(
    gan_ckpt: Path,
    classifier_ckpt: Path,
    tiny_mnist: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_network: None,
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # without InceptionV3 weights
    results = eval_generator(gan_ckpt, tiny_mnist, classifier_ckpt)
    assert results["fid"] > 0 and results["kid_mean"] > 0 and results["is_mean"] >= 1.0
    for name in ("precision", "recall", "density", "coverage"):
        assert 0 <= results[name] <= (float("inf") if name == "density" else 1)
    assert "conditional_accuracy" not in results  # an unconditional model
    assert results["feature_network"].startswith("classifier") and results["samples"] == 60
    assert results["inception_fid"].startswith("standard FID (InceptionV3) needs")
    # The real images' features were cached; the second evaluation reads them.
    (cache,) = (tiny_mnist / "cache" / "reference_features").glob("*.pt")
    before = cache.stat().st_mtime_ns
    again = eval_generator(gan_ckpt, tiny_mnist, classifier_ckpt)
    assert cache.stat().st_mtime_ns == before
    # Everything but the wall time is the same: same seed, same samples, same features.
    assert again.pop("seconds_per_image") > 0 and results.pop("seconds_per_image") > 0
    assert again == results


def test_eval_label_model_reports_conditional_scores(
    label_gan_ckpt: Path, classifier_ckpt: Path, tiny_mnist: Path
) -> None:
    results = eval_generator(label_gan_ckpt, tiny_mnist, classifier_ckpt)
    assert 0 <= results["conditional_accuracy"] <= 1 and results["intra_fid"] > 0


def test_eval_text_model_scores_training_and_heldout_prompts(
    text_gan_ckpt: Path, classifier_ckpt: Path, tiny_mnist: Path
) -> None:
    # 25 training templates x 10 digits and 8 held-out ones x 10 digits.
    results = eval_generator(
        text_gan_ckpt,
        tiny_mnist,
        classifier_ckpt,
        "data=mnist_captions",
        "sampling.num_samples=2000",
    )
    assert 0 <= results["conditional_accuracy"] <= 1
    assert 0 <= results["heldout/conditional_accuracy"] <= 1
    assert results["heldout/intra_fid"] > 0


def test_eval_output_next_to_a_run_directory_checkpoint(gan_ckpt: Path) -> None:
    cfg = compose_config("eval", f"ckpt_path={gan_ckpt.parents[1]}", "data=mnist")
    assert output_path(cfg) == gan_ckpt.with_name("metrics.json")


def test_eval_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        evaluate(compose_config("eval", f"ckpt_path={tmp_path / 'none.ckpt'}", "data=mnist"))


def test_eval_wrong_data_for_the_model(lm_ckpt: Path, tiny_mnist: Path) -> None:
    cfg = compose_config(
        "eval", f"ckpt_path={lm_ckpt}", "data=mnist", f"paths.data_dir={tiny_mnist}"
    )
    with pytest.raises(ConfigError, match="holds a LanguageModel, which generates text"):
        evaluate(cfg)


def test_eval_without_feature_network(gan_ckpt: Path, tiny_mnist: Path) -> None:
    cfg = compose_config(
        "eval", f"ckpt_path={gan_ckpt}", "data=mnist", f"paths.data_dir={tiny_mnist}"
    )
    with pytest.raises(ConfigError, match="experiment=mnist_classifier"):
        evaluate(cfg)


def test_eval_with_a_generator_as_feature_network(gan_ckpt: Path, tiny_mnist: Path) -> None:
    with pytest.raises(CheckpointError, match="holds a GAN, not a ImageClassifier"):
        eval_generator(gan_ckpt, tiny_mnist, gan_ckpt)


def test_eval_needs_data(gan_ckpt: Path) -> None:
    with pytest.raises(ConfigError, match="data=<config>"):
        evaluate(compose_config("eval", f"ckpt_path={gan_ckpt}"))


def test_generate_draws_the_grid_training_showed(make_cfg, tiny_mnist: Path, tmp_path: Path):
    run_dir = tmp_path / "run"
    train(
        make_cfg(
            f"paths.data_dir={tiny_mnist}",
            "data.batch_size=32",
            "model.conditioning=label",
            "model.ema_decay=0.5",
            "sampling.seed=3",
            "sampling.num_samples=20",
            "callbacks.samples.every_n_steps=2",
            "trainer.max_steps=2",
            "logger=none",
            *TINY_GAN,
            output_dir=run_dir,
        )
    )
    _, path = run_generate(
        run_dir, "sampling.seed=3", "sampling.num_samples=20", f"output={tmp_path / 'again'}"
    )
    assert path.read_bytes() == (run_dir / "samples" / "step_0000002.png").read_bytes()


def test_scorecard_script_prints_one_table(
    gan_ckpt: Path, label_gan_ckpt: Path, classifier_ckpt: Path, tiny_mnist: Path
) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [
            sys.executable,
            str(root / "scripts" / "scorecard.py"),
            str(gan_ckpt.parents[1]),
            str(label_gan_ckpt),
            "--",
            "data=mnist",
            f"paths.data_dir={tiny_mnist}",
            f"paths.cache_dir={tiny_mnist / 'cache'}",
            f"image.feature_ckpt={classifier_ckpt}",
            "sampling.num_samples=40",
            "image.batch_size=20",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("| model | samples | fid | kid_mean | is_mean | precision |")
    assert "conditional_accuracy" in lines[0]
    rows = [line for line in lines[2:] if line.startswith("| ")]
    assert len(rows) == 2 and "(GAN, label)" in rows[1] and "| 40 |" in rows[0]
    assert gan_ckpt.with_name("metrics.json").is_file()  # written as eval.py writes it
