"""Finding, checking and loading checkpoints before anything is trained or sampled from them."""

import logging
from pathlib import Path
from typing import Any, TypeVar

import lightning as L
import torch

from aigc.core.families import family_class
from aigc.core.module import MODEL_CLASS_KEY, AigcModule
from aigc.core.pretrained import CONFIG_FILE, from_pretrained, is_export
from aigc.errors import CheckpointError
from aigc.paths import BEST_CHECKPOINT, LAST_CHECKPOINT

log = logging.getLogger(__name__)
M = TypeVar("M", bound=AigcModule)
# The checkpoints of a run that `ckpt_path` names by word.
RUN_CHECKPOINTS = {"last": LAST_CHECKPOINT, "best": BEST_CHECKPOINT}
_NOT_A_RUN = f"give a run directory, a .ckpt file or a folder aigc-export wrote ({CONFIG_FILE})"
_NO_BEST = (
    f"a run keeps {BEST_CHECKPOINT} from its first validation on, unless it runs with "
    "callbacks.best_checkpoint=null"
)


def checkpoint_file(path: str | Path) -> Path:
    """``path`` itself; the last checkpoint of a run directory or checkpoint folder; or, for
    ``<run directory>/best`` (or ``/last``), that run's best (or last) checkpoint."""
    path = Path(path)
    if path.name in RUN_CHECKPOINTS and not path.exists() and path.parent.is_dir():
        return _run_checkpoint(path.parent, RUN_CHECKPOINTS[path.name])
    if path.is_dir():
        return _run_checkpoint(path, LAST_CHECKPOINT)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    return path


