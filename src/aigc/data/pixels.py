"""Pixels as datasets store them (uint8) and as models see them (float in [-1, 1])."""

import torch


def to_signed_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels in [0, 255] -> float in [-1, 1], the range of generated images."""
    return images.float().div_(127.5).sub_(1.0)
