"""The 2-D toy distributions (genmodels.toy) against their stated definitions and their own densities, and the
mode metrics (genmodels.metrics.modes) on cases whose answers are known."""

import dataclasses
import functools
import math

import pytest
import torch
from scipy import stats

from genmodels.errors import ConfigError
from genmodels.metrics import high_quality_share, mean_log_density, mode_counts, modes_covered
from genmodels.toy import TEST_SIZE, TOYS, TRAIN_SIZE, GaussianMixture, NoisyCurves, ring8, toy_splits

MIXTURES = [name for name, d in TOYS.items() if isinstance(d, GaussianMixture)]
CURVES = [name for name, d in TOYS.items() if isinstance(d, NoisyCurves)]


def _std(d) -> float:
    return d.std if isinstance(d, GaussianMixture) else d.noise_std


@functools.cache  # the distributions are frozen, so hashable; three tests share each grid
def _grid_mass(d, cell: float) -> torch.Tensor:
    """The density's mass in each cell of a grid over d.extent(), (X, Y), by the midpoint rule. At a cell of one
    std the rule's error on a Gaussian is about 2 exp(-2 pi^2), 5e-9."""
    x0, x1, y0, y1 = d.extent()
    xs = x0 + cell * (torch.arange(math.ceil((x1 - x0) / cell), dtype=torch.float64) + 0.5)
    ys = y0 + cell * (torch.arange(math.ceil((y1 - y0) / cell), dtype=torch.float64) + 0.5)
    gx, gy = torch.meshgrid(xs, ys, indexing="ij")
    points = torch.stack([gx.flatten(), gy.flatten()], 1)
    return d.log_density(points).exp().mul(cell**2).reshape(len(xs), len(ys))


@pytest.mark.parametrize("name", list(TOYS))
def test_each_density_integrates_to_one(name):
    d = TOYS[name]
    assert _grid_mass(d, _std(d)).sum().item() == pytest.approx(1.0, abs=1e-3)


def _bin_mass(d, side: float) -> torch.Tensor:
    """The mass in each square bin of `side` over d.extent(), exactly from the normal CDF: a mixture's mass in a
    box is the weighted sum over its Gaussians of the products of their per-axis masses. A mixture's Gaussians
    are its components (equal weights); a curve's are its quadrature nodes (Simpson's weights), whose mixture is
    the curve's density to within 1e-6 (test_curve_quadrature_* below)."""
    if isinstance(d, NoisyCurves):
        (c, log_w), std = d.nodes(), d.noise_std
    else:
        c, std = d.centre_points, d.std
        log_w = torch.full((len(c),), -math.log(len(c)), dtype=torch.float64)
    x0, x1, y0, y1 = d.extent()
    ex = x0 + side * torch.arange(math.ceil((x1 - x0) / side) + 1, dtype=torch.float64)
    ey = y0 + side * torch.arange(math.ceil((y1 - y0) / side) + 1, dtype=torch.float64)
    px = torch.special.ndtr((ex[None] - c[:, :1]) / std).diff(dim=1)  # (K, bins along x)
    py = torch.special.ndtr((ey[None] - c[:, 1:]) / std).diff(dim=1)
    return torch.einsum("k,ki,kj->ij", log_w.exp(), px, py)


