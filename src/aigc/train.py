"""Training entry point: compose the config, build data, model, callbacks and loggers, and fit.

python train.py model=gan data=mnist
python train.py --help          # config groups
python train.py --cfg job       # the composed config
"""

import logging
import warnings
from pathlib import Path

import hydra
import lightning as L
from lightning.pytorch.utilities.model_helpers import is_overridden
from omegaconf import DictConfig

from aigc.errors import exit_on_user_error
from aigc.utils.checkpoints import resolve_ckpt_path
from aigc.utils.instantiate import instantiate, instantiate_list, instantiate_model

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"

log = logging.getLogger(__name__)


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, L.LightningModule, L.Trainer]:
    """Seeds everything and instantiates the datamodule, the model and the trainer."""
    # The datasets are tensors in memory: worker processes would only add copying.
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    model = instantiate_model(cfg.model, datamodule)
    trainer = instantiate(
        cfg.trainer,
        callbacks=instantiate_list(cfg.get("callbacks")),
        logger=instantiate_list(cfg.get("logger")) or False,
    )
    return datamodule, model, trainer


def train(cfg: DictConfig) -> dict[str, float]:
    """Runs one training job and returns the final logged metrics."""
    datamodule, model, trainer = build(cfg)
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), trainer, model)
    log.info("Run directory: %s", cfg.paths.output_dir)
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    if cfg.get("test") and is_overridden("test_step", model):
        trainer.test(model, datamodule=datamodule)
    return {name: float(value) for name, value in trainer.callback_metrics.items()}


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig) -> None:
    exit_on_user_error(lambda: train(cfg))


if __name__ == "__main__":
    main()
