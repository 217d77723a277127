"""Fitting Lightning's distributed strategies to the model and to Hydra's multirun."""

from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

from aigc.errors import ConfigError


def strategy_for(strategy: Any, model: L.LightningModule) -> Any:
    """``trainer.strategy``, with DDP's unused-parameter search switched on for models that need
    it (``ddp_find_unused_parameters``): ``ddp`` -> ``ddp_find_unused_parameters_true`` for the GAN;
    anything else as given."""
    is_ddp_name = isinstance(strategy, str) and strategy.startswith("ddp")
    needs_search = getattr(model, "ddp_find_unused_parameters", False)
    if is_ddp_name and needs_search and "find_unused" not in strategy:
        return f"{strategy}_find_unused_parameters_true"
    return strategy


def check_launch(trainer: L.Trainer) -> None:
    """Refuses a multirun whose jobs would start their processes by re-running the command line.

    Lightning's ``ddp`` launcher starts ranks 1..N-1 by running ``train.py`` again with its
    arguments, which inside a Hydra multirun would start the whole sweep again in every process.
    """
    relaunches = isinstance(trainer.strategy.launcher, _SubprocessScriptLauncher)
    if relaunches and HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        raise ConfigError(
            "multirun with a multi-process trainer would re-run the whole sweep in every "
            "process; run each configuration as its own command, or sweep with a launcher that "
            "starts each job's processes itself (hydra/launcher=slurm, see the README)"
        )
