"""Image features from a small convolutional network with fixed random weights."""

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance


class RandomFeatures(nn.Module):
    """Images ``(B, C, H, W)`` in [-1, 1] -> features ``(B, num_features)`` (float32).

    Three stride-2 4x4 convolutions with LeakyReLU, whose weights are drawn once from ``seed``
    (He initialisation) and never trained; the features are each layer's activations averaged
    over the image, side by side. The same seed gives the same network in every run, on every
    device, so that distances measured with it compare between runs. The weights are
    non-persistent buffers: no optimizer sees them, and checkpoints leave them out.

    Randomly initialised networks are a known stand-in where no trained feature network fits the
    data (Naeem et al. 2020 score generators with a random VGG): they tell apart image statistics
    (strokes, blobs, contrast at three scales), but they know nothing of classes, so a distance
    in their features says how alike two sets of images look, not whether they show the same
    things.
    """

    def __init__(self, channels: int, widths: Sequence[int] = (32, 64, 128), seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.num_features = sum(widths)  # read by torchmetrics' FID
        self.weights = []
        for i, (c_in, c_out) in enumerate(zip([channels, *widths], widths, strict=False)):
            weight = torch.empty(c_out, c_in, 4, 4)
            nn.init.kaiming_normal_(weight, a=0.2, nonlinearity="leaky_relu", generator=generator)
            self.register_buffer(f"weight{i}", weight, persistent=False)
            self.weights.append(f"weight{i}")

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x, pooled = images, []
        for name in self.weights:
            x = F.leaky_relu(F.conv2d(x, getattr(self, name), stride=2, padding=1), 0.2)
            pooled.append(x.mean(dim=(2, 3)))
        return torch.cat(pooled, dim=1).float()  # float32 also under autocast


class RandomFeatureFID(FrechetInceptionDistance):
    """torchmetrics' FID in the features of a ``RandomFeatures`` network; NaN rather than an error
    when either side has fewer than two images (a tiny validation split), as FID then has no
    covariance to compare."""

    def __init__(self, channels: int, seed: int = 0) -> None:
        super().__init__(feature=RandomFeatures(channels, seed=seed))

    def compute(self) -> torch.Tensor:
        if min(self.real_features_num_samples, self.fake_features_num_samples) < 2:
            return torch.tensor(float("nan"))
        return super().compute()
