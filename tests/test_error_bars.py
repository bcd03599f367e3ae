"""Every error bar evaluate reports, against its formula (issue 28): the standard error of the importance-weighted
log-likelihood and of the Parzen estimate, s / sqrt(n) with s the sample standard deviation (n - 1) over the n test
images, and the spread of KID, the sample standard deviation of its per-subset unbiased MMD^2 estimates. Small n,
so a wrong normaliser (n for n - 1, sqrt(n - 1) for sqrt(n), a sum for a mean) is far outside the tolerance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genmodels.metrics.distances import kid
from genmodels.metrics.parzen import default_sigmas, parzen_estimate
from genmodels.models.base import EvalOptions
from genmodels.models.vae import VAE, VAEConfig


def test_importance_weighted_stderr_is_the_sample_std_over_root_n(monkeypatch):
    """Per-image bounds chosen here stand in for the estimator (tested in test_vae.py), over batches that do not
    divide the images evenly, so the mean and its error bar are read from all five."""
    per_image = torch.tensor([-80.0, -95.5, -60.25, -101.0, -77.0])
    model = VAE(VAEConfig(hidden=[4], latent_dim=2), (1, 3, 3)).eval()
    x = torch.rand(5, 1, 3, 3)

    def bound(self, xb, k):
        rows = [int(i) for i in torch.nonzero((x[:, None] == xb[None]).flatten(2).all(2))[:, 0]]
        return per_image[rows]

    monkeypatch.setattr(VAE, "importance_weighted_bound", bound)
    got = model.evaluate(x, options=EvalOptions(importance_samples=3, batch_size=2))
    values = per_image.numpy().astype(np.float64)
    assert got["log_likelihood_iw"] == pytest.approx(values.mean(), rel=1e-6)
    assert got["log_likelihood_iw_stderr"] == pytest.approx(values.std(ddof=1) / math.sqrt(5), rel=1e-5)
    assert got["importance_samples"] == 3


def _parzen_by_hand(x: np.ndarray, samples: np.ndarray, sigma: float) -> np.ndarray:
    """log p(x_i) = log (1/S) sum_j N(x_i; s_j, sigma^2 I), one image at a time."""
    d = x.shape[1]
    sq = ((x[:, None, :] - samples[None, :, :]) ** 2).sum(2)
    a = -sq / (2 * sigma**2)
    top = a.max(1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(a - top).sum(1))
    return lse - np.log(len(samples)) - 0.5 * d * np.log(2 * np.pi * sigma**2)


def test_parzen_estimate_its_bandwidth_and_stderr_equal_their_formulas():
    g = torch.Generator().manual_seed(3)
    samples, valid, test = (torch.rand(n, 1, 2, 2, generator=g) for n in (9, 6, 5))
    result = parzen_estimate(samples, valid, test)
    s, v, t = (a.flatten(1).double().numpy() for a in (samples, valid, test))
    grid = default_sigmas().numpy()
    scores = [_parzen_by_hand(v, s, sig).mean() for sig in grid]
    sigma = float(grid[int(np.argmax(scores))])
    assert result.sigma == pytest.approx(sigma) and 0 < int(np.argmax(scores)) < len(grid) - 1  # chosen inside
    ll = _parzen_by_hand(t, s, sigma)
    assert result.log_likelihood == pytest.approx(ll.mean(), rel=1e-9)
    assert result.stderr == pytest.approx(ll.std(ddof=1) / math.sqrt(len(ll)), rel=1e-9)
    assert result.samples == 9
    assert parzen_estimate(samples, valid, test[:1]).stderr == 0.0  # one image: no spread to estimate


def _mmd2_by_hand(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3 (Binkowski et al. 2018), written as loops over pairs."""
    m, d = len(x), x.shape[1]
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_and_its_std_equal_the_subset_estimates_mean_and_sample_std():
    """The subsets are drawn as kid documents (a row of uniform noise per subset, argsorted, its first m), from the
    same generator; the estimates on them, by hand, give KID as their mean and its spread as their sample std."""
    g = torch.Generator().manual_seed(5)
    real, fake = torch.randn(9, 3, generator=g), torch.randn(8, 3, generator=g) + 0.7
    subsets, m = 6, 4
    result = kid(real, fake, subsets=subsets, subset_size=m, generator=torch.Generator().manual_seed(11))
    draw = torch.Generator().manual_seed(11)
    ix = torch.rand(subsets, 9, generator=draw).argsort(1)[:, :m]
    iy = torch.rand(subsets, 8, generator=draw).argsort(1)[:, :m]
    r, f = real.double().numpy(), fake.double().numpy()
    est = np.array([_mmd2_by_hand(r[a.numpy()], f[b.numpy()]) for a, b in zip(ix, iy)])
    assert est.std() > 0.05 * abs(est.mean())  # subsets that differ, so the spread is a real test
    assert (result.subsets, result.subset_size) == (subsets, m)
    assert result.kid == pytest.approx(est.mean(), rel=1e-9)
    assert result.std == pytest.approx(est.std(ddof=1), rel=1e-9)
