"""Exports: a model as model.safetensors and config.json, which other tools read as they are and
``from_pretrained`` turns back into a model that samples without a checkpoint or a Trainer.
(``tests/test_contract.py`` checks that every model config's export samples as its checkpoint.)"""

import json
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import compose_config, model_sampling, tiny_run
from safetensors.torch import load_file, save_file

import aigc
from aigc.core import Condition
from aigc.core.pretrained import CONFIG_FILE, WEIGHTS_FILE, from_pretrained, save_pretrained
from aigc.errors import CheckpointError, ConfigError, exit_on_user_error
from aigc.eval import output_path
from aigc.export import export, main
from aigc.generate import generate
from aigc.metrics import load_feature_network
from aigc.models.classifier import Classifier
from aigc.models.gan import GAN
from aigc.models.language_model import LanguageModel
from aigc.train import train

CLASS_NAMES = [f"class {i}" for i in range(3)]


@pytest.fixture
def gan() -> GAN:
    """A class-conditional GAN whose average differs from its raw weights."""
    model = GAN(
        image_shape=(1, 28, 28),
        latent_dim=8,
        generator_width=4,
        discriminator_width=4,
        conditioning="label",
        num_classes=3,
        class_names=CLASS_NAMES,
        ema_decay=0.9,
    )
    with torch.no_grad():
        for param in model.network.parameters():
            param.add_(0.1)  # the average keeps the initial weights
    return model


def images_of(model, **settings) -> torch.Tensor:
    condition = Condition.of(labels=[0, 1, 2])
    generator = torch.Generator().manual_seed(0)
    return model.sample(3, condition=condition, generator=generator, **settings).images


def test_an_export_holds_the_weights_that_sample_and_nothing_else(gan: GAN, tmp_path) -> None:
    averaged = save_pretrained(gan, tmp_path / "averaged")
    raw = save_pretrained(gan, tmp_path / "raw", ema=False)

    # Read with safetensors and json alone: the generator only, the average in its place.
    weights = load_file(averaged / WEIGHTS_FILE)
    assert weights.keys() == {f"network.{name}" for name in gan.network.state_dict()}
    for name, tensor in gan.ema.module.state_dict().items():
        assert torch.equal(weights[f"network.{name}"], tensor), name
    for name, tensor in gan.network.state_dict().items():
        assert torch.equal(load_file(raw / WEIGHTS_FILE)[f"network.{name}"], tensor), name
    config = json.loads((averaged / CONFIG_FILE).read_text())
    assert config["model_class"] == "aigc.models.gan.module.GAN"
    assert config["aigc_version"] == aigc.__version__
    assert config["hparams"]["class_names"] == CLASS_NAMES
    assert config["hparams"]["image_shape"] == [1, 28, 28]
    assert config["hparams"]["ema_decay"] is None
    # Readable by whoever may read config.json, though safetensors writes for its owner only.
    assert (averaged / WEIGHTS_FILE).stat().st_mode == (averaged / CONFIG_FILE).stat().st_mode

    loaded = aigc.from_pretrained(averaged)
    assert not loaded.training and loaded.discriminator is None and loaded.ema is None
    assert not any(p.requires_grad for p in loaded.parameters())
    torch.testing.assert_close(images_of(loaded), images_of(gan), rtol=0, atol=0)
    torch.testing.assert_close(
        images_of(from_pretrained(raw)), images_of(gan, ema=False), rtol=0, atol=0
    )
    with pytest.raises(ConfigError, match="keeps no average"):
        images_of(loaded, ema=True)


