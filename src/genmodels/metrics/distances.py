"""Distances between the feature distributions of real and generated images: FID and KID.

Both compare feature vectors (N, F) of a feature network (genmodels trains its own per
dataset, `genmodels.features`); they are functions of tensors, so any features will do.
Numbers computed in another network's feature space (Inception, in the literature) are
not comparable with these.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Entries of the (subsets, m, m) kernel blocks KID holds at once (float64: 8 bytes each).
_KID_BLOCK_ELEMENTS = 1 << 22


def feature_moments(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (F,) and unbiased covariance (F, F) of features (N, F), in float64."""
    f = features.flatten(1).double()
    if f.shape[0] < 2:
        raise ValueError(f"moments need at least 2 feature vectors, got {f.shape[0]}")
    mu = f.mean(0)
    centred = f - mu
    return mu, centred.T @ centred / (f.shape[0] - 1)


def _sqrt_psd(sigma: torch.Tensor) -> torch.Tensor:
    """The symmetric square root of a positive semi-definite matrix, by eigh (rounding's tiny
    negative eigenvalues clamped to 0)."""
    w, v = torch.linalg.eigh((sigma + sigma.T) / 2)
    return (v * w.clamp_min(0).sqrt()) @ v.T


@torch.inference_mode()
def frechet_distance(mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor) -> float:
    """Squared Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2) (Dowson &
    Landau 1982), the FID of Heusel et al. 2017 (their definition, written out here):

        d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2})

    (S1 S2)^{1/2} need not be symmetric, so its trace is taken as Tr((s1 S2 s1)^{1/2}) with
    s1 = S1^{1/2}: s1 S2 s1 is similar to S1 S2 and symmetric PSD, so the trace is the sum of the
    square roots of its eigenvalues, from eigh in float64 (stable where scipy's sqrtm can go complex)."""
    mu1, mu2, s1, s2 = (t.double() for t in (mu1, mu2, sigma1, sigma2))
    root1 = _sqrt_psd(s1)
    cross = torch.linalg.eigvalsh(root1 @ s2 @ root1).clamp_min(0).sqrt().sum()
    d2 = (mu1 - mu2).pow(2).sum() + torch.trace(s1) + torch.trace(s2) - 2 * cross
    return max(float(d2), 0.0)  # rounding can cross 0 for identical moments


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to real (N, F) and fake (M, F) features."""
    return frechet_distance(*feature_moments(real), *feature_moments(fake))


@dataclass
class KIDResult:
    kid: float  # mean of the per-subset unbiased MMD^2 estimates
    std: float  # their standard deviation across subsets
    subsets: int
    subset_size: int


def _poly_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """k(x, y) = (x.y / d + 1)^3 (Binkowski et al. 2018, section 4) for batches (S, m, d): (S, m, m)."""
    return (a @ b.transpose(1, 2) / a.shape[-1] + 1).pow(3)


def _mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD^2 per subset (Gretton et al. 2012, Lemma 6) for x, y (S, m, d): (S,).

    MMD^2_u = sum_{i!=j} k(x_i, x_j) / (m(m-1)) + sum_{i!=j} k(y_i, y_j) / (m(m-1)) - 2 sum_{i,j} k(x_i, y_j) / m^2"""
    m = x.shape[1]
    kxx, kyy, kxy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
    def off(k: torch.Tensor) -> torch.Tensor:  # the i != j terms
        return k.sum((1, 2)) - k.diagonal(dim1=1, dim2=2).sum(1)

    return (off(kxx) + off(kyy)) / (m * (m - 1)) - 2 * kxy.sum((1, 2)) / (m * m)


@torch.inference_mode()
def kid(real: torch.Tensor, fake: torch.Tensor, subsets: int = 100, subset_size: int = 1000,
        generator: torch.Generator | None = None) -> KIDResult:
    """Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs", section 4): the
    unbiased MMD^2 between real (N, F) and fake (M, F) features under the cubic polynomial kernel,
    averaged over `subsets` random subsets of min(subset_size, N, M) of each (drawn without
    replacement within a subset). Unlike FID its estimator is unbiased: 0 in expectation for
    samples of one distribution, so it can come out slightly negative."""
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise ValueError(f"KID needs at least 2 feature vectors on each side, got {len(real)} and {len(fake)}")
    x, y = real.flatten(1).double(), fake.flatten(1).double()
    gen = generator or torch.Generator(device=x.device).manual_seed(0)
    chunk = max(1, _KID_BLOCK_ELEMENTS // (m * m))
    estimates = []
    for start in range(0, subsets, chunk):
        s = min(chunk, subsets - start)
        # s independent permutations at once: argsort of uniform noise, first m of each row.
        ix = torch.rand(s, len(x), generator=gen, device=x.device).argsort(1)[:, :m]
        iy = torch.rand(s, len(y), generator=gen, device=x.device).argsort(1)[:, :m]
        estimates.append(_mmd2_unbiased(x[ix], y[iy]))
    est = torch.cat(estimates)
    std = float(est.std()) if subsets > 1 else 0.0
    return KIDResult(float(est.mean()), std, subsets, m)
