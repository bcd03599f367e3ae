"""Building blocks shared by every family: MLPs and convolutional encoders/decoders.

Encoders map images (B, C, H, W) to flat features (B, F); decoders map codes
(B, D) to image-shaped pre-activations (B, C, H, W). Vector data (B, D) take the MLPs
only (shape (D,)): flattening leaves them as they are. Every family builds its
networks from these, so an architecture change lands everywhere at once.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .errors import ConfigError

# Activations by the names configs use.
ACTIVATIONS: dict[str, type[nn.Module]] = {"linear": nn.Identity, "sigmoid": nn.Sigmoid, "relu": nn.ReLU}


def mlp(sizes: list[int], activation: type[nn.Module] = nn.ReLU, final: nn.Module | None = None) -> nn.Sequential:
    """Linear layers sizes[0] -> ... -> sizes[-1], `activation` between them, `final` after the last."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    if final is not None:
        layers.append(final)
    return nn.Sequential(*layers)


def resolve_arch(arch: str, shape: tuple[int, ...], channels: list[int]) -> str:
    """arch "auto": conv for images of 16 px a side or more (28x28 Fashion-MNIST), mlp below (8x8 digits,
    where two stride-2 layers leave 2x2), without channels or for vectors (D,); "conv" and "mlp" stay as they are."""
    if arch != "auto":
        return arch
    return "conv" if len(shape) == 3 and min(shape[1:]) >= 16 and channels else "mlp"


def _halve(size: int) -> int:
    # Conv2d(kernel 4, stride 2, padding 1) maps a side s to floor(s / 2).
    return (size + 2 - 4) // 2 + 1


class ConvEncoder(nn.Module):
    """Strided 4x4 convolutions, each halving the image side: (B, C, H, W) -> (B, F).

    norm adds BatchNorm after every convolution but the first, as in a DCGAN discriminator
    (Radford et al. 2015), whose activation is LeakyReLU(0.2)."""

    def __init__(self, shape: tuple[int, ...], channels: list[int], activation=nn.ReLU, norm: bool = False):
        super().__init__()
        c, h, w = shape
        self.sizes = [(h, w)]  # spatial size before each layer, kept for the mirrored decoder
        layers: list[nn.Module] = []
        for i, out in enumerate(channels):
            if min(h, w) < 2:
                raise ConfigError(f"Images of {shape[1]}x{shape[2]} are too small for {len(channels)} stride-2 "
                                  "convolutions; give fewer channels (e.g. --channels 32,64) or use --arch mlp.")
            layers += [nn.Conv2d(c, out, 4, 2, 1), *([nn.BatchNorm2d(out)] if norm and i > 0 else []), activation()]
            c, h, w = out, _halve(h), _halve(w)
            self.sizes.append((h, w))
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.out_features = c * h * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    """The mirror of ConvEncoder: (B, D) -> linear -> transposed convs -> (B, C, H, W) pre-activation.

    norm adds BatchNorm before every ReLU, as in a DCGAN generator (Radford et al. 2015)."""

    def __init__(self, shape: tuple[int, ...], channels: list[int], latent_dim: int, norm: bool = False):
        super().__init__()
        sizes = ConvEncoder(shape, channels).sizes
        self.start = (channels[-1], *sizes[-1])
        d = math.prod(self.start)
        self.fc = nn.Sequential(nn.Linear(latent_dim, d), *([nn.BatchNorm1d(d)] if norm else []), nn.ReLU())
        outs = list(reversed(channels[:-1])) + [shape[0]]
        ins = list(reversed(channels))
        self.ups = nn.ModuleList(nn.ConvTranspose2d(i, o, 4, 2, 1) for i, o in zip(ins, outs))
        self.norms = nn.ModuleList(nn.BatchNorm2d(o) for o in outs[:-1]) if norm else nn.ModuleList()
        self.out_sizes = list(reversed(sizes[:-1]))  # exact side after each up-convolution (odd sides too)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(-1, *self.start)
        for i, (up, size) in enumerate(zip(self.ups, self.out_sizes)):
            h = up(h, output_size=size)
            if i < len(self.ups) - 1:
                h = torch.relu(self.norms[i](h) if self.norms else h)
        return h


class ProjectionDiscriminator(nn.Module):
    """D(x, y) = psi(phi(x)) + embed(y) . phi(x) (Miyato & Koyama 2018, eq. 3): the label enters as the inner
    product of its learned embedding with D's features, outputs (B,)."""

    def __init__(self, body: nn.Module, features: int, classes: int):
        super().__init__()
        self.body, self.linear, self.embed = body, nn.Linear(features, 1), nn.Embedding(classes, features)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        return self.linear(h).squeeze(1) + (self.embed(labels) * h).sum(1)


def build_encoder(arch: str, shape: tuple[int, ...], hidden: list[int],
                  channels: list[int]) -> tuple[nn.Module, int]:
    """An encoder body and its flat feature size; the family adds its own heads on top."""
    if arch == "conv":
        enc = ConvEncoder(shape, channels)
        return enc, enc.out_features
    d = math.prod(shape)
    body = nn.Sequential(nn.Flatten(), mlp([d, *hidden]), nn.ReLU()) if hidden else nn.Flatten()
    return body, (hidden[-1] if hidden else d)


def build_decoder(arch: str, shape: tuple[int, ...], hidden: list[int], channels: list[int],
                  latent_dim: int) -> nn.Module:
    """A decoder from codes (B, latent_dim) to image-shaped pre-activations (B, C, H, W)."""
    if arch == "conv":
        return ConvDecoder(shape, channels, latent_dim)
    return nn.Sequential(mlp([latent_dim, *reversed(hidden), math.prod(shape)]), nn.Unflatten(1, shape))
