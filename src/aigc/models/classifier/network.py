"""A small VGG-style CNN whose penultimate activations are the features of the offline FID.

Two stages of (conv3x3-BN-ReLU) x2 + 2x2 max-pool: 28 -> 14 -> 7 for MNIST, 32 -> 16 -> 8 for
CIFAR-10. The last feature map is flattened rather than average-pooled, so the features keep the
layout of the image (where strokes are), not only which patterns occur in it.
"""

import torch
from torch import nn


def conv_stage(c_in: int, c_out: int) -> list[nn.Module]:
    """(conv3x3-BN-ReLU) x2, then halve the grid: ``(B, c_in, H, W) -> (B, c_out, H/2, W/2)``."""
    layers: list[nn.Module] = []
    for c in (c_in, c_out):
        # No conv bias: BatchNorm's shift does that job.
        layers += [nn.Conv2d(c, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
    return [*layers, nn.MaxPool2d(2)]


class ConvClassifier(nn.Module):
    """Image ``(B, C, H, W)`` in [-1, 1] -> class logits ``(B, num_classes)``.

    ``features`` gives the penultimate activations ``(B, feature_dim)``.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        num_classes: int,
        width: int = 32,
        feature_dim: int = 128,
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        channels, height, width_px = image_shape
        if height % 4 or width_px % 4:
            raise ValueError(f"image sides must be multiples of 4, got {height}x{width_px}")
        self.image_shape = tuple(image_shape)
        self.num_classes = num_classes
        self.feature_dim = feature_dim
        self.body = nn.Sequential(
            *conv_stage(channels, width),  # (B, width, H/2, W/2)
            *conv_stage(width, 2 * width),  # (B, 2 * width, H/4, W/4)
            nn.Flatten(),
            nn.Linear(2 * width * (height // 4) * (width_px // 4), feature_dim),
            nn.ReLU(),
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images)  # (B, feature_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(images)))  # (B, num_classes)
