"""Finding and checking checkpoints before anything is trained or sampled from them."""

from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import get_class

from aigc.errors import CheckpointError
from aigc.models.base import MODEL_CLASS_KEY, AigcModule


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Loads a checkpoint the framework wrote (tensors and plain values only), or says why not."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        # mmap: tensors are mapped, not read, so checking a large checkpoint costs little.
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # zipfile, pickle and torch each raise their own kinds
        raise CheckpointError(f"{path} is not a readable checkpoint: {err}") from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path} is not a Lightning checkpoint (it has no state_dict)")
    return checkpoint


def resolve_ckpt_path(ckpt_path: str | None, trainer: L.Trainer, model: AigcModule) -> str | None:
    """The checkpoint file to resume from: ``None``, a path, or ``"last"`` of this run directory.

    Lightning itself treats a missing ``"last"`` checkpoint as a fresh start with a warning; a user
    who asked to resume should hear that there is nothing to resume instead.
    """
    if ckpt_path is None:
        return None
    if ckpt_path == "last":
        callback = trainer.checkpoint_callback
        if callback is None or callback.dirpath is None:
            raise CheckpointError(
                "ckpt_path=last needs the model_checkpoint callback (callbacks=default)"
            )
        path = Path(callback.dirpath) / f"{callback.CHECKPOINT_NAME_LAST}{callback.FILE_EXTENSION}"
        if not path.is_file():
            raise CheckpointError(
                f"ckpt_path=last, but {path} does not exist. To resume a run, reuse its directory: "
                "hydra.run.dir=<run directory> ckpt_path=last, or give the file: ckpt_path=<file>"
            )
    else:
        path = Path(ckpt_path)
    saved_class = load_checkpoint(path).get(MODEL_CLASS_KEY)
    model_class = f"{type(model).__module__}.{type(model).__qualname__}"
    if saved_class not in (None, model_class):
        raise CheckpointError(
            f"{path} holds a {saved_class.rsplit('.', 1)[-1]}, but this run builds a "
            f"{type(model).__name__}: resume with the same model/experiment overrides as that run"
        )
    return str(path)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> AigcModule:
    """Rebuilds the model of any checkpoint the framework wrote, whatever its family."""
    checkpoint = load_checkpoint(path)
    if MODEL_CLASS_KEY not in checkpoint:
        raise CheckpointError(
            f"{path} was not written by aigc's training (it names no model class)"
        )
    model_cls = get_class(checkpoint[MODEL_CLASS_KEY])
    model = model_cls.load_from_checkpoint(path, map_location=device, weights_only=True)
    return model.eval().requires_grad_(False)