@pytest.mark.parametrize("name", list(TOYS))
def test_samples_histogram_matches_the_density(name):
    """Chi-square of a 2-D histogram of 20,000 samples against the distribution's mass in each bin (bins of
    2 std a side for the mixtures, 0.25 for the curves; bins expecting under 5 samples pooled). A fixed seed,
    so the p-value is fixed; it must exceed 0.001 (200,000 samples give p-values spread over (0, 1) too)."""
    d, n = TOYS[name], 20_000
    side = 2 * d.std if isinstance(d, GaussianMixture) else 0.25
    expected = _bin_mass(d, side) * n
    x0, _, y0, _ = d.extent()
    points = d.sample(n, seed=7).points.double()
    ix = ((points[:, 0] - x0) / side).floor().long().clamp(0, expected.shape[0] - 1)
    iy = ((points[:, 1] - y0) / side).floor().long().clamp(0, expected.shape[1] - 1)
    observed = torch.zeros_like(expected).index_put_((ix, iy), torch.ones(n, dtype=torch.float64), accumulate=True)
    big = expected >= 5
    obs = torch.cat([observed[big], observed[~big].sum()[None]])
    exp = torch.cat([expected[big], (n - expected[big].sum())[None]])
    chi2 = ((obs - exp) ** 2 / exp).sum().item()
    assert stats.chi2.sf(chi2, len(obs) - 1) > 1e-3, (chi2, len(obs))


def test_ring8_and_grid25_are_the_papers():
    """Metz et al. 2017: 8 centres on a circle of radius 2 at angles 2 pi k / 8, std 0.02; a 5x5 grid at -4..4
    in steps of 2, std 0.05."""
    ring = TOYS["ring8"]
    expected = [(2 * math.cos(2 * math.pi * k / 8), 2 * math.sin(2 * math.pi * k / 8)) for k in range(8)]
    assert torch.tensor(ring.centres) == pytest.approx(torch.tensor(expected), abs=1e-12)
    assert ring.std == 0.02
    grid = TOYS["grid25"]
    assert sorted(grid.centres) == [(float(x), float(y)) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)]
    assert grid.std == 0.05


@pytest.mark.parametrize("name", MIXTURES)
def test_mixture_samples_components_and_moments(name):
    """Labels uniform over components (chi-square), each point nearest its own centre, and the residuals from
    the centre of mean 0 and std `std` per axis."""
    d, n = TOYS[name], 20_000
    points, labels = d.sample(n, seed=3)
    assert points.dtype == torch.float32 and points.shape == (n, 2) and labels.dtype == torch.int64
    counts = torch.bincount(labels, minlength=d.classes).double()
    assert stats.chisquare(counts.numpy()).pvalue > 1e-3
    c = d.centre_points
    assert torch.equal(torch.cdist(points.double(), c).argmin(1), labels)
    residual = points.double() - c[labels]
    assert residual.mean(0).abs().max().item() < 5 * d.std / math.sqrt(n)
    assert residual.std(0).div(d.std).sub(1).abs().max().item() < 0.03  # se of a std estimate: 1 / sqrt(2n)


@pytest.mark.parametrize("name", CURVES)
def test_curve_samples_lie_at_the_noise_std_from_their_own_curve(name):
    """The distance of a sample to its curve is, away from the ends and where the curve is straight on the
    noise's scale, the half-normal |N(0, noise_std^2)| of mean noise_std * sqrt(2 / pi): within 5% here."""
    d, n = TOYS[name], 4_000
    points, labels = d.sample(n, seed=5)
    nodes = d.nodes()[0].reshape(len(d.curves), d.quadrature + 1, 2)
    gaps = torch.stack([torch.cdist(points.double(), arm).min(1).values for arm in nodes])  # (curves, n)
    assert gaps.min(0).values.mean().item() / (d.noise_std * math.sqrt(2 / math.pi)) == pytest.approx(1, abs=0.05)
    if d.labelled:  # each curve equally likely, and each point nearest its own curve
        assert stats.chisquare(torch.bincount(labels, minlength=d.classes).numpy()).pvalue > 1e-3
        assert (gaps.argmin(0) == labels).double().mean().item() > 0.98
    else:
        assert labels is None


@pytest.mark.parametrize("name", CURVES)
def test_curve_quadrature_agrees_with_a_rule_eight_times_finer(name):
    d = TOYS[name]
    points = d.sample(100, seed=11).points
    finer = dataclasses.replace(d, quadrature=8 * d.quadrature)
    assert (d.log_density(points) - finer.log_density(points)).abs().max().item() < 1e-6
    assert d.quadrature == 4096


