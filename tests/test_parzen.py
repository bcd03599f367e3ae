"""The Parzen-window estimate against scikit-learn's KernelDensity, and its bandwidth selection."""

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from sklearn.neighbors import KernelDensity

import genmodels.metrics.parzen as parzen
from genmodels.metrics import parzen_estimate, parzen_log_density, select_sigma


@pytest.fixture
def points():
    g = torch.Generator().manual_seed(0)
    samples = torch.rand(300, 1, 3, 4, generator=g)
    valid, test = torch.rand(50, 1, 3, 4, generator=g), torch.rand(70, 1, 3, 4, generator=g)
    return samples, valid, test


def brute_force(x, samples, sigma):
    """log p(x) for each x by the formula, in numpy, one pair of points at a time."""
    xs, ss = x.flatten(1).double().numpy(), samples.flatten(1).double().numpy()
    d2 = ((xs[:, None] - ss[None]) ** 2).sum(-1)
    return logsumexp(-d2 / (2 * sigma**2), axis=1) - np.log(len(ss)) - xs.shape[1] / 2 * np.log(2 * np.pi * sigma**2)


@pytest.mark.parametrize("sigma", [0.05, 0.2, 1.0])
def test_matches_sklearn_kernel_density(points, monkeypatch, sigma):
    samples, _, test = points
    expected = brute_force(test, samples, sigma)
    if sigma >= 0.2:  # at 0.05 sklearn's tree misses far-tail points (it gives -13.5 where the sum is -105)
        kde = KernelDensity(kernel="gaussian", bandwidth=sigma).fit(samples.flatten(1).double().numpy())
        np.testing.assert_allclose(kde.score_samples(test.flatten(1).double().numpy()), expected, rtol=1e-6)
    whole = parzen_log_density(test, samples, sigma)[0].numpy()
    np.testing.assert_allclose(whole, expected, rtol=1e-6)
    # Blocks over test points and samples combine exactly.
    monkeypatch.setattr(parzen, "_CHUNK_ELEMENTS", 7 * 32)
    monkeypatch.setattr(parzen, "_SAMPLE_CHUNK", 32)
    np.testing.assert_allclose(parzen_log_density(test, samples, sigma)[0].numpy(), expected, rtol=1e-6)


def test_sigma_selection_is_the_grid_argmax(points):
    samples, valid, test = points
    grid = [0.05, 0.1, 0.15, 0.2, 0.3, 0.5]
    brute = {s: brute_force(valid, samples, s).mean() for s in grid}
    best = max(brute, key=brute.get)
    sigma, table = select_sigma(valid, samples, grid)
    assert sigma == pytest.approx(best) and 0.05 < best < 0.5  # an interior optimum, not an edge
    np.testing.assert_allclose(list(table.values()), [brute[s] for s in grid], rtol=1e-6)
    result = parzen_estimate(samples, valid, test, grid)
    ll = parzen_log_density(test, samples, best)[0]
    assert result.sigma == pytest.approx(best) and result.samples == 300
    assert result.log_likelihood == pytest.approx(ll.mean().item())
    assert result.stderr == pytest.approx((ll.std() / np.sqrt(70)).item())