def _run_checkpoint(folder: Path, name: str) -> Path:
    """The checkpoint ``name`` of a run directory (in its checkpoints/) or checkpoint folder."""
    for candidate in (folder / "checkpoints" / name, folder / name):
        if candidate.is_file():
            return candidate
    hint = _NO_BEST if name == BEST_CHECKPOINT else _NOT_A_RUN
    raise CheckpointError(f"{folder} is a folder without checkpoints/{name}: {hint}")


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Loads a checkpoint the framework wrote (tensors and plain values only), or says why not."""
    path = checkpoint_file(path)
    try:
        # mmap: tensors are mapped, not read, so checking a large checkpoint costs little.
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # zipfile, pickle and torch each raise their own kinds
        raise CheckpointError(f"{path} is not a readable checkpoint: {err}") from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path} is not a Lightning checkpoint (it has no state_dict)")
    return checkpoint


def model_class(checkpoint: dict[str, Any], path: str | Path) -> type[AigcModule]:
    """The model family a checkpoint names; anything but a class of aigc's model families is
    refused before it is imported."""
    key = checkpoint.get(MODEL_CLASS_KEY)
    if key is None:
        raise CheckpointError(f"{path} was not written by aigc's training (it names no model)")
    return family_class(key, path)


def model_source(path: str | Path) -> Path:
    """What ``load_model`` reads for ``path``: an exported folder as it is, else
    ``checkpoint_file(path)``."""
    return Path(path) if is_export(path) else checkpoint_file(path)


def load_model(
    path: str | Path, device: str | torch.device = "cpu", expected: type[M] = AigcModule
) -> M:
    """Rebuilds the model of a checkpoint (a file or a run directory) or of a folder that
    aigc-export wrote, in eval mode and frozen; a model that is not an ``expected`` is refused."""
    path = model_source(path)
    if path.is_dir():
        model = from_pretrained(path, device)
        _check_family(type(model), expected, path)
    else:
        # The class is checked before its weights are read: any checkpoint names its class.
        cls = model_class(load_checkpoint(path), path)
        _check_family(cls, expected, path)
        model = _load_weights(cls, path, device)
    return model.eval().requires_grad_(False)


def _load_weights(cls: type[M], path: Path, device: str | torch.device) -> M:
    try:
        return cls.load_from_checkpoint(path, map_location=device, weights_only=True)
    except RuntimeError as err:
        # A checkpoint of an older layout rebuilds its model from its hyperparameters, then its
        # weights do not fit: say which, in one line, rather than list every tensor.
        lines = str(err).splitlines()
        if not lines or not lines[0].startswith("Error(s) in loading state_dict"):
            raise
        first = next((line.strip() for line in lines[1:] if line.strip()), "")
        raise CheckpointError(
            f"{path} does not fit the {cls.__name__} of this version of aigc (it was likely saved "
            f"by an earlier one): {first[:300]}"
        ) from None


def _check_family(cls: type[AigcModule], expected: type[AigcModule], path: Path) -> None:
    if not issubclass(cls, expected):
        raise CheckpointError(f"{path} holds a {cls.__name__}, not a {expected.__name__}")


def resolve_ckpt_path(
    ckpt_path: str | None, trainer: L.Trainer, model: AigcModule
) -> tuple[str, dict[str, Any]] | None:
    """The checkpoint file to resume from, and its contents, for ``ckpt_path`` ``None`` (none), a
    path, or ``"last"`` or ``"best"`` of this run directory.

    Lightning itself treats a missing ``"last"`` checkpoint as a fresh start with a warning; a user
    who asked to resume should hear that there is nothing to resume instead. A fresh start in a
    folder that holds another run's checkpoints is refused: it would overwrite them.
    """
    callback = trainer.checkpoint_callback
    if ckpt_path is None:
        if callback is not None and callback.dirpath and any(Path(callback.dirpath).glob("*.ckpt")):
            raise CheckpointError(
                f"{callback.dirpath} holds the checkpoints of an earlier run: go on with it "
                "(ckpt_path=last), or start this run in another hydra.run.dir"
            )
        return None
    if ckpt_path in RUN_CHECKPOINTS:
        if callback is None or callback.dirpath is None:
            raise CheckpointError(
                f"ckpt_path={ckpt_path} needs the checkpoint callbacks (callbacks=default)"
            )
        path = Path(callback.dirpath) / RUN_CHECKPOINTS[ckpt_path]
        if not path.is_file():
            why = f" ({_NO_BEST})" if ckpt_path == "best" else ""
            raise CheckpointError(
                f"ckpt_path={ckpt_path}, but {path} does not exist{why}. To resume a run, reuse "
                f"its directory: hydra.run.dir=<run directory> ckpt_path={ckpt_path}, or give the "
                "file: ckpt_path=<file>"
            )
        # The best checkpoint has no stand-in: another file would not be the best.
        if ckpt_path == "last":
            path, checkpoint = _newest_readable(path)
        else:
            checkpoint = load_checkpoint(path)
    else:
        path = checkpoint_file(ckpt_path)
        checkpoint = load_checkpoint(path)
    saved = model_class(checkpoint, path)
    if saved is not type(model):
        raise CheckpointError(
            f"{path} holds a {saved.__name__}, but this run builds a "
            f"{type(model).__name__}: resume with the same model/experiment overrides as that run"
        )
    _check_shapes(checkpoint["state_dict"], model.state_dict(), path)
    return str(path), checkpoint


def _check_shapes(saved: dict[str, Any], built: dict[str, torch.Tensor], path: Path) -> None:
    """A checkpoint of the same family but other sizes is refused, naming the first difference."""
    for name, tensor in built.items():
        if name in saved and saved[name].shape != tensor.shape:
            raise CheckpointError(
                f"{path} was trained with other sizes ({name}: {tuple(saved[name].shape)} there, "
                f"{tuple(tensor.shape)} here): resume with the same model overrides as that run"
            )


def _newest_readable(last: Path) -> tuple[Path, dict[str, Any]]:
    """``last`` and its contents, or, when it cannot be read (a disk that filled up, a copy cut
    short), the newest readable checkpoint beside it, named in a warning."""
    try:
        return last, load_checkpoint(last)
    except CheckpointError as err:
        # The best checkpoint last: it is often older than the newest step.
        others = sorted(
            (p for p in last.parent.glob("*.ckpt") if p != last),
            key=lambda p: (p.name != BEST_CHECKPOINT, p.stat().st_mtime),
            reverse=True,
        )
        for other in others:
            try:
                checkpoint = load_checkpoint(other)
            except CheckpointError:
                continue
            log.warning(
                "%s; resuming from %s, the newest readable checkpoint beside it", err, other
            )
            return other, checkpoint
        raise
