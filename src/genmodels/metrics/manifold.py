"""Sample quality beyond one distance: k-NN manifold estimates and the class histogram.

Improved precision and recall (Kynkaanniemi et al. 2019) and density and coverage (Naeem et
al. 2020) estimate each feature manifold as the union of balls around its points, each ball's
radius the distance to the point's k-th nearest neighbour in its own set. Distances come from
torch.cdist over row chunks, so memory stays at chunk x N whatever N is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

_CHUNK = 1024  # rows of a distance block: 1024 x N floats at a time


def _distance_blocks(a: torch.Tensor, b: torch.Tensor):
    """(start, block) pairs: the Euclidean distances from rows a[start:start + _CHUNK] to all of b."""
    for i in range(0, len(a), _CHUNK):
        yield i, torch.cdist(a[i : i + _CHUNK], b)


def knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each row of x (N, F) to its k-th nearest other row: (N,)."""
    if not 1 <= k < len(x):
        raise ValueError(f"k = {k} nearest neighbours need more than k points, got {len(x)}")
    # k + 1 smallest: each row's own zero distance comes first.
    return torch.cat([d.topk(k + 1, dim=1, largest=False).values[:, k] for _, d in _distance_blocks(x, x)])


def _in_balls(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each point, how many closed balls B(centre_i, radius_i) hold it (P,); for each centre,
    the distance to its nearest point (C,)."""
    counts = torch.empty(len(points), dtype=torch.long, device=points.device)
    nearest = torch.full((len(centres),), math.inf, dtype=points.dtype, device=points.device)
    for i, d in _distance_blocks(points, centres):  # d: (chunk, C)
        counts[i : i + len(d)] = (d <= radii[None]).sum(1)
        nearest = torch.minimum(nearest, d.min(0).values)
    return counts, nearest


@dataclass
class ManifoldResult:
    precision: float  # share of fake points inside the real manifold (k = 3)
    recall: float  # share of real points inside the fake manifold (k = 3)
    density: float  # mean number of real balls holding a fake point, over k (k = 5); 1 for matching sets
    coverage: float  # share of real balls holding at least one fake point (k = 5)

    def as_dict(self) -> dict[str, float]:
        return {"precision": self.precision, "recall": self.recall, "density": self.density, "coverage": self.coverage}


@torch.inference_mode()
def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019): with f(phi, Phi) = 1 when
    phi lies in some ball B(phi', NND_k(phi')), phi' in Phi,
        precision = mean over fakes of f(fake, Reals), recall = mean over reals of f(real, Fakes)."""
    real, fake = real.flatten(1).float(), fake.flatten(1).float()
    in_real, _ = _in_balls(fake, real, knn_radii(real, k))
    in_fake, _ = _in_balls(real, fake, knn_radii(fake, k))
    return (in_real > 0).float().mean().item(), (in_fake > 0).float().mean().item()


@torch.inference_mode()
def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020), balls around the real points only:
        density  = 1 / (k M) sum_j sum_i 1[Y_j in B(X_i, NND_k(X_i))]
        coverage = 1 / N sum_i 1[exists j: Y_j in B(X_i, NND_k(X_i))]
    for real X (N, F) and fake Y (M, F)."""
    real, fake = real.flatten(1).float(), fake.flatten(1).float()
    radii = knn_radii(real, k)
    counts, nearest_fake = _in_balls(fake, real, radii)
    return counts.sum().item() / (k * len(fake)), (nearest_fake <= radii).float().mean().item()


def manifold_metrics(real: torch.Tensor, fake: torch.Tensor, k_pr: int = 3, k_dc: int = 5) -> ManifoldResult:
    """Precision and recall at k_pr, density and coverage at k_dc, with the papers' defaults."""
    return ManifoldResult(*precision_recall(real, fake, k_pr), *density_coverage(real, fake, k_dc))


def class_histogram(predictions: torch.Tensor, classes: int) -> torch.Tensor:
    """Share of each class among predicted labels (N,) int: (classes,) float64, summing to 1."""
    counts = torch.bincount(predictions.flatten().long().cpu(), minlength=classes)[:classes]
    return counts.double() / max(len(predictions), 1)


def class_entropy(histogram: torch.Tensor) -> float:
    """Entropy in nats of a class histogram, -sum p log p (0 log 0 = 0): log(C) when the samples
    spread evenly over C classes, lower as the generator drops modes (a mode-collapse signal)."""
    p = histogram.double() / histogram.sum()
    return float(-(p * torch.log(p.where(p > 0, torch.ones_like(p)))).sum())
