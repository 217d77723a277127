"""The LightningModule that trains a VQ-VAE, the image tokenizer: images to grids of codes (token
ids) and back."""

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics.image import PeakSignalNoiseRatio

from aigc.core.module import AigcModule, Monitor, eval_mode
from aigc.core.optim import warmup_schedule
from aigc.core.samples import Samples
from aigc.core.scoring import CodebookUsage, ImageCodec
from aigc.errors import check_positive
from aigc.models.image_tokenizer.network import VQAutoencoder
from aigc.utils.log_steps import logs_this_step

Batch = dict[str, Any]  # image (B, C, H, W) in [-1, 1], and whatever else the data holds


class ImageTokenizer(AigcModule, ImageCodec):
    """A ``VQAutoencoder`` trained to reconstruct its input (mean squared error, plus the
    commitment loss of a learned codebook), with AdamW.

    It is a tokenizer of images, with the text tokenizers' interface: ``encode`` (images ->
    token ids ``(B, tokens_per_image)``, the code grid read row by row), ``decode`` (ids ->
    images) and ``vocab_size`` (the codebook's size); its checkpoint holds all it needs.
    Validation logs the reconstruction loss (``val/loss``, which picks the best checkpoint),
    PSNR and how much of the codebook is used; the sample callback shows reconstructions.
    """

    monitor = Monitor("val/loss", "min")
    preview_tag = "reconstructions"

    def __init__(
        self,
        image_shape: Sequence[int],
        widths: Sequence[int] = (16, 32, 64),
        layers_per_block: int = 1,
        norm_groups: int = 8,
        mid_attention: bool = False,
        quantizer: str = "fsq",
        levels: Sequence[int] = (8, 5, 5, 5),
        vq: dict[str, Any] | None = None,
        lr: float = 1e-3,
        warmup_steps: int = 100,
        lr_decay_steps: int | None = None,
        min_lr: float = 1e-4,
        weight_decay: float = 0.0,
        compile: bool = False,
    ) -> None:
        super().__init__()
        check_positive("model", lr=lr, layers_per_block=layers_per_block, norm_groups=norm_groups)
        check_positive("model", lr_decay_steps=lr_decay_steps)
        self.save_hyperparameters()
        self.image_shape = tuple(image_shape)
        self.network = VQAutoencoder(
            self.image_shape,
            widths,
            layers_per_block,
            norm_groups,
            mid_attention,
            quantizer,
            levels,
            vq or {},
        )
        if compile:
            self.network.compile()
        self.val_psnr = PeakSignalNoiseRatio(data_range=(-1.0, 1.0))
        self.val_usage = CodebookUsage(self.vocab_size)

    @property
    def batch_keys(self) -> frozenset[str]:
        return frozenset({"image"})

    @property
    def vocab_size(self) -> int:
        return self.network.quantizer.codebook_size

    @property
    def tokens_per_image(self) -> int:
        h, w = self.network.grid_shape
        return h * w

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``(B, C, H, W)`` in [-1, 1] -> token ids ``(B, tokens_per_image)``."""
        if tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(
                f"images of shape {tuple(images.shape[1:])}; this tokenizer reads "
                f"{self.image_shape}"
            )
        return self.network.encode(images).flatten(1)

    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        """Token ids ``(B, tokens_per_image)`` -> images ``(B, C, H, W)`` in [-1, 1]."""
        if ids.dim() != 2 or ids.size(1) != self.tokens_per_image:
            raise ValueError(
                f"token ids of shape {tuple(ids.shape)}; an image is {self.tokens_per_image} tokens"
            )
        if ids.min() < 0 or ids.max() >= self.vocab_size:
            raise ValueError(f"token ids must be in [0, {self.vocab_size}); got {ids.max()}")
        codes = ids.view(-1, *self.network.grid_shape)
        return self.network.decode(codes).clamp(-1, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The reconstruction of ``images`` through the codes, in [-1, 1]."""
        return self.network(images)[0].clamp(-1, 1)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        images = batch["image"]
        reconstruction, _, quantizer_loss = self.network(images)
        reconstruction_loss = F.mse_loss(reconstruction.float(), images)
        loss = reconstruction_loss + quantizer_loss
        if logs_this_step(self.trainer):
            self.log_dict(
                {"train/loss": loss, "train/reconstruction_loss": reconstruction_loss},
                prog_bar=True,
                sync_dist=True,
            )
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        images = batch["image"]
        reconstruction, codes, _ = self.network(images)
        reconstruction = reconstruction.float().clamp(-1, 1)
        self.val_psnr.update(reconstruction, images)
        self.val_usage.update(codes)
        self.log_dict(
            {self.monitor.metric: F.mse_loss(reconstruction, images), "val/psnr": self.val_psnr},
            prog_bar=True,
            batch_size=len(images),
            sync_dist=True,
        )
        self.keep_preview_images(images, batch_idx)

    def on_validation_epoch_end(self) -> None:
        usage = self.val_usage.compute()
        self.log_dict({f"val/codebook_{name}": value for name, value in usage.items()})
        self.val_usage.reset()

    def preview(self) -> Samples | None:
        """The first validation images, each above its reconstruction."""
        if self.preview_images is None:
            return None
        with torch.no_grad(), eval_mode(self):
            reconstruction = self(self.preview_images.to(self.device)).float().cpu()
        n = len(self.preview_images)
        return Samples(
            images=torch.cat([self.preview_images, reconstruction]),
            captions=["original"] * n + ["reconstruction"] * n,
        )

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = torch.optim.AdamW(
            self.network.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
        )
        return warmup_schedule(optimizer, self)
