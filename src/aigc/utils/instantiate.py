"""Building the run's parts from their configs."""

import inspect
from typing import Any

import lightning as L
from hydra.errors import InstantiationException
from hydra.utils import get_class
from hydra.utils import instantiate as hydra_instantiate
from lightning.fabric.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, OmegaConf

from aigc.errors import AigcError, ConfigError, one_line


def model_monitor(field: str, *, _root_: DictConfig) -> str:
    """``${model_monitor:metric}`` or ``${model_monitor:mode}`` in a config: the validation metric
    the model family of ``model._target_`` declares better by (its ``monitor``), or its mode."""
    target = _root_.model._target_
    monitor = getattr(get_class(target), "monitor", None)
    if monitor is None:
        raise ConfigError(
            f"{target} declares no metric to monitor: set callbacks.best_checkpoint.monitor and "
            "callbacks.best_checkpoint.mode, or callbacks.best_checkpoint=null"
        )
    return getattr(monitor, field)


# Resolved when the callbacks are instantiated (`--cfg job --resolve` shows the values).
OmegaConf.register_new_resolver("model_monitor", model_monitor)


def instantiate(cfg: DictConfig, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` returning plain containers, and letting our own errors through.

    Hydra wraps whatever a constructor raises; an ``AigcError`` is a message for the user and is
    re-raised as it is, so that it reaches them as one line.
    """
    try:
        # _convert_="all": plain lists and dicts, so hyperparameters hold no OmegaConf objects.
        return hydra_instantiate(cfg, **kwargs, _convert_="all")
    except InstantiationException as err:
        if isinstance(err.__cause__, AigcError):
            raise err.__cause__ from None
        raise


def instantiate_trainer(cfg: DictConfig, **kwargs: Any) -> L.Trainer:
    """The Trainer; arguments Lightning refuses (a precision it does not know, devices this
    machine does not have) are a ConfigError."""
    try:
        return instantiate(cfg, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, ValueError | MisconfigurationException):
            raise ConfigError(f"trainer: {one_line(err.__cause__)}") from None
        raise


# Data configs whose batches hold each entry a model may train on.
_DATA_WITH = {
    "image": "data=mnist, cifar10 or image_folder",
    "label": "data=mnist, or image_folder with a label column",
    "text": "captioned data, data=mnist_captions or image_folder with a text column",
    "tokens": "data=shakespeare or text",
}


def instantiate_model(
    model_cfg: DictConfig, datamodule: L.LightningDataModule
) -> L.LightningModule:
    """Instantiates the model, adding the sizes that only the data knows (image shape, vocabulary).

    The datamodule offers them through ``model_kwargs()``; the model takes those its constructor
    names, so no shape is typed twice into configs.
    """
    model_cls = get_class(model_cfg._target_)
    params = inspect.signature(model_cls).parameters
    offered = datamodule.model_kwargs()
    missing = [
        name
        for name, p in params.items()
        if p.default is p.empty
        and p.kind is p.POSITIONAL_OR_KEYWORD
        and name not in model_cfg
        and name not in offered
    ]
    if missing:
        raise ConfigError(
            f"model {model_cls.__name__} needs {', '.join(missing)}, which "
            f"{type(datamodule).__name__} does not provide: pair it with another data config"
        )
    from_data = {name: value for name, value in offered.items() if name in params}
    model = instantiate(model_cfg, **from_data)
    # What the model trains on must be in the batches: a conditional model needs its conditions.
    lacking = sorted(getattr(model, "batch_keys", set()) - datamodule.batch_keys)
    if lacking:
        hints = "; ".join(f"{key}: {_DATA_WITH[key]}" for key in lacking)
        raise ConfigError(
            f"{model_cls.__name__} trains on batches with {', '.join(lacking)}, which "
            f"{type(datamodule).__name__} does not give ({hints})"
        )
    return model


def instantiate_list(group_cfg: DictConfig | None) -> list[Any]:
    """Instantiates every entry of a config group that is a dict of configs (callbacks, logger)."""
    if not group_cfg:
        return []
    return [instantiate(cfg) for cfg in group_cfg.values() if cfg is not None]
