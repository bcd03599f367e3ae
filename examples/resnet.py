"""ResNet-style networks (He et al. 2016, "Deep Residual Learning"): each factory takes the data's shape
(C, H, W) (and the code size) as genmodels passes them, and any keyword arguments of its own.

- `encoder`: images (B, C, H, W) -> features (B, F) (genmodels adds the VAE's mean and log-variance heads);
- `decoder`: codes (B, latent_dim) -> pixel logits (B, C, H, W) (genmodels applies the sigmoid);
- `discriminator`: images (B, C, H, W) -> logits (B, 1).
"""

from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """x + conv(act(conv(act(x)))), at constant channels and size (the pre-activation form, He et al. 2016b)."""

    def __init__(self, channels: int, slope: float = 0.0):
        super().__init__()
        self.body = nn.Sequential(nn.LeakyReLU(slope), nn.Conv2d(channels, channels, 3, padding=1),
                                  nn.LeakyReLU(slope), nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _half(side: int) -> int:
    return (side + 1) // 2  # a 3x3 convolution of stride 2 and padding 1


def encoder(shape: tuple[int, int, int], width: int = 32, blocks: int = 1) -> nn.Module:
    """(B, C, H, W) -> (B, 2 * width * ceil(H/2) * ceil(W/2)): a stem, residual blocks, one stride-2 step."""
    c, h, w = shape
    return nn.Sequential(
        nn.Conv2d(c, width, 3, padding=1),
        *[ResidualBlock(width) for _ in range(blocks)],
        nn.ReLU(), nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
        *[ResidualBlock(2 * width) for _ in range(blocks)],
        nn.ReLU(), nn.Flatten())


class Decoder(nn.Module):
    """(B, latent_dim) -> (B, C, H, W): a linear map to a half-size grid, residual blocks, a 2x upsampling,
    cropped to (H, W) for odd sides."""

    def __init__(self, shape: tuple[int, int, int], latent_dim: int, width: int = 32, blocks: int = 1):
        super().__init__()
        self.shape, self.grid = shape, (2 * width, _half(shape[1]), _half(shape[2]))
        self.project = nn.Linear(latent_dim, self.grid[0] * self.grid[1] * self.grid[2])
        self.body = nn.Sequential(
            *[ResidualBlock(2 * width) for _ in range(blocks)],
            nn.Upsample(scale_factor=2), nn.ReLU(), nn.Conv2d(2 * width, width, 3, padding=1),
            *[ResidualBlock(width) for _ in range(blocks)],
            nn.ReLU(), nn.Conv2d(width, shape[0], 3, padding=1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.body(self.project(z).view(-1, *self.grid))
        return out[:, :, : self.shape[1], : self.shape[2]]


def decoder(shape: tuple[int, int, int], latent_dim: int, width: int = 32, blocks: int = 1) -> nn.Module:
    return Decoder(shape, latent_dim, width, blocks)


def discriminator(shape: tuple[int, int, int], width: int = 32) -> nn.Module:
    """(B, C, H, W) -> (B, 1): a stride-2 step, one residual block with LeakyReLU(0.2), a linear read-out."""
    c, h, w = shape
    return nn.Sequential(
        nn.Conv2d(c, width, 3, stride=2, padding=1),
        ResidualBlock(width, slope=0.2),
        nn.LeakyReLU(0.2), nn.Flatten(),
        nn.Linear(width * _half(h) * _half(w), 1))
