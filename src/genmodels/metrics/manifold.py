"""Sample quality beyond one distance: k-NN manifold estimates and the class histogram.

Improved precision and recall (Kynkaanniemi et al. 2019) and density and coverage (Naeem et
al. 2020) estimate each feature manifold as the union of balls around its points, each ball's
radius the distance to the point's k-th nearest neighbour in its own set. Distances are taken
over row chunks, so memory stays at chunk x N whatever N is, and stay squared: every test here
(k-th smallest, inside a ball) reads the same on squared distances, so no square root is taken
but for the radii knn_radii returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch

_CHUNK = 1024  # rows of a distance block: 1024 x N floats at a time


def _sq_norms(x: torch.Tensor) -> torch.Tensor:
    return x.pow(2).sum(1)


def _partial_sq_distances(a: torch.Tensor, b: torch.Tensor, bias: torch.Tensor):
    """(start, block) pairs, block = bias_j - 2 a_i . b_j for the rows a[start:start + _CHUNK] and all of b:
    (chunk, M), one addmm. With bias = |b_j|^2 the block is the squared distance |a_i - b_j|^2 less the
    row's constant |a_i|^2, which callers add only where it matters. (torch.cdist expands the same way,
    but pads b and recomputes its norms for every block, then clamps and takes a square root: four
    more passes over each block than these tests need.)"""
    for i in range(0, len(a), _CHUNK):
        yield i, torch.addmm(bias, a[i : i + _CHUNK], b.T, alpha=-2)


def _knn_sq_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Squared distance from each row of x (N, F) to its k-th nearest other row: (N,); 0 for rows with k copies.
    A ValueError unless x has more than k rows (the metrics below need more than k points in each set whose
    balls they draw)."""
    if not 1 <= k < len(x):
        raise ValueError(f"k = {k} nearest neighbours need more than k points, got {len(x)}")
    x_sq = _sq_norms(x)
    # k + 1 smallest: each row's own zero distance comes first. A row's constant |x_i|^2 leaves its
    # order alone, so it is added to the k-th value only; rounding can leave it just below 0.
    return torch.cat([d.topk(k + 1, dim=1, largest=False).values[:, k] + x_sq[i : i + len(d)]
                      for i, d in _partial_sq_distances(x, x, x_sq)]).clamp_min_(0)


def knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each row of x (N, F) to its k-th nearest other row: (N,)."""
    return _knn_sq_radii(x, k).sqrt()


def _in_balls(points: torch.Tensor, centres: torch.Tensor, sq_radii: torch.Tensor,
              nearest: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """For each point, how many closed balls B(centre_j, radius_j) hold it (P,); with nearest, also for
    each centre min_p |p - centre_j|^2 - radius_j^2 (C,), <= 0 exactly when some point lies in its ball.

    p in B(c_j, r_j)  <=>  |p|^2 - 2 p.c_j + |c_j|^2 <= r_j^2  <=>  (|c_j|^2 - r_j^2) - 2 p.c_j <= -|p|^2:
    one addmm with the bias |c_j|^2 - r_j^2 per block, then one comparison with a per-row threshold."""
    p_sq = _sq_norms(points)
    counts = torch.empty(len(points), dtype=torch.long, device=points.device)
    margin = None
    for i, lhs in _partial_sq_distances(points, centres, _sq_norms(centres) - sq_radii):  # lhs: (chunk, C)
        rows = p_sq[i : i + len(lhs), None]
        counts[i : i + len(lhs)] = (lhs <= -rows).sum(1)
        if nearest:  # lhs + |p|^2 = |p - c_j|^2 - r_j^2
            block = lhs.add_(rows).min(0).values
            margin = block if margin is None else torch.minimum(margin, block)
    return counts, margin


@dataclass
class ManifoldResult:
    precision: float  # share of fake points inside the real manifold (k = 3)
    recall: float  # share of real points inside the fake manifold (k = 3)
    density: float  # mean number of real balls holding a fake point, over k (k = 5); 1 for matching sets
    coverage: float  # share of real balls holding at least one fake point (k = 5)
    # Identical real and fake sets give precision, recall and coverage 1; points at distance 0 lie in a ball of
    # radius 0 (closed balls), so identical images are defined too. Density is unbounded: N / k for N identical
    # real points and any fakes equal to them.

    def as_dict(self) -> dict[str, float]:
        return {"precision": self.precision, "recall": self.recall, "density": self.density, "coverage": self.coverage}


@torch.inference_mode()
def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019): with f(phi, Phi) = 1 when
    phi lies in some ball B(phi', NND_k(phi')), phi' in Phi,
        precision = mean over fakes of f(fake, Reals), recall = mean over reals of f(real, Fakes)."""
    real, fake = real.flatten(1).float(), fake.flatten(1).float()
    in_real, _ = _in_balls(fake, real, _knn_sq_radii(real, k))
    in_fake, _ = _in_balls(real, fake, _knn_sq_radii(fake, k))
    return (in_real > 0).float().mean().item(), (in_fake > 0).float().mean().item()


@torch.inference_mode()
def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020), balls around the real points only:
        density  = 1 / (k M) sum_j sum_i 1[Y_j in B(X_i, NND_k(X_i))]
        coverage = 1 / N sum_i 1[exists j: Y_j in B(X_i, NND_k(X_i))]
    for real X (N, F) and fake Y (M, F)."""
    real, fake = real.flatten(1).float(), fake.flatten(1).float()
    counts, margin = _in_balls(fake, real, _knn_sq_radii(real, k), nearest=True)
    margin = cast(torch.Tensor, margin)  # nearest=True gives one whenever there are fake points
    return counts.sum().item() / (k * len(fake)), (margin <= 0).float().mean().item()


def manifold_metrics(real: torch.Tensor, fake: torch.Tensor, k_pr: int = 3, k_dc: int = 5) -> ManifoldResult:
    """Precision and recall at k_pr, density and coverage at k_dc, with the papers' defaults."""
    return ManifoldResult(*precision_recall(real, fake, k_pr), *density_coverage(real, fake, k_dc))


def class_histogram(predictions: torch.Tensor, classes: int) -> torch.Tensor:
    """Share of each class among predicted labels (N,) int: (classes,) float64, summing to 1."""
    counts = torch.bincount(predictions.flatten().long().cpu(), minlength=classes)[:classes]
    return counts.double() / max(len(predictions), 1)


def class_entropy(histogram: torch.Tensor) -> float:
    """Entropy in nats of a class histogram, -sum p log p (0 log 0 = 0): log(C) when the samples
    spread evenly over C classes, lower as the generator drops modes (a mode-collapse signal). An empty
    histogram (all zeros: no samples) has entropy 0, by the same convention."""
    total = histogram.double().sum()
    if total <= 0:
        return 0.0
    p = histogram.double() / total
    return float(-(p * torch.log(p.where(p > 0, torch.ones_like(p)))).sum())
