"""The pieces that turn a plain autoencoder into a regularised one (docs/ARCHITECTURE.md, "Variants are parameters"):
corruptions q_D(x~|x) for denoising, and penalties on the weights or the code.

Corruptions map a batch (B, C, H, W) in [0, 1] to a corrupted copy of the same shape,
never modifying their input. Penalties return a scalar, averaged over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
from torch import nn
from torch.func import jacrev, vmap

from ..errors import ConfigError
from ..losses import upcast


# -- corruptions (Vincent et al. 2008, section 2.3; composed left to right) ------------------------
@dataclass(frozen=True)
class Masking:
    """Masking noise: a fraction nu of the inputs, chosen at random, set to 0."""

    nu: float

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x * (torch.rand_like(x) >= self.nu)


@dataclass(frozen=True)
class Gaussian:
    """Additive isotropic Gaussian noise: x~ = x + N(0, sigma^2 I)."""

    sigma: float

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.sigma * torch.randn_like(x)


@dataclass(frozen=True)
class SaltPepper:
    """Salt-and-pepper noise: a fraction of the inputs set to 0 or 1 with equal probability."""

    fraction: float

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        hit = torch.rand_like(x) < self.fraction
        salt = (torch.rand_like(x) < 0.5).to(x.dtype)
        return torch.where(hit, salt, x)


_CORRUPTIONS = {"mask": (Masking, 0.0, 1.0), "gauss": (Gaussian, 0.0, float("inf")),
                "saltpepper": (SaltPepper, 0.0, 1.0)}


def parse_corruption(spec: str):
    """'mask:0.25' | 'gauss:0.1' | 'saltpepper:0.1' -> a corruption object, or a one-sentence ConfigError."""
    name, _, value = spec.partition(":")
    if name not in _CORRUPTIONS:
        raise ConfigError(f"Unknown corruption {spec!r}; use mask:NU, gauss:SIGMA or saltpepper:FRACTION.")
    cls, lo, hi = _CORRUPTIONS[name]
    try:
        level = float(value)
    except ValueError:
        raise ConfigError(f"Corruption {spec!r} needs a number after the colon, e.g. {name}:0.25.") from None
    if not lo <= level < hi or (name == "gauss" and level <= 0):
        raise ConfigError(f"Corruption level in {spec!r} must lie in [{lo}, {hi}); pick a level such as {name}:0.25.")
    return cls(level)


def corrupt(x: torch.Tensor, corruptions) -> torch.Tensor:
    for c in corruptions:
        x = c(x)
    return x


# -- penalties ------------------------------------------------------------------------------------
def weight_decay(module: nn.Module) -> torch.Tensor:
    """||w||^2 over the weight matrices and kernels (not biases): the beta * ||w||^2 of L2 regularisation."""
    # a tensor: every module it is given has weight matrices (an empty sum would be the int 0)
    return cast(torch.Tensor, sum(p.pow(2).sum() for name, p in module.named_parameters()
                                  if name.endswith("weight") and p.ndim > 1))


def contractive_sigmoid_closed_form(h: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """||J_f(x)||_F^2 for a one-layer sigmoid encoder h = sigmoid(W x + b), per image (B,).

    Rifai et al. 2011, eq. 5: sum_i (h_i (1 - h_i))^2 sum_j W_ij^2. h: (B, D_code), weight: (D_code, D_in).
    In float32, and as a broadcast sum rather than a product, which autocast would run in bf16."""
    h = upcast(h)
    return ((h * (1 - h)).pow(2) * upcast(weight).pow(2).sum(1)).sum(-1)


def contractive_exact(encode, x: torch.Tensor) -> torch.Tensor:
    """||J_f(x)||_F^2 per image (B,) for any encoder, from the full Jacobian (torch.func, differentiable).

    encode maps a batch (B, C, H, W) to codes (B, D); the Jacobian of one image is (D, C, H, W)."""
    jac = vmap(jacrev(lambda xi: encode(xi.unsqueeze(0)).squeeze(0)))(x)  # (B, D, C, H, W)
    return upcast(jac).pow(2).flatten(1).sum(1)  # float32 under mixed precision


def contractive_projection(encode, x: torch.Tensor, projections: int = 1) -> torch.Tensor:
    """Unbiased estimate of ||J_f(x)||_F^2 per image (B,): E_v ||v^T J||^2 with v ~ N(0, I) in code space,
    since E[v v^T] = I gives E ||J^T v||^2 = tr(J J^T). One vector-Jacobian product per projection,
    so its cost does not grow with the input size."""
    x = x.detach().requires_grad_(True)
    h = encode(x)
    total = torch.zeros(x.shape[0], device=x.device)
    for _ in range(projections):
        v = torch.randn_like(h)
        (g,) = torch.autograd.grad(h, x, v, create_graph=True)
        total = total + upcast(g).pow(2).flatten(1).sum(1)
    return total / projections


def sparse_kl(code: torch.Tensor, rho: float) -> torch.Tensor:
    """sum_j KL(rho || rho_hat_j), rho_hat_j the mean activation of sigmoid unit j over the batch (Ng, CS294A
    sparse autoencoder notes): rho log(rho / rho_hat) + (1 - rho) log((1 - rho) / (1 - rho_hat))."""
    rho_hat = upcast(code).mean(0).clamp(1e-6, 1 - 1e-6)  # float32 under mixed precision
    return (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()
