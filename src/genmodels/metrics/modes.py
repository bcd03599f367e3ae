"""Modes covered, the share of high-quality samples and the mean true log-density: metrics for samples of a
distribution whose density is known (the 2-D toys of genmodels.toy).

On a mixture of Gaussians with known centres and per-axis std, Metz et al. 2017 (unrolled GANs) count the modes a
generator reaches, and Srivastava et al. 2017 (VEEGAN, section 5, synthetic data) call a sample high quality
when it lies within three standard deviations of a mode and count a mode as captured when samples reach it;
PacGAN (Lin et al. 2018) uses the same two numbers. Here "within k sigma" means, precisely: Euclidean distance to
the centre <= k_sigma * std, with std the per-axis standard deviation. In 2-D a point drawn from the mode itself
lies that close with probability 1 - exp(-k^2 / 2) (the chi distribution with 2 degrees of freedom), 98.9% at
k = 3, not the 99.7% of one axis. A mode counts as covered when at least `min_share` of all samples (1% by
default; exactly 1% counts) lie within k sigma of it; a sample within reach of two modes counts for both.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch


class HasLogDensity(Protocol):
    def log_density(self, points) -> torch.Tensor: ...


def _samples(samples, what: str) -> torch.Tensor:
    """samples (n, D) as float64, refused in one sentence when empty, not 2-D or not finite."""
    x = torch.as_tensor(samples).detach().to("cpu", torch.float64)
    if x.ndim != 2:
        raise ValueError(f"{what} needs samples of shape (n, D), got {tuple(x.shape)}.")
    if x.shape[0] == 0:
        raise ValueError(f"{what} is undefined for zero samples; give at least one.")
    if not torch.isfinite(x).all():
        raise ValueError(f"{what} refuses samples holding NaN or infinity; the model that drew them has diverged "
                         "or they were not filtered.")
    return x


def _within(samples, centres, std: float, k_sigma: float, what: str) -> torch.Tensor:
    """(n, K) bool: sample i lies within k_sigma * std (Euclidean) of centre k."""
    x = _samples(samples, what)
    c = torch.as_tensor(centres, dtype=torch.float64)
    if c.ndim != 2 or c.shape[0] == 0 or c.shape[1] != x.shape[1]:
        raise ValueError(f"{what} needs centres of shape (K >= 1, {x.shape[1]}) matching the samples, "
                         f"got {tuple(c.shape)}.")
    if not std > 0 or not k_sigma > 0:
        raise ValueError(f"{what} needs std > 0 and k_sigma > 0, got std={std} and k_sigma={k_sigma}.")
    return torch.cdist(x, c) <= k_sigma * std


def mode_counts(samples, centres, std: float, k_sigma: float = 3.0) -> torch.Tensor:
    """(K,) int64: how many samples lie within k_sigma * std of each centre."""
    return _within(samples, centres, std, k_sigma, "mode_counts").sum(0)


def modes_covered(samples, centres, std: float, min_share: float = 0.01, k_sigma: float = 3.0) -> int:
    """How many modes hold at least min_share of the samples within k_sigma * std of their centre."""
    if not 0 < min_share <= 1:
        raise ValueError(f"modes_covered needs 0 < min_share <= 1, got {min_share}.")
    within = _within(samples, centres, std, k_sigma, "modes_covered")
    n = within.shape[0]
    # The fewest samples that make min_share of n, a whole number compared exactly with the counts; the margin,
    # far below one sample, keeps a share of exactly min_share where min_share * n rounds up in floats
    # (0.07 * 100 = 7.000000000000001, whose ceiling would ask for 8).
    needed = math.ceil(min_share * n * (1 - 1e-12))
    return int((within.sum(0) >= needed).sum())


def high_quality_share(samples, centres, std: float, k_sigma: float = 3.0) -> float:
    """The share of samples within k_sigma * std of at least one centre, in [0, 1]."""
    return _within(samples, centres, std, k_sigma, "high_quality_share").any(1).double().mean().item()


def mean_log_density(samples, distribution: HasLogDensity) -> float:
    """The mean true log-density of the samples under `distribution`, nats per sample: highest for samples
    piled on the densest point, so read it beside the modes covered (the true samples' own value estimates
    minus the distribution's entropy)."""
    return distribution.log_density(_samples(samples, "mean_log_density")).mean().item()