def test_sampling_an_export_needs_no_checkpoint_and_no_trainer(
    gan: GAN, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = save_pretrained(gan, tmp_path / "out")
    expected = images_of(gan)

    def refuse(*args, **kwargs):
        raise AssertionError("from_pretrained used Lightning's checkpoints or a Trainer")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(L.Trainer, "__init__", refuse)
    monkeypatch.setattr(L.LightningModule, "load_from_checkpoint", refuse)
    torch.testing.assert_close(images_of(aigc.from_pretrained(out)), expected, rtol=0, atol=0)


def test_tied_weights_are_stored_once_and_tied_again(tmp_path: Path) -> None:
    sizes = dict(block_size=8, n_layer=1, n_head=2, n_embd=8)
    tokenizer = {"kind": "char", "chars": "\n abcdefgh"}
    lm = LanguageModel(tokenizer, sampling=model_sampling("language_model"), **sizes)
    out = save_pretrained(lm, tmp_path / "lm")
    names = load_file(out / WEIGHTS_FILE).keys()
    assert len({"network.wte.weight", "network.lm_head.weight"} & names) == 1
    config = json.loads((out / CONFIG_FILE).read_text())
    assert config["hparams"]["tokenizer_state"] == {"kind": "char", "chars": "\n abcdefgh"}

    loaded = from_pretrained(out)
    assert loaded.network.lm_head.weight is loaded.network.wte.weight
    torch.testing.assert_close(loaded.network.wte.weight, lm.network.wte.weight, rtol=0, atol=0)

    def text(model: LanguageModel) -> str:
        condition = Condition.of(texts="a bad")
        generator = torch.Generator().manual_seed(0)
        return model.sample(1, condition=condition, generator=generator, max_new_tokens=8).texts

    assert text(loaded) == text(lm)


def test_an_exported_classifier_is_a_feature_network(tmp_path: Path) -> None:
    classifier = Classifier(image_shape=(1, 28, 28), num_classes=3, width=4, feature_dim=8)
    out = save_pretrained(classifier.eval(), tmp_path / "classifier")
    images = torch.rand(2, 1, 28, 28) * 2 - 1
    features, logits = load_feature_network(out)(images)
    torch.testing.assert_close(features, classifier.network.features(images), rtol=0, atol=0)
    torch.testing.assert_close(logits, classifier(images), rtol=0, atol=0)
    with pytest.raises(ConfigError, match="keeps no average"):
        save_pretrained(classifier, tmp_path / "ema", ema=True)


def bad_exports(tmp_path: Path, gan: GAN) -> dict[str, tuple[Path, str]]:
    """Broken folders by what is wrong with them, and what the error says."""
    good = save_pretrained(gan, tmp_path / "good")
    config = json.loads((good / CONFIG_FILE).read_text())

    def folder(name: str, config: dict | str | None, weights: bool = True) -> Path:
        path = tmp_path / name
        path.mkdir()
        if config is not None:
            text = config if isinstance(config, str) else json.dumps(config)
            (path / CONFIG_FILE).write_text(text)
        if weights:
            (path / WEIGHTS_FILE).write_bytes((good / WEIGHTS_FILE).read_bytes())
        return path

    other_sizes = {**config, "hparams": {**config["hparams"], "latent_dim": 9}}
    corrupt = folder("corrupt", config, weights=False)
    (corrupt / WEIGHTS_FILE).write_bytes(b"\x00" * 100)
    lacking = folder("lacking", config, weights=False)
    save_file(dict(list(load_file(good / WEIGHTS_FILE).items())[:1]), lacking / WEIGHTS_FILE)
    return {
        "missing": (tmp_path / "nowhere", "does not exist"),
        "a file": (good / CONFIG_FILE, "is not a folder"),
        "not an export": (folder("empty", None), "is not an exported model"),
        "not JSON": (folder("text", "{oops"), "is not readable JSON"),
        "not ours": (folder("theirs", {"architectures": ["Bert"]}), "not written by aigc-export"),
        "newer format": (
            folder("newer", {**config, "format_version": 2, "aigc_version": "9.0"}),
            r"export format 2 \(aigc 9.0\), and this aigc .* reads format 1",
        ),
        "no weights": (folder("no_weights", config, weights=False), "has config.json but no"),
        "corrupt weights": (corrupt, "does not hold this model's weights"),
        "other sizes": (folder("other_sizes", other_sizes), "does not hold this model's weights"),
        "weights lacking": (lacking, "does not hold this model's weights"),
        "foreign class": (
            folder("foreign", {**config, "model_class": "os.system"}),
            "not an aigc model family",
        ),
        "unknown setting": (
            folder("unknown", {**config, "hparams": {**config["hparams"], "depth": 3}}),
            "a GAN cannot be built from these settings",
        ),
    }


def test_a_folder_that_is_not_a_good_export_is_one_line(gan: GAN, tmp_path: Path) -> None:
    for case, (path, message) in bad_exports(tmp_path, gan).items():
        with pytest.raises(CheckpointError, match=message):
            from_pretrained(path)
        with pytest.raises(SystemExit) as exit_:
            exit_on_user_error(lambda p=path: from_pretrained(p))
        assert exit_.value.code.startswith("error: ") and "\n" not in exit_.value.code, case


def test_export_entry_point_and_generate_from_its_folder(
    make_cfg, tiny_mnist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    run = tmp_path / "run"
    overrides = ("model.conditioning=label", "model.ema_decay=0.5", "trainer.max_steps=2")
    train(tiny_run(make_cfg, tiny_mnist, *overrides, "logger=none", output_dir=run))
    out = tmp_path / "export"
    # The command line, run in this process: `python export.py ckpt_path=<run> output=<folder>`.
    monkeypatch.setattr(sys, "argv", ["export.py", f"ckpt_path={run}", f"output={out}"])
    main()
    assert f"wrote {out}" in capsys.readouterr().out

    def grid(source: Path, name: str) -> bytes:
        cfg = compose_config("generate", f"ckpt_path={source}", f"output={tmp_path / name}")
        return generate(cfg)[1].read_bytes()

    assert grid(out, "from_export") == grid(run, "from_checkpoint")
    cfg = compose_config("eval", f"ckpt_path={out}", "data=mnist")
    assert output_path(cfg) == out / "metrics.json"


def test_export_of_a_missing_checkpoint_is_one_line(tmp_path: Path) -> None:
    cfg = compose_config("export", f"ckpt_path={tmp_path / 'none.ckpt'}", f"output={tmp_path}")
    with pytest.raises(CheckpointError, match="does not exist"):
        export(cfg)
