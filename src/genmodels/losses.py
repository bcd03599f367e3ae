"""The shared maths, written once: log-densities and divergences used by every family.

Shapes: `x`, `logits`, `mean` are (B, ...) image-shaped; every image
log-likelihood sums over all non-batch dimensions and returns (B,) in nats.
Latent densities take z of shape (..., D) and sum over the last dimension.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2.0 * math.pi)


def gaussian_kl_standard(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)), (B, D) -> (B,).

    Kingma & Welling 2013, Appendix B: -KL = 1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2).
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), (..., D) -> (...): the VAE prior p(z)."""
    return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)


def log_normal_diag(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))), (..., D) -> (...): the encoder density q(z|x)."""
    return -0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI).sum(-1)


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x|z) for a Bernoulli decoder given by logits, (B, ...) -> (B,).

    Kingma & Welling 2013, Appendix C.1: log p = sum_i x_i log y_i + (1 - x_i) log(1 - y_i),
    computed from logits for stability.
    """
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(-1)


def gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor | float) -> torch.Tensor:
    """log N(x; mean, diag(exp(log_std)^2)), (B, ...) -> (B,); a tensor log_std broadcasts.

    Kingma & Welling 2013, Appendix C.2 (Gaussian MLP decoder). A float log_std (fixed
    variance) takes a cheaper path: one scaled squared error plus a constant."""
    if isinstance(log_std, float):
        sq = (x - mean).pow(2).flatten(1).sum(-1)
        const = x[0].numel() * (log_std + 0.5 * LOG_2PI)
        return sq * (-0.5 * math.exp(-2.0 * log_std)) - const
    z = (x - mean) * torch.exp(-log_std)
    return -(0.5 * z.pow(2) + log_std + 0.5 * LOG_2PI).flatten(1).sum(-1)


def reconstruction_error(out: torch.Tensor, x: torch.Tensor, kind: str) -> torch.Tensor:
    """An autoencoder's error per image (B,), summed over pixels: squared error ||x - out||^2
    (kind "mse"; Hinton & Salakhutdinov 2006), or Bernoulli cross-entropy with out as logits
    (kind "bce"; Vincent et al. 2010, eq. 3-4)."""
    if kind == "bce":
        return -bernoulli_log_likelihood(out, x)
    return (out - x).pow(2).flatten(1).sum(1)
