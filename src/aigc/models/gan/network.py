"""DCGAN generator and discriminator that size themselves to the image shape, optionally
conditioned on a vector per image (a one-hot class label, or a prompt's encoding).

Both halve/double the spatial size with stride-2 (transposed) convolutions between the image and
a small base grid: 28 -> 14 -> 7 for MNIST, 32 -> 16 -> 8 -> 4 for CIFAR-10. Channel width doubles
at each step away from the image, as in the DCGAN paper. The generator reads the condition
concatenated to its latent; the discriminator is a projection discriminator (Miyato & Koyama,
2018): its logit adds the inner product of a learned projection of the condition with its pooled
image features.
"""

from itertools import pairwise

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as with_spectral_norm

_MAX_BASE = 7  # stop halving once the grid is this small


def _base_and_steps(size: int) -> tuple[int, int]:
    """How many stride-2 steps separate an image side of ``size`` from its small base grid."""
    steps = 0
    while size % 2 == 0 and size > _MAX_BASE:
        size //= 2
        steps += 1
    if steps == 0:
        raise ValueError(
            f"image side {size} cannot be halved; DCGAN needs an even size such as 28 or 32"
        )
    return size, steps


def init_dcgan_weights(module: nn.Module) -> None:
    """N(0, 0.02) for conv weights, N(1, 0.02) for BatchNorm scales, as in the DCGAN paper."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    """Latent ``(B, latent_dim)`` and condition ``(B, cond_dim)`` -> image ``(B, C, H, W)`` in
    [-1, 1]."""

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        latent_dim: int = 100,
        width: int = 64,
        cond_dim: int = 0,
    ) -> None:
        super().__init__()
        channels, height, width_px = image_shape
        if height != width_px:
            raise ValueError(f"DCGAN needs square images, got {height}x{width_px}")
        base, steps = _base_and_steps(height)
        widths = [width * 2 ** (steps - 1 - i) for i in range(steps)]  # e.g. [256, 128, 64]
        layers: list[nn.Module] = [
            # 1x1 -> base x base
            nn.ConvTranspose2d(latent_dim + cond_dim, widths[0], base, 1, 0, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        ]
        for c_in, c_out in pairwise(widths):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(init_dcgan_weights)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        x = z if cond is None else torch.cat([z, cond.to(z.dtype)], dim=1)  # (B, latent + cond)
        return self.net(x[:, :, None, None])  # (B, in, 1, 1) -> (B, C, H, W)


class Discriminator(nn.Module):
    """Image ``(B, C, H, W)`` and condition ``(B, cond_dim)`` -> one real/fake logit per image
    ``(B,)``.

    ``spectral_norm`` constrains every layer's spectral norm (Miyato et al., 2018) instead of
    normalising activations with BatchNorm.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        width: int = 64,
        cond_dim: int = 0,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        channels, height, _ = image_shape
        base, steps = _base_and_steps(height)
        widths = [width * 2**i for i in range(steps)]  # e.g. [64, 128, 256]
        # No BatchNorm on the first layer: it would normalise away the raw image statistics.
        layers: list[nn.Module] = [
            nn.Conv2d(channels, widths[0], 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        for c_in, c_out in pairwise(widths):
            norm = nn.Identity() if spectral_norm else nn.BatchNorm2d(c_out)
            layers += [
                nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False),
                norm,
                nn.LeakyReLU(0.2, inplace=True),
            ]
        self.features = nn.Sequential(*layers)  # (B, widths[-1], base, base)
        self.head = nn.Conv2d(widths[-1], 1, base, 1, 0, bias=False)  # base x base -> 1x1
        # The projection of the condition onto the pooled features (absent when unconditional).
        self.project = nn.Linear(cond_dim, widths[-1], bias=False) if cond_dim else None
        self.apply(init_dcgan_weights)
        if self.project is not None:
            # Zero: D starts out unconditional, and learns how the condition matters instead of
            # starting from large random class terms (a sum over base^2 positions of features).
            nn.init.zeros_(self.project.weight)
        if spectral_norm:
            for module in self.modules():
                if isinstance(module, nn.Conv2d | nn.Linear):
                    with_spectral_norm(module)

    def forward(self, images: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if self.project is None:
            return self.head(self.features(images)).flatten()  # (B,)
        return self.pair_logits(images, cond).diagonal()  # (B,): image i with condition i

    def pair_logits(self, images: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, B)`` of every image i paired with every condition j, from one pass over
        the images: the projection term is all that depends on the condition."""
        h = self.features(images)  # (B, C, base, base)
        head = self.head(h).flatten()  # (B,)
        # Sum pooling, as Miyato & Koyama: the class term then learns as fast as the head,
        # which also sums over all positions.
        pooled = h.sum(dim=(2, 3))  # (B, C)
        return head[:, None] + pooled @ self.project(cond.to(pooled.dtype)).T  # (B, B)
