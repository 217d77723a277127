"""Training entry point: compose the config, build data, model, callbacks and loggers, and fit.

python train.py model=gan data=mnist
python train.py --help          # config groups
python train.py --cfg job       # the composed config
"""

import json
import logging
import shlex
import warnings
from pathlib import Path

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.model_helpers import is_overridden
from omegaconf import DictConfig

from aigc.callbacks import SafeCheckpointIO
from aigc.callbacks.validation import FinalValidation
from aigc.core.checkpoints import resolve_ckpt_path
from aigc.core.module import GenerativeModule
from aigc.errors import ConfigError, exit_on_user_error
from aigc.paths import CONFIG_DIR, METRICS_FILE
from aigc.utils.distributed import check_launch, strategy_for
from aigc.utils.instantiate import (
    instantiate,
    instantiate_list,
    instantiate_model,
    instantiate_trainer,
)
from aigc.utils.runtime import check_accelerator

log = logging.getLogger(__name__)


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, L.LightningModule, L.Trainer]:
    """Seeds everything and instantiates the datamodule, the model and the trainer."""
    # The datasets are tensors in memory: worker processes would only add copying.
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    check_accelerator(cfg.trainer.accelerator)
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    model = instantiate_model(cfg.model, datamodule)
    trainer = instantiate_trainer(
        cfg.trainer,
        strategy=strategy_for(cfg.trainer.strategy, model),
        callbacks=[*instantiate_list(cfg.get("callbacks")), FinalValidation()],
        logger=instantiate_list(cfg.get("logger")) or False,
        plugins=[SafeCheckpointIO()],
    )
    return datamodule, model, trainer


def train(cfg: DictConfig) -> dict[str, float]:
    """Runs one training job and returns the final logged metrics, also written to the run
    directory's metrics.json."""
    datamodule, model, trainer = build(cfg)
    check_launch(trainer)
    ckpt_path = None
    resumed = resolve_ckpt_path(cfg.get("ckpt_path"), trainer, model)
    if resumed is not None:
        ckpt_path, checkpoint = resumed
        continue_curves(trainer, checkpoint["global_step"])
    log.info("Run directory: %s", cfg.paths.output_dir)
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    # Each stage replaces the trainer's metrics: gather them as they come.
    metrics = final_metrics(trainer)
    final_validation = FinalValidation.of(trainer)
    if final_validation.needed(trainer):
        final_validation.run(trainer, model, datamodule)
        metrics.update(final_metrics(trainer))
    if cfg.get("test") and is_overridden("test_step", model):
        trainer.test(model, datamodule=datamodule)
        metrics.update(final_metrics(trainer))
    if trainer.is_global_zero:
        path = Path(cfg.paths.output_dir) / METRICS_FILE
        path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        log.info(next_steps(Path(cfg.paths.output_dir), trainer, model))
    return metrics


def next_steps(run: Path, trainer: L.Trainer, model: L.LightningModule) -> str:
    """Where a finished run's outputs are, and the commands that look at them or go on."""
    choices, overrides = {}, []
    if HydraConfig.initialized():  # a command-line run (not a test composing its config)
        choices, overrides = HydraConfig.get().runtime.choices, HydraConfig.get().overrides.task
    lines = [f"Finished. Run directory: {run}", f"  checkpoints   {run / 'checkpoints'}"]
    if any(isinstance(logger, TensorBoardLogger) for logger in trainer.loggers):
        lines.append(f"  TensorBoard   tensorboard --logdir {run / 'tensorboard'}")
    if isinstance(model, GenerativeModule):
        if (run / "samples").is_dir():
            lines.append(f"  samples       {run / 'samples'}")
        lines.append(f"  sample        python generate.py ckpt_path={run}")
        data = f" data={choices['data']}" if "data" in choices else ""
        lines.append(f"  score         python eval.py ckpt_path={run}{data}")
    lines.append(f"  export        python export.py ckpt_path={run} out={run / 'export'}")
    kept = [o for o in overrides if not o.startswith(("ckpt_path=", "hydra.run.dir="))]
    lines.append(
        f"  train on      python train.py {shlex.join([*kept, f'hydra.run.dir={run}'])} "
        "ckpt_path=last, with more trainer.max_epochs or trainer.max_steps"
    )
    return "\n".join(lines)


def continue_curves(trainer: L.Trainer, step: int) -> None:
    """A resumed run's TensorBoard curves drop what the first run logged after its checkpoint
    (``step`` on): those steps are trained and logged again, and would otherwise appear twice."""
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger._kwargs["purge_step"] = step  # read when its SummaryWriter is created


def final_metrics(trainer: L.Trainer) -> dict[str, float]:
    return {name: float(value) for name, value in trainer.callback_metrics.items()}


def optimized_value(cfg: DictConfig, metrics: dict[str, float]) -> float | None:
    """The value of ``cfg.optimized_metric``, which sweepers such as Optuna minimise."""
    name = cfg.get("optimized_metric")
    if name is None:
        return None
    if name not in metrics:
        raise ConfigError(
            f"optimized_metric={name} was not logged by this run; it logged {sorted(metrics)}"
        )
    return metrics[name]


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    return exit_on_user_error(lambda: optimized_value(cfg, train(cfg)))


if __name__ == "__main__":
    main()
