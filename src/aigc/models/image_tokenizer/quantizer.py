"""The discrete bottleneck, from vector-quantize-pytorch."""

from collections.abc import Sequence
from typing import Any

import torch
import vector_quantize_pytorch as vq
from torch import nn

from aigc.errors import ConfigError

QUANTIZERS = ("fsq", "vq")


class Quantizer(nn.Module):
    """Feature maps ``(B, dim, h, w)`` -> their nearest codes ``(B, h, w)`` and the quantized maps.

    ``fsq``: finite scalar quantization (Mentzer et al. 2023), each of ``len(levels)`` channels
    rounded to one of ``levels[i]`` values; its codebook is the grid of those values, so no code
    can die and there is no codebook loss. ``vq``: a learned codebook (van den Oord et al. 2017)
    of ``vq["codebook_size"]`` vectors of ``vq["dim"]`` channels, k-means initialised, updated as
    an exponential moving average (``decay``), with codes used by fewer than
    ``dead_code_threshold`` vectors of a batch moved onto that batch's vectors, and the encoder
    pulled towards its codes by ``commitment_weight``.
    """

    def __init__(self, kind: str, levels: Sequence[int], vq_settings: dict[str, Any]) -> None:
        super().__init__()
        if kind not in QUANTIZERS:
            raise ConfigError(f"model.quantizer={kind}; choose {' or '.join(QUANTIZERS)}")
        self.kind = kind
        if kind == "fsq":
            if not levels or min(levels) < 2:
                raise ConfigError(
                    f"model.levels={list(levels)}: each channel needs 2 levels or more"
                )
            self.dim = len(levels)
            self.bottleneck = vq.FSQ(list(levels), channel_first=True)
        else:
            s = vq_settings
            self.dim = s["dim"]
            self.bottleneck = vq.VectorQuantize(
                dim=s["dim"],
                codebook_size=s["codebook_size"],
                decay=s["decay"],
                kmeans_init=True,
                threshold_ema_dead_code=s["dead_code_threshold"],
                commitment_weight=s["commitment_weight"],
                accept_image_fmap=True,
            )
        self.codebook_size = int(self.bottleneck.codebook_size)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(quantized ``(B, dim, h, w)`` with straight-through gradients, codes ``(B, h, w)``,
        the commitment loss, 0 for FSQ)."""
        if self.kind == "fsq":
            quantized, codes = self.bottleneck(z)
            return quantized, codes.long(), z.new_zeros(())
        quantized, codes, loss = self.bottleneck(z)
        return quantized, codes.long(), loss

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``(B, h, w)`` -> the quantized maps ``(B, dim, h, w)`` they stand for."""
        if self.kind == "fsq":
            return self.bottleneck.indices_to_codes(codes)
        return self.bottleneck.get_output_from_indices(codes)
