"""The network: one scale and one shift per pixel, a plain ``nn.Module`` that knows nothing of
training."""

import math

import torch
from torch import nn


class PixelAffine(nn.Module):
    """Images ``mean + exp(log_std) * noise`` from standard normal ``noise``, pixel by pixel: an
    independent Gaussian for every pixel, whose density ``nll`` measures."""

    def __init__(self, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.mean = nn.Parameter(torch.zeros(image_shape))  # (C, H, W)
        self.log_std = nn.Parameter(torch.zeros(image_shape))

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) noise -> (B, C, H, W) images."""
        return self.mean + self.log_std.exp() * noise

    def nll(self, images: torch.Tensor) -> torch.Tensor:
        """The negative log-likelihood of ``images`` (B, C, H, W), in nats per pixel."""
        z = (images - self.mean) * torch.exp(-self.log_std)
        return (0.5 * z.square() + self.log_std + 0.5 * math.log(2 * math.pi)).mean()