def test_curve_quadrature_matches_the_exact_density_of_a_noisy_segment():
    """On the segment from (0, 0) to (1, 0), p(x, y) = N(y; 0, s^2) (Phi((1 - x) / s) - Phi(-x / s)) exactly."""
    s = 0.1
    segment = NoisyCurves("segment", (lambda t: torch.stack([t, torch.zeros_like(t)], 1),), (0.0, 1.0), s)
    points = torch.tensor([[0.5, 0.0], [0.0, 0.05], [1.1, -0.2], [-0.2, 0.1], [0.3, 0.25]], dtype=torch.float64)
    x, y = points[:, 0], points[:, 1]
    exact = (stats.norm.logpdf(y.numpy(), scale=s)
             + torch.log(torch.special.ndtr((1 - x) / s) - torch.special.ndtr(-x / s)).numpy())
    assert segment.log_density(points).numpy() == pytest.approx(exact, abs=1e-6)


@pytest.mark.parametrize("name", list(TOYS))
def test_mean_log_density_of_samples_is_minus_the_entropy(name):
    """Monte Carlo: the samples' mean log-density estimates -H, within 4 standard errors. For the mixtures,
    whose components lie > 40 std apart, H = log K + log(2 pi e std^2) in closed form; for the curves
    H = -sum p log p over the grid."""
    d = TOYS[name]
    if isinstance(d, GaussianMixture):
        n, entropy = 20_000, math.log(d.classes) + math.log(2 * math.pi * math.e * d.std**2)
    else:
        mass = _grid_mass(d, d.noise_std)
        n, entropy = 2_000, -(mass * (mass / d.noise_std**2).clamp_min(1e-300).log()).sum().item()
    points = d.sample(n, seed=1).points
    se = d.log_density(points[:500]).std().item() / math.sqrt(n)  # the spread of log p, from a subset
    assert mean_log_density(points, d) == pytest.approx(-entropy, abs=4 * se)


def test_splits_default_sizes_independent_seeds_and_refusals():
    splits = toy_splits("ring8")
    assert len(splits.train.points) == TRAIN_SIZE == 10_000 and len(splits.test.points) == TEST_SIZE == 2_000
    same_size = toy_splits("ring8", 100, 100, seed=3)
    assert not torch.equal(same_size.train.points, same_size.test.points)  # each split its own seed
    again, other = toy_splits("ring8", 50, 20, seed=0), toy_splits("ring8", 50, 20, seed=1)
    assert torch.equal(again.test.points, toy_splits("ring8", 50, 20, seed=0).test.points)
    assert not torch.equal(again.train.points, other.train.points)
    assert toy_splits("swissroll", 5, 5).train.labels is None
    with pytest.raises(ConfigError, match="no toy distribution 'ring9'; choose one of ring8, grid25"):
        toy_splits("ring9")
    with pytest.raises(ConfigError, match=r"test_size\) must be a whole number >= 1, got 0"):
        toy_splits("moons", 10, 0)
    with pytest.raises(ConfigError, match="seed must be a whole number >= 0"):
        toy_splits("moons", seed=-1)
    with pytest.raises(ValueError, match=r"points of shape \(n, 2\), got \(4, 3\)"):
        TOYS["moons"].log_density(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="an even quadrature >= 2"):
        dataclasses.replace(TOYS["moons"], quadrature=4095)  # Simpson's weights would not sum to one
    with pytest.raises(ValueError, match="std > 0"):
        dataclasses.replace(TOYS["ring8"], std=0.0)


# The mode metrics, on ring8 (centres 1.53 apart, std 0.02: 3 sigma is 0.06).
RING = ring8()


def _on_modes(modes, per_mode: int, seed: int = 0) -> torch.Tensor:
    """per_mode points drawn from each of the given ring8 components."""
    g = torch.Generator().manual_seed(seed)
    c = RING.centre_points[torch.tensor(modes)].repeat_interleave(per_mode, 0)
    return c + RING.std * torch.randn(c.shape, generator=g, dtype=torch.float64)


