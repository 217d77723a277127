"""Training entry point: compose the config, build data, model, callbacks and loggers, and fit.

python train.py model=gan data=mnist
python train.py --help          # config groups and keys
python train.py --cfg job       # the composed config
"""

import json
import logging
import shlex
import signal
from pathlib import Path

import lightning as L
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.model_helpers import is_overridden
from omegaconf import DictConfig, OmegaConf

from aigc.callbacks import Interruption, SafeCheckpointIO
from aigc.callbacks.checkpoint import last_checkpoint_callback
from aigc.callbacks.loggers import LoggerRunIds, continue_runs, finish_runs, viewer_commands
from aigc.callbacks.validation import FinalValidation
from aigc.core.checkpoints import resolve_ckpt_path
from aigc.core.module import GenerativeModule
from aigc.errors import ConfigError, exit_on_user_error
from aigc.paths import METRICS_FILE
from aigc.utils.cli import entry_point
from aigc.utils.console import quiet_library_notices
from aigc.utils.distributed import check_launch, strategy_for
from aigc.utils.instantiate import (
    instantiate,
    instantiate_list,
    instantiate_model,
    instantiate_trainer,
)
from aigc.utils.run_dir import removed_if_failed_empty
from aigc.utils.runtime import check_accelerator

log = logging.getLogger(__name__)


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, L.LightningModule, L.Trainer]:
    """Seeds everything and instantiates the datamodule, the model and the trainer."""
    quiet_library_notices()
    check_accelerator(cfg.trainer.accelerator)
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    model = instantiate_model(cfg.model, datamodule)
    trainer = instantiate_trainer(
        cfg.trainer,
        strategy=strategy_for(cfg.trainer.strategy, model),
        callbacks=[
            *instantiate_list(cfg.get("callbacks")),
            FinalValidation(),
            Interruption(),
            LoggerRunIds(),
        ],
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
        run_dir = Path(cfg.paths.output_dir).resolve()
        continue_runs(trainer, checkpoint, Path(ckpt_path).resolve().is_relative_to(run_dir))
    if trainer.is_global_zero:
        config = OmegaConf.to_yaml(cfg, resolve=True).rstrip()  # each group under its name
        log.info("Config (saved in .hydra/config.yaml):\n%s", config)
        log.info("Run directory: %s", cfg.paths.output_dir)
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    except SIGTERMException:
        raise SystemExit(interrupted(Path(cfg.paths.output_dir), trainer)) from None
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
    finish_runs(trainer.loggers)
    return metrics


def next_steps(run: Path, trainer: L.Trainer, model: L.LightningModule) -> str:
    """Where a finished run's outputs are, and the commands that look at them or go on."""
    # A command-line run has Hydra's choices; a test composing its config has none.
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    lines = [f"Finished. Run directory: {run}", f"  checkpoints   {run / 'checkpoints'}"]
    lines += [f"  {name:<14}{command}" for name, command in viewer_commands(trainer.loggers)]
    if isinstance(model, GenerativeModule):
        if (run / "samples").is_dir():
            lines.append(f"  samples       {run / 'samples'}")
        lines.append(f"  sample        python generate.py ckpt_path={run}")
        data = f" data={choices['data']}" if "data" in choices else ""
        lines.append(f"  score         python eval.py ckpt_path={run}{data}")
    lines.append(f"  export        python export.py ckpt_path={run} output={run / 'export'}")
    # A run held to a time budget (trainer.max_time) resumes with the time it has used.
    timed = any(isinstance(callback, Timer) for callback in trainer.callbacks)
    more = "a longer trainer.max_time" if timed else "more trainer.max_epochs or trainer.max_steps"
    lines.append(f"  train on      {resume_command(run)}, with {more}")
    return "\n".join(lines)


def interrupted(run: Path, trainer: L.Trainer) -> int:
    """Says where an interrupted run's checkpoint is and how to go on; returns the exit status a
    shell gives a process ended by that signal (130 for Ctrl-C, 143 for SIGTERM)."""
    interruption = Interruption.of(trainer)
    signum = interruption.signal if interruption and interruption.signal else signal.SIGTERM
    callback = last_checkpoint_callback(trainer)
    if trainer.is_global_zero and callback is not None and callback.last_model_path:
        log.warning(
            "Interrupted at step %d; saved %s. Go on with:\n  %s",
            trainer.global_step,
            callback.last_model_path,
            resume_command(run),
        )
    return 128 + signum


def resume_command(run: Path) -> str:
    """The command that goes on training the run in ``run`` from its last checkpoint."""
    overrides = HydraConfig.get().overrides.task if HydraConfig.initialized() else []
    kept = [o for o in overrides if not o.startswith(("ckpt_path=", "hydra.run.dir="))]
    return f"python train.py {shlex.join([*kept, f'hydra.run.dir={run}'])} ckpt_path=last"


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


# Old names, answered with one line for one release.
RENAMED = {
    "data.val_samples": "data.val_images",
    "model=transformer": "model=language_model",
    "model=multimodal": "model=text_image",
    "model=vqvae": "model=image_tokenizer",
    "experiment=mnist_multimodal": "experiment=mnist_text_image",
    "experiment=mnist_vqvae": "experiment=mnist_image_tokenizer",
}


@entry_point("train", renamed=RENAMED)
def main(cfg: DictConfig) -> float | None:
    with removed_if_failed_empty(Path(cfg.paths.output_dir)):
        return exit_on_user_error(lambda: optimized_value(cfg, train(cfg)))


if __name__ == "__main__":
    main()
