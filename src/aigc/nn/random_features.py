"""Image features from a small convolutional network with fixed random weights."""

from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

_WIDTHS = (32, 64, 128)  # channels of the three convolutions


class RandomFeatures(nn.Module):
    """Images ``(B, C, H, W)`` in [-1, 1] -> features ``(B, 224)`` (float32).

    Three stride-2 4x4 convolutions (32, 64 and 128 channels) with LeakyReLU, whose weights are
    drawn once from ``seed`` (He initialisation) and never trained; the features are each layer's
    activations averaged over the image, side by side. The same seed gives the same network in
    every run, on every device, so that distances measured with it compare between runs. The
    weights are non-persistent buffers: no optimizer sees them, and checkpoints leave them out.

    Features of randomly initialised networks stand in where no trained network fits the data
    (Naeem et al. 2020; Lee, Kim and Lee, "Demystifying Randomly Initialized Networks for
    Evaluating Generative Models", 2023): they tell apart image statistics (strokes, blobs,
    contrast at three scales), but know nothing of classes, so a distance in them says how alike
    two sets of images look, not whether they show the same things.
    """

    def __init__(self, channels: int, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        for i, (c_in, c_out) in enumerate(pairwise([channels, *_WIDTHS])):
            weight = torch.empty(c_out, c_in, 4, 4)
            nn.init.kaiming_normal_(weight, a=0.2, nonlinearity="leaky_relu", generator=generator)
            self.register_buffer(f"weight{i}", weight, persistent=False)
        self.num_features = sum(_WIDTHS)  # read by torchmetrics' FID

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x, pooled = images, []
        for weight in self.buffers():
            x = F.leaky_relu(F.conv2d(x, weight, stride=2, padding=1), 0.2)
            pooled.append(x.mean(dim=(2, 3)))
        return torch.cat(pooled, dim=1).float()  # float32 also under autocast


class RandomFeatureFID(FrechetInceptionDistance):
    """torchmetrics' FID in the features of a ``RandomFeatures`` network; NaN rather than an error
    when either side has fewer than two images (a tiny validation split), as FID then has no
    covariance to compare."""

    def __init__(self, channels: int) -> None:
        super().__init__(feature=RandomFeatures(channels))

    def compute(self) -> torch.Tensor:
        if min(self.real_features_num_samples, self.fake_features_num_samples) < 2:
            return torch.tensor(float("nan"))
        return super().compute()
