"""Two-dimensional toy distributions with a known density: the pictures where a GAN's dropped modes and a VAE's
mass between modes can be seen and counted.

Two kinds, each a frozen dataclass with `sample(n, seed)` and `log_density(points)`:

- `GaussianMixture`: equal-weight isotropic Gaussians, `centres` and a per-axis `std`; the labels are the
  components and the log-density is exact. `ring8` and `grid25` are the mixtures of Metz et al. 2017
  ("Unrolled Generative Adversarial Networks", section 3.1 and appendix), also used by VEEGAN
  (Srivastava et al. 2017) and PacGAN (Lin et al. 2018) to count modes.
- `NoisyCurves`: a curve (`moons`: one of two) with its parameter t uniform on `t_range`, plus isotropic Gaussian
  noise of std `noise_std`. Its density, p(x) = mean over curves of (1/|T|) * integral over T of N(x; c(t),
  noise_std^2 I) dt, has no closed form; `log_density` integrates it numerically by Simpson's rule on
  `quadrature` intervals per curve (see `NoisyCurves.log_density` for the accuracy and how tests check it).

`TOYS` names them all; `toy_splits` draws a train and a test split from independent seeds. Points are float32
(n, 2); labels int64 (n,), or None where the distribution has no components (`swissroll`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from .errors import ConfigError

TRAIN_SIZE, TEST_SIZE = 10_000, 2_000  # points per split unless asked otherwise
# Entries of the (points, components) block of squared distances held at once by log_density.
_CHUNK_ELEMENTS = 1 << 22

Seed = int | torch.Generator


class ToySample(NamedTuple):
    points: torch.Tensor  # (n, 2) float32
    labels: torch.Tensor | None  # (n,) int64: the component (or curve) each point came from; None without one


class ToySplits(NamedTuple):
    train: ToySample
    test: ToySample


def _generator(seed: Seed) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"a toy distribution's seed must be a whole number >= 0 or a torch.Generator, got {seed!r}.")
    return torch.Generator().manual_seed(seed)


def _check_size(n: object, what: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"the number of toy points ({what}) must be a whole number >= 1, got {n!r}.")
    return n


def _points(points) -> torch.Tensor:
    """points (n, 2) as a float64 tensor; anything else is refused in one sentence."""
    x = torch.as_tensor(points).detach().to("cpu", torch.float64)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"a toy density takes points of shape (n, 2), got {tuple(x.shape)}.")
    return x


def _log_gaussian_mixture(x: torch.Tensor, centres: torch.Tensor, std: float,
                          log_weights: torch.Tensor | None = None) -> torch.Tensor:
    """log of sum_k w_k N(x; centres_k, std^2 I) in 2-D, (n,) float64, in chunks of points; equal weights
    1/K unless log_weights (K,) are given (they must sum to one)."""
    k = centres.shape[0]
    if log_weights is None:
        log_weights = torch.full((k,), -math.log(k), dtype=torch.float64)
    # log N(x; mu, s^2 I_2) = -|x - mu|^2 / (2 s^2) - log(2 pi s^2): the 2-D normaliser, (2 pi s^2)^(d/2), d = 2.
    norm = math.log(2 * math.pi * std**2)
    chunk = max(1, _CHUNK_ELEMENTS // k)
    out = [torch.logsumexp(torch.cdist(b, centres).square().div(-2 * std**2) + log_weights, dim=1) - norm
           for b in x.split(chunk)]
    return torch.cat(out) if out else x.new_zeros(0)


@dataclass(frozen=True)
class GaussianMixture:
    """An equal-weight mixture of isotropic 2-D Gaussians N(centre_k, std^2 I); labels are the component k."""

    name: str
    centres: tuple[tuple[float, float], ...]
    std: float  # per axis

    def __post_init__(self) -> None:
        if not self.centres or not self.std > 0:
            raise ValueError(f"a Gaussian mixture needs at least one centre and std > 0, got {len(self.centres)} "
                             f"centres and std {self.std}.")

    @property
    def centre_points(self) -> torch.Tensor:
        """The centres as a (K, 2) float64 tensor."""
        return torch.tensor(self.centres, dtype=torch.float64)

    @property
    def classes(self) -> int:
        return len(self.centres)

    def sample(self, n: int, seed: Seed = 0) -> ToySample:
        """n points and their components: a component uniformly, then its Gaussian."""
        g = _generator(seed)
        labels = torch.randint(len(self.centres), (_check_size(n),), generator=g)
        noise = torch.randn(n, 2, generator=g, dtype=torch.float64)
        return ToySample((self.centre_points[labels] + self.std * noise).float(), labels)

    def log_density(self, points) -> torch.Tensor:
        """The exact log-density of points (n, 2): (n,) float64."""
        return _log_gaussian_mixture(_points(points), self.centre_points, self.std)

    def extent(self, margin: float = 6.0) -> tuple[float, float, float, float]:
        """(xmin, xmax, ymin, ymax) of a box holding all but a negligible mass: centres +- margin * std."""
        c = self.centre_points
        lo, hi = c.min(0).values - margin * self.std, c.max(0).values + margin * self.std
        return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


Curve = Callable[[torch.Tensor], torch.Tensor]  # t (T,) float64 -> points (T, 2) float64


@dataclass(frozen=True)
class NoisyCurves:
    """A point on one of `curves` (each equally likely) at t uniform on `t_range`, plus N(0, noise_std^2 I).

    labels are the curve's index when there are several (`labelled`), else None."""

    name: str
    curves: tuple[Curve, ...]
    t_range: tuple[float, float]
    noise_std: float
    quadrature: int = 4096  # Simpson's rule intervals per curve in log_density (even)

    def __post_init__(self) -> None:
        if not self.curves or not self.noise_std > 0 or self.quadrature < 2 or self.quadrature % 2:
            raise ValueError(f"noisy curves need at least one curve, noise_std > 0 and an even quadrature >= 2 "
                             f"(Simpson's rule), got {len(self.curves)}, {self.noise_std} and {self.quadrature}.")

    @property
    def labelled(self) -> bool:
        return len(self.curves) > 1

    @property
    def classes(self) -> int:
        return len(self.curves) if self.labelled else 0

    def sample(self, n: int, seed: Seed = 0) -> ToySample:
        g = _generator(seed)
        labels = torch.randint(len(self.curves), (_check_size(n),), generator=g)
        t0, t1 = self.t_range
        t = t0 + (t1 - t0) * torch.rand(n, generator=g, dtype=torch.float64)
        on = torch.stack([c(t) for c in self.curves])[labels, torch.arange(n)]  # (n, 2): each point's own curve
        points = (on + self.noise_std * torch.randn(n, 2, generator=g, dtype=torch.float64)).float()
        return ToySample(points, labels if self.labelled else None)

    def nodes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The quadrature: points on the curves, (len(curves) * (quadrature + 1), 2) float64, at t_j = t0 + j h,
        h = (t1 - t0) / quadrature, and their log-weights, Simpson's 1, 4, 2, 4, ..., 4, 1 times h / 3, divided
        by (t1 - t0) and by the number of curves so that they sum to one."""
        t0, t1 = self.t_range
        m = self.quadrature
        t = torch.linspace(t0, t1, m + 1, dtype=torch.float64)
        w = torch.ones(m + 1, dtype=torch.float64)
        w[1:-1:2], w[2:-1:2] = 4.0, 2.0
        log_w = (w / (3 * m * len(self.curves))).log().repeat(len(self.curves))
        return torch.cat([c(t) for c in self.curves]), log_w

    def log_density(self, points) -> torch.Tensor:
        """log p(points), (n,) float64, by numeric integration along the curves (not a closed form).

        Simpson's rule on `quadrature` intervals per curve replaces (1/|T|) * integral dt by a weighted sum over
        the nodes, so the estimate is the density of a mixture of Gaussians at the nodes with positive weights
        summing to one: exactly normalised. Its error is O(h^4), from the ends of the curves; inside, where the
        nodes lie under 0.01 apart along the curve against a noise_std of 0.1, it vanishes much faster.
        tests/test_toy.py checks it against a rule with 8x the nodes (within 1e-6 nats at the distribution's own
        samples) and, on a straight segment, against the exact erf formula."""
        nodes, log_w = self.nodes()
        return _log_gaussian_mixture(_points(points), nodes, self.noise_std, log_w)

    def extent(self, margin: float = 6.0) -> tuple[float, float, float, float]:
        """(xmin, xmax, ymin, ymax) of a box holding all but a negligible mass: the curves +- margin * noise_std."""
        c = self.nodes()[0]
        lo, hi = c.min(0).values - margin * self.noise_std, c.max(0).values + margin * self.noise_std
        return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


ToyDistribution = GaussianMixture | NoisyCurves


def _circle(t: torch.Tensor) -> torch.Tensor:
    return torch.stack([t.cos(), t.sin()], dim=1)


def _upper_moon(t: torch.Tensor) -> torch.Tensor:  # the upper half of the unit circle, t in [0, pi]
    return _circle(t)


def _lower_moon(t: torch.Tensor) -> torch.Tensor:  # the upper moon turned over and shifted by (1, 0.5)
    return torch.tensor([1.0, 0.5], dtype=torch.float64) - _circle(t)


def _roll(t: torch.Tensor) -> torch.Tensor:  # an Archimedean spiral, radius t / 5, one arm from 1.5 pi to 4.5 pi
    return _circle(t) * (t / 5)[:, None]


def _arm(t: torch.Tensor) -> torch.Tensor:  # radius t / pi: neighbouring turns of the two arms lie 1 apart
    return _circle(t) * (t / math.pi)[:, None]


def _opposite_arm(t: torch.Tensor) -> torch.Tensor:
    return -_arm(t)


def ring8(radius: float = 2.0, std: float = 0.02) -> GaussianMixture:
    """8 Gaussians on a circle of radius 2 at angles 2 pi k / 8, std 0.02 per axis (Metz et al. 2017)."""
    angles = [2 * math.pi * k / 8 for k in range(8)]
    return GaussianMixture("ring8", tuple((radius * math.cos(a), radius * math.sin(a)) for a in angles), std)


def grid25(spacing: float = 2.0, std: float = 0.05) -> GaussianMixture:
    """A 5x5 grid of Gaussians at -4, -2, 0, 2, 4 on each axis, std 0.05 per axis (Metz et al. 2017's grid,
    as VEEGAN and PacGAN use it); component k = 5 * i + j sits at (x_i, y_j)."""
    axis = [spacing * (i - 2) for i in range(5)]
    return GaussianMixture("grid25", tuple((x, y) for x in axis for y in axis), std)


TOYS: dict[str, ToyDistribution] = {
    "ring8": ring8(),
    "grid25": grid25(),
    # Two interleaved half circles (the geometry of scikit-learn's make_moons), noise std 0.1; labels: the moon.
    "moons": NoisyCurves("moons", (_upper_moon, _lower_moon), (0.0, math.pi), 0.1),
    # One arm of an Archimedean spiral (the 2-D swiss roll), radius 0.94 to 2.83, noise std 0.1; no labels.
    "swissroll": NoisyCurves("swissroll", (_roll,), (1.5 * math.pi, 4.5 * math.pi), 0.1),
    # Two opposite spiral arms, radius 0.5 to 3, noise std 0.1; labels: the arm.
    "spiral": NoisyCurves("spiral", (_arm, _opposite_arm), (0.5 * math.pi, 3 * math.pi), 0.1),
}


def toy_splits(name: str, train_size: int = TRAIN_SIZE, test_size: int = TEST_SIZE, seed: int = 0) -> ToySplits:
    """A train and a test split of the toy `name`, each drawn from its own seed derived from `seed`
    (numpy's SeedSequence spawn keys 0 and 1), so the splits are independent and every seed gives new data."""
    if name not in TOYS:
        raise ConfigError(f"there is no toy distribution {name!r}; choose one of {', '.join(TOYS)}.")
    _check_size(train_size, "train_size")
    _check_size(test_size, "test_size")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"a toy split's seed must be a whole number >= 0, got {seed!r}.")
    toy = TOYS[name]
    train_seed, test_seed = (int(np.random.SeedSequence(seed, spawn_key=(k,)).generate_state(1, np.uint64)[0])
                             for k in (0, 1))
    return ToySplits(toy.sample(train_size, train_seed), toy.sample(test_size, test_seed))
