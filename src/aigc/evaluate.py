"""Evaluation entry point: metrics of a checkpoint on held-out data, printed and saved as JSON.

python eval.py ckpt_path=<language model .ckpt> data=shakespeare
python eval.py ckpt_path=<GAN .ckpt> data=mnist image.feature_ckpt=<classifier .ckpt>
"""

import json
import math
from pathlib import Path

import hydra
import lightning as L
import torch
from omegaconf import DictConfig
from torchmetrics.image.fid import FrechetInceptionDistance

from aigc.data import ImageDataModule, TextDataModule
from aigc.errors import CheckpointError, ConfigError, exit_on_user_error
from aigc.metrics.image import ImageMetrics, inception_available, load_feature_network
from aigc.models.gan import GAN
from aigc.models.transformer import LanguageModel
from aigc.train import CONFIG_DIR
from aigc.utils.checkpoints import load_model
from aigc.utils.instantiate import instantiate
from aigc.utils.runtime import autocast, lightning_precision, resolve_device


def evaluate_language_model(
    model: LanguageModel, datamodule: TextDataModule, cfg: DictConfig, device: torch.device
) -> dict[str, float | str]:
    """Loss, perplexity and bits per token over every token of the validation split."""
    if datamodule.tokenizer.state_dict() != model.hparams.tokenizer_state:
        raise ConfigError(
            f"{datamodule.path} tokenizes differently from the text {cfg.ckpt_path} was trained "
            "on (another vocabulary): evaluate on the training text's data config"
        )
    trainer = L.Trainer(
        accelerator=device.type,
        devices=1,
        precision=lightning_precision(cfg.precision),
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    (results,) = trainer.validate(model, datamodule=datamodule, verbose=False)
    loss = results["val/loss"]
    return {
        "loss": loss,
        "perplexity": math.exp(loss),
        f"bits_per_{model.tokenizer.unit}": loss / math.log(2),
        "tokens": len(datamodule.val_set) * model.hparams.block_size,
    }


def evaluate_generator(
    model: GAN, datamodule: ImageDataModule, cfg: DictConfig
) -> dict[str, float | str]:
    """FID, KID and Inception Score of generated images against the real test split."""
    if tuple(model.hparams.image_shape) != datamodule.image_shape:
        raise ConfigError(
            f"{cfg.ckpt_path} generates images of shape {tuple(model.hparams.image_shape)}, but "
            f"data={datamodule.hparams.dataset} has {datamodule.image_shape}"
        )
    if not cfg.image.feature_ckpt:
        raise ConfigError(
            "image.feature_ckpt is not set: FID/KID/IS need a classifier checkpoint as feature "
            "network; train one with `python train.py experiment=mnist_classifier`"
        )
    device = model.device
    feature_network = load_feature_network(cfg.image.feature_ckpt)
    metrics = ImageMetrics(feature_network, cfg.image.kid_subset_size).to(device)
    # The standard FID too, where InceptionV3's weights can be had; else say why not.
    has_inception, why_not = inception_available()
    inception = (
        FrechetInceptionDistance(feature=2048, normalize=True).to(device) if has_inception else None
    )

    def update(images: torch.Tensor, real: bool) -> None:  # images (B, C, H, W) in [-1, 1]
        metrics.update(images, real=real)
        if inception is not None:  # InceptionV3 takes RGB in [0, 1]
            inception.update(((images + 1) / 2).expand(-1, 3, -1, -1), real=real)

    datamodule.prepare_data()
    datamodule.setup("test")
    for batch in datamodule.test_dataloader():
        images, _ = datamodule.on_after_batch_transfer(batch, 0)
        update(images.to(device), real=True)
    generator = torch.Generator().manual_seed(cfg.seed)
    for start in range(0, cfg.image.num_samples, cfg.image.batch_size):
        n = min(cfg.image.batch_size, cfg.image.num_samples - start)
        latents = torch.randn(n, model.hparams.latent_dim, generator=generator)
        update(model.sample(latents).float(), real=False)
    results: dict[str, float | str] = {
        **metrics.compute(),
        "feature_network": metrics.feature_name,
        "samples": cfg.image.num_samples,
    }
    results["inception_fid"] = float(inception.compute()) if inception is not None else why_not
    return results


def evaluate(cfg: DictConfig) -> dict[str, float | str]:
    if cfg.get("data") is None:
        raise ConfigError(
            "choose the data to evaluate on: data=<config>, e.g. data=mnist or data=shakespeare"
        )
    device = resolve_device(cfg.device)
    model = load_model(cfg.ckpt_path, device)
    datamodule_cls = hydra.utils.get_class(cfg.data._target_)
    if datamodule_cls.modality != model.modality:
        raise CheckpointError(
            f"{cfg.ckpt_path} holds a {type(model).__name__}, a {model.modality} model, but the "
            f"data config is {datamodule_cls.modality} data: pick a {model.modality} data config"
        )
    if model.modality == "text":
        # The model fixes the window length; every validation token is scored once.
        datamodule = instantiate(cfg.data, block_size=model.hparams.block_size, val_batches=None)
        return evaluate_language_model(model, datamodule, cfg, device)
    with torch.inference_mode(), autocast(device, cfg.precision):
        return evaluate_generator(model, instantiate(cfg.data), cfg)


def report(results: dict[str, float | str], path: Path) -> None:
    """Prints the metrics as a table and writes them to ``path`` as JSON."""
    width = max(map(len, results))
    for name, value in results.items():
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        print(f"{name:<{width}}  {shown}")
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="eval")
def main(cfg: DictConfig) -> None:
    results = exit_on_user_error(lambda: evaluate(cfg))
    report(results, Path(cfg.output or Path(cfg.ckpt_path).with_name("metrics.json")))


if __name__ == "__main__":
    main()
