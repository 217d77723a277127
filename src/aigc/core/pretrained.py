"""Portable weights: a trained model as a folder of two files that other tools read too.

``model.safetensors`` holds the weights the model samples with (the averaged ones where it keeps
an average) and nothing that only training uses; ``config.json`` names the model's class and its
constructor arguments, the sizes from the data among them (image shape, classes and their names,
the tokenizer's vocabulary). ``from_pretrained`` rebuilds the model from the two, without a
Trainer, a dataset or a Lightning checkpoint.
"""

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model

import aigc
from aigc.core.families import family_class
from aigc.core.module import AigcModule
from aigc.errors import AigcError, CheckpointError, one_line

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
# What config.json says of the layout of the folder; a reader refuses any other.
FORMAT = "aigc-export"
FORMAT_VERSION = 1


def is_export(path: str | Path) -> bool:
    """Whether ``path`` is a folder that ``save_pretrained`` wrote."""
    return (Path(path) / CONFIG_FILE).is_file()


def save_pretrained(model: AigcModule, out: str | Path, ema: bool | None = None) -> Path:
    """Writes ``model`` into the folder ``out``: its weights as ``sample(ema=ema)`` uses them."""
    out = Path(out)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "aigc_version": aigc.__version__,
        "model_class": model.class_key(),
        "hparams": model.export_hparams(),
    }
    text = json.dumps(config, indent=2, ensure_ascii=False) + "\n"
    # The weights pass through a model built from the JSON as from_pretrained builds it, so an
    # export that would not load back is never written.
    exported = _build(type(model), json.loads(text)["hparams"], out / CONFIG_FILE)
    exported.load_state_dict(model.export_state_dict(ema))
    out.mkdir(parents=True, exist_ok=True)
    # safetensors refuses tensors that share memory (the GPT's head is its token embedding):
    # save_model keeps one name of each, and load_model ties them again.
    save_model(exported, str(out / WEIGHTS_FILE))
    # Last: a folder with config.json is an export, so it appears only once the weights are in.
    (out / CONFIG_FILE).write_text(text, encoding="utf-8")
    # safetensors writes its file readable by its owner only; an export is made to be shared.
    shutil.copymode(out / CONFIG_FILE, out / WEIGHTS_FILE)
    return out


def from_pretrained(path: str | Path, device: str | torch.device = "cpu") -> AigcModule:
    """The model of a folder that ``save_pretrained`` (``aigc-export``) wrote, on ``device``, in
    eval mode and frozen: its family's class, ready to ``sample`` (a classifier: to score
    images), with None for the parts only training uses (the GAN's discriminator)."""
    folder = Path(path)
    config = read_config(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{folder} has {CONFIG_FILE} but no {WEIGHTS_FILE}: export it again")
    model = _build(family_class(config["model_class"], folder), config["hparams"], weights)
    try:
        load_model(model, weights)  # strict: every weight of the model, and no other
    except (SafetensorError, RuntimeError) as err:
        raise CheckpointError(
            f"{weights} does not hold this model's weights: {one_line(err)}"
        ) from None
    return model.to(device)


def read_config(folder: Path) -> dict[str, Any]:
    """The config.json of an exported folder, checked to be one this aigc reads."""
    path = folder / CONFIG_FILE
    if not folder.exists():
        raise CheckpointError(f"exported model {folder} does not exist")
    if not folder.is_dir():
        raise CheckpointError(f"{folder} is not a folder: give the folder that aigc-export wrote")
    if not path.is_file():
        raise CheckpointError(
            f"{folder} is not an exported model (it has no {CONFIG_FILE}); write one with "
            "aigc-export ckpt_path=<run directory or .ckpt> output=<folder>"
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is not readable JSON: {one_line(err)}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{path} was not written by aigc-export")
    if config.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} is in export format {config.get('format_version')} (aigc "
            f"{config.get('aigc_version')}), and this aigc ({aigc.__version__}) reads format "
            f"{FORMAT_VERSION}: export the checkpoint again with this version"
        )
    missing = [key for key in ("model_class", "hparams") if key not in config]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}")
    return config


def _build(cls: type[AigcModule], hparams: Any, source: Path) -> AigcModule:
    """``cls`` built from ``hparams`` for inference: without its training-only parts."""
    try:
        model = cls(**hparams)
    except (TypeError, ValueError, AigcError) as err:
        raise CheckpointError(
            f"{source}: a {cls.__name__} cannot be built from these settings ({one_line(err)})"
        ) from None
    return model.drop_training_parts()