def test_a_sampler_on_exactly_five_of_eight_modes_covers_five():
    samples = _on_modes([0, 2, 3, 5, 7], 200)
    assert modes_covered(samples, RING.centres, RING.std) == 5
    assert mode_counts(samples, RING.centres, RING.std).tolist() == pytest.approx([200, 0, 200, 200, 0, 200, 0, 200],
                                                                                  abs=5)
    assert modes_covered(RING.sample(2_000, seed=0).points, RING.centres, RING.std) == 8


def test_ninety_percent_on_modes_and_ten_between_is_0_9_high_quality():
    on = RING.centre_points.repeat(90, 1) + 0.5 * RING.std  # 720 points, 0.71 std from a centre
    between = 2 * torch.stack([torch.cos(a := torch.arange(80) * math.pi / 4 + math.pi / 8), torch.sin(a)], 1)
    samples = torch.cat([on, between.double()])
    assert high_quality_share(samples, RING.centres, RING.std) == pytest.approx(0.9, abs=1e-12)


def test_the_three_sigma_ball_is_euclidean_and_closed():
    """A point at exactly 3 std counts, one a hair further does not; the true samples of a 2-D Gaussian lie within
    3 std (Euclidean) with probability 1 - exp(-9/2) = 0.9889, not the per-axis box's 0.9946."""
    centre, std = [(0.0, 0.0)], 0.5
    assert high_quality_share([[1.5, 0.0]], centre, std) == 1.0
    assert high_quality_share([[1.5001, 0.0]], centre, std) == 0.0
    assert high_quality_share([[1.2, 1.2]], centre, std) == 0.0  # inside the 3-std box, outside the ball
    share = high_quality_share(RING.sample(40_000, seed=2).points, RING.centres, RING.std)
    assert share == pytest.approx(1 - math.exp(-4.5), abs=0.0025)


@pytest.mark.parametrize(("n", "on_second", "min_share", "covered"),
                         [(1000, 10, 0.01, 2), (1000, 9, 0.01, 1), (700, 7, 0.01, 2), (700, 6, 0.01, 1),
                          (100, 7, 0.07, 2), (100, 6, 0.07, 1)])
def test_the_min_share_threshold_is_inclusive(n, on_second, min_share, covered):
    """Exactly min_share of the samples on a mode covers it, one sample fewer does not (0.07 * 100 is
    7.000000000000001 in floats, and 7 of 100 still count)."""
    c = RING.centre_points
    samples = torch.cat([c[0].repeat(n - on_second, 1), c[1].repeat(on_second, 1)])
    assert modes_covered(samples, RING.centres, RING.std, min_share=min_share) == covered


def test_mean_log_density_at_the_centres_is_the_peak():
    peak = -math.log(8) - math.log(2 * math.pi * RING.std**2)
    assert mean_log_density(RING.centre_points, RING) == pytest.approx(peak, abs=1e-9)


@pytest.mark.parametrize(("samples", "message"), [
    (torch.zeros(0, 2), "undefined for zero samples; give at least one"),
    (torch.tensor([[0.0, float("nan")]]), "refuses samples holding NaN or infinity"),
    (torch.zeros(3, 3), r"centres of shape \(K >= 1, 3\) matching the samples, got \(8, 2\)"),
    (torch.zeros(3), r"samples of shape \(n, D\), got \(3,\)"),
])
def test_the_mode_metrics_refuse_what_they_cannot_measure(samples, message):
    for metric in (modes_covered, high_quality_share, mode_counts):
        with pytest.raises(ValueError, match=message):
            metric(samples, RING.centres, RING.std)
    if samples.ndim == 2 and samples.shape[1] == 2:
        with pytest.raises(ValueError, match=message):
            mean_log_density(samples, RING)
    with pytest.raises(ValueError, match="0 < min_share <= 1"):
        modes_covered(torch.zeros(3, 2), RING.centres, RING.std, min_share=0)
