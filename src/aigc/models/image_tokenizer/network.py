"""The autoencoder: diffusers' VAE encoder and decoder around a discrete bottleneck.

Each width but the last halves the image: widths [16, 32, 64] turn 28x28 MNIST into 7x7
codes, 49 tokens an image.
"""

from collections.abc import Sequence
from typing import Any

import torch
from diffusers.models.autoencoders.vae import Decoder, Encoder
from torch import nn

from aigc.errors import ConfigError
from aigc.models.image_tokenizer.quantizer import Quantizer


class VQAutoencoder(nn.Module):
    """Image ``(B, C, H, W)`` in [-1, 1] -> codes ``(B, H/f, W/f)`` -> image, with
    ``f = 2 ** (len(widths) - 1)``."""

    def __init__(
        self,
        image_shape: Sequence[int],
        widths: Sequence[int],
        layers_per_block: int,
        norm_groups: int,
        mid_attention: bool,
        quantizer: str,
        levels: Sequence[int],
        vq: dict[str, Any],
    ) -> None:
        super().__init__()
        channels, height, width = image_shape
        factor = 2 ** (len(widths) - 1)
        if not widths or height % factor or width % factor:
            raise ConfigError(
                f"model.widths={list(widths)} halves the image {len(widths) - 1} times, and "
                f"{height}x{width} does not divide by {factor}"
            )
        if any(w % norm_groups for w in widths):
            raise ConfigError(f"model.norm_groups={norm_groups} must divide every width")
        self.quantizer = Quantizer(quantizer, levels, vq)
        self.grid_shape = (height // factor, width // factor)
        n = len(widths)
        self.encoder = Encoder(
            in_channels=channels,
            out_channels=self.quantizer.dim,
            down_block_types=("DownEncoderBlock2D",) * n,
            block_out_channels=tuple(widths),
            layers_per_block=layers_per_block,
            norm_num_groups=norm_groups,
            double_z=False,
            mid_block_add_attention=mid_attention,
        )
        self.decoder = Decoder(
            in_channels=self.quantizer.dim,
            out_channels=channels,
            up_block_types=("UpDecoderBlock2D",) * n,
            block_out_channels=tuple(widths),
            layers_per_block=layers_per_block,
            norm_num_groups=norm_groups,
            mid_block_add_attention=mid_attention,
        )

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction ``(B, C, H, W)``, codes ``(B, h, w)``, the quantizer's loss)."""
        quantized, codes, loss = self.quantizer(self.encoder(images))
        return self.decoder(quantized), codes, loss

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.quantizer(self.encoder(images))[1]  # (B, h, w)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.quantizer.lookup(codes))  # (B, C, H, W)
