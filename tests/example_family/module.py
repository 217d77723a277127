"""The LightningModule: fits the per-pixel Gaussians by maximum likelihood, and samples them."""

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from aigc.core.conditioning import Condition
from aigc.core.module import GenerativeModule, Monitor, Progress
from aigc.core.samples import Samples
from example_family.network import PixelAffine

Batch = dict[str, Any]  # image (B, C, H, W) in [-1, 1]


class PixelGaussian(GenerativeModule):
    """The simplest image model that learns: every pixel an independent Gaussian. Its samples are
    the data's mean image under per-pixel noise; it is here to show what a family is made of."""

    produces = "image"
    monitor = Monitor("val/nll", "min")

    def __init__(
        self, image_shape: Sequence[int], lr: float = 0.05, ema_decay: float | None = None
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # checkpoints and exports rebuild the model from these
        self.network = PixelAffine(tuple(image_shape))
        self.init_network(ema_decay, compile=False)

    def draw(
        self,
        network: nn.Module,
        n: int,
        condition: Condition | None,
        generator: torch.Generator | None,
        progress: Progress | None,
    ) -> Samples:
        # Drawn on the CPU, so that a seed gives the same samples on any device.
        noise = torch.randn(n, *self.hparams.image_shape, generator=generator).to(self.device)
        return Samples(images=network(noise).clamp(-1, 1).float().cpu())

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss = self.network.nll(batch["image"])
        self.log("train/nll", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        images = batch["image"]
        nll = self.network.nll(images)
        self.log("val/nll", nll, prog_bar=True, batch_size=images.size(0), sync_dist=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.network.parameters(), lr=self.hparams.lr)
