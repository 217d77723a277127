"""What the framework does with each kind of training logger beyond what Lightning does: show
samples, continue the same run on resume, end the run, and name the command that shows it.

Lightning logs scalars and hyperparameters to every logger itself. TensorBoard, MLflow and W&B
also take pictures and texts, each through its own call; a logger that takes neither (CSV) is
skipped.
"""

import logging
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import Logger, MLFlowLogger, TensorBoardLogger, WandbLogger

from aigc.core.samples import Samples

log = logging.getLogger(__name__)

# Where a checkpoint keeps the ids of the MLflow and W&B runs that logged its training.
RUN_IDS_KEY = "logger_run_ids"


def log_samples(logger: Logger, samples: Samples, tag: str, step: int) -> None:
    """Shows ``samples`` in ``logger`` at ``step``: the labelled grid as an image, or the texts."""
    if isinstance(logger, TensorBoardLogger):
        if samples.images is not None:
            logger.experiment.add_image(tag, samples.grid(), global_step=step)
        else:
            # Markdown collapses plain newlines; a code block keeps the text as generated.
            text = "\n\n".join(f"```\n{t}\n```" for t in samples.texts)
            logger.experiment.add_text(tag, text, global_step=step)
    elif isinstance(logger, MLFlowLogger):
        if samples.images is not None:  # the UI shows images logged with a key by step
            logger.experiment.log_image(logger.run_id, samples.picture(), key=tag, step=step)
        else:
            text = "\n\n".join(samples.texts)
            logger.experiment.log_text(logger.run_id, text, f"{tag}/step_{step:07d}.txt")
    elif isinstance(logger, WandbLogger):
        if samples.images is not None:
            logger.log_image(tag, [samples.picture()], step=step)
        else:
            captions = samples.captions or [""] * len(samples)
            rows = [[c, t] for c, t in zip(captions, samples.texts, strict=True)]
            logger.log_text(tag, columns=["prompt", "text"], data=rows, step=step)


class LoggerRunIds(L.Callback):
    """Writes the ids of the run's MLflow and W&B runs into every checkpoint, so that a run
    resumed from one goes on logging into the same runs (``continue_runs``)."""

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        ids = {}
        for logger in trainer.loggers:  # the ids are known on rank 0, which writes the file
            if isinstance(logger, MLFlowLogger):
                ids["mlflow"] = logger.run_id
            elif isinstance(logger, WandbLogger):
                ids["wandb"] = logger.version
        ids = {kind: run_id for kind, run_id in ids.items() if run_id is not None}
        if ids:
            checkpoint[RUN_IDS_KEY] = ids


def continue_runs(trainer: L.Trainer, checkpoint: dict[str, Any], same_run_dir: bool) -> None:
    """Before a resumed run starts: TensorBoard drops what the first run logged after the
    checkpoint (those steps are trained and logged again, and would otherwise appear twice); and,
    resuming in the run directory the checkpoint belongs to, MLflow and W&B continue the runs
    that logged it. Resumed into a new directory, they start new runs, as TensorBoard does."""
    ids = checkpoint.get(RUN_IDS_KEY, {}) if same_run_dir else {}
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger._kwargs["purge_step"] = checkpoint["global_step"]  # read by its SummaryWriter
        elif isinstance(logger, MLFlowLogger) and "mlflow" in ids:
            _continue_mlflow(logger, ids["mlflow"], trainer.is_global_zero)
        elif isinstance(logger, WandbLogger) and "wandb" in ids:
            # W&B resumes the run of this id (resume="allow"); offline, W&B cannot resume a run
            # and writes a second offline run folder of the same id instead.
            logger._wandb_init["id"] = logger._id = ids["wandb"]


def _continue_mlflow(logger: MLFlowLogger, run_id: str, global_zero: bool) -> None:
    from mlflow.exceptions import MlflowException

    if global_zero:  # one process asks the store
        try:
            logger._mlflow_client.update_run(run_id, status="RUNNING")
        except MlflowException:
            log.warning(
                "MLflow run %s is not in %s: logging to a new run", run_id, logger._tracking_uri
            )
            return
    logger._run_id = run_id  # read when the logger starts its run


def finish_runs(loggers: list[Logger]) -> None:
    """Ends the W&B run. W&B keeps one run per process, so in a multirun the next job would
    otherwise log into this one."""
    if any(isinstance(logger, WandbLogger) for logger in loggers):
        import wandb

        wandb.finish()


def viewer_commands(loggers: list[Logger]) -> list[tuple[str, str]]:
    """(name, command or address) that shows each logger's record of this run."""
    commands = []
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            commands.append(("TensorBoard", f"tensorboard --logdir {Path(logger.log_dir)}"))
        elif isinstance(logger, MLFlowLogger):
            uri = logger._tracking_uri
            if uri.startswith(("http://", "https://")):
                where = f"{uri}/#/experiments/{logger.experiment_id}/runs/{logger.run_id}"
            else:
                where = f"mlflow ui --backend-store-uri {uri}   (run {logger.run_id})"
            commands.append(("MLflow", where))
        elif isinstance(logger, WandbLogger):
            run = logger.experiment
            if run.settings._offline:  # how W&B's documentation tells an offline run
                where = f"wandb sync {Path(run.dir).parent}   (uploads the offline run)"
            else:
                where = run.url
            commands.append(("W&B", where))
    return commands
