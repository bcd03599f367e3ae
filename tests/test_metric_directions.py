"""Which way each ranked metric is better, from its definition, without a browser (issue 28; the declarations and
the report's wiring are tests/test_metric_catalog.py's). For every metric the report ranks, two results are built,
one better by construction (samples drawn like the data against shifted or collapsed ones, exact reconstructions
against noisy ones, a decoder that gives the data its likelihood against one that gives it the opposite), the
metric is computed on both with genmodels' own function where it has one, and the report must mark the better
one best, in either order, with the glossary saying the same way. Precision, recall, density and coverage are
also checked with real and fake sets of one size, where a role swapped (radii from the wrong set) gives another
number instead of a crash."""

from __future__ import annotations

import html
import re

import numpy as np
import pytest
import torch

from genmodels.metrics import distances, manifold, modes, parzen, pixels, probes
from genmodels.models import build_model
from genmodels.models.base import EvalOptions
from genmodels.models.registry import FAMILIES
from genmodels.report.catalog import METRICS
from genmodels.report.html import RunSummary, headline_table, metric_table, render
from genmodels.toy import TOYS

G = torch.Generator().manual_seed(0)
REAL = torch.randn(40, 4, generator=G)  # features of "test images"
LIKE = torch.randn(40, 4, generator=G)  # another draw of the same distribution: a good model's samples
SHIFTED = torch.randn(40, 4, generator=G) * 0.3 + 3  # far off, narrow: a bad model's
IMAGES = torch.rand(12, 1, 6, 6, generator=G)
BLURRED = torch.nn.functional.avg_pool2d(IMAGES, 3, 1, 1)


def _sse(recon: torch.Tensor) -> float:
    return float((recon - IMAGES).pow(2).flatten(1).sum(1).mean())


def _probe(fn) -> tuple[float, float]:
    labels = np.arange(45) % 3
    noise = np.random.default_rng(0).normal(size=(45, 3))
    good = np.eye(3)[labels] * 3 + noise
    return (fn(good[:30], labels[:30], good[30:], labels[30:]), fn(noise[:30], labels[:30], noise[30:], labels[30:]))


def _likelihoods() -> dict[str, tuple[float, float]]:
    """A VAE whose decoder says each pixel is on with the data's frequency, against one that says the opposite."""
    x = (torch.rand(8, 1, 3, 3, generator=torch.Generator().manual_seed(1)) < 0.2).float()
    found = []
    for p in (0.2, 0.8):
        torch.manual_seed(0)
        model = build_model("vae", FAMILIES["vae"].config(hidden=[4], latent_dim=2), (1, 3, 3)).eval()
        last = [m for m in model.decoder.modules() if isinstance(m, torch.nn.Linear)][-1]
        with torch.no_grad():
            last.weight.zero_()
            last.bias.fill_(float(torch.logit(torch.tensor(p))))
        found.append(model.evaluate(x, options=EvalOptions(importance_samples=4)))
    return {k: (found[0][k], found[1][k]) for k in ("elbo", "log_likelihood_iw")}


def _error_rates() -> dict[str, tuple[float, float]]:
    """A classification head that always answers the true class, against one that always answers another."""
    x, labels = torch.rand(6, 1, 3, 3), torch.ones(6, dtype=torch.long)
    out: dict[str, list[float]] = {"test_accuracy": [], "test_error": []}
    for answer in (1, 0):
        for family, settings in (("classifier", {"arch": "mlp", "hidden": [4], "feature_dim": 2, "classes": 3}),
                                 ("sdae", {"layers": [4, 2], "finetune": "supervised", "classes": 3})):
            model = build_model(family, FAMILIES[family].config(**settings), (1, 3, 3)).eval()
            with torch.no_grad():
                model.head.weight.zero_()
                model.head.bias.copy_(torch.eye(3)[answer])
            out.update({k: [*out[k], v] for k, v in model.evaluate(x, labels).items()})
    return {k: (v[0], v[1]) for k, v in out.items()}


def _conditional() -> dict[str, tuple[float, float]]:
    """A conditional VAE whose decoder turns every pixel off for class 0 and on for class 1, on images of each with
    their labels against the same images with the labels swapped (Bayes' rule then answers the other class);
    samples a classifier assigns to the class asked for against samples assigned to another."""
    from genmodels.evaluation import class_consistency, intra_fid

    x = torch.cat([torch.zeros(3, 1, 3, 3), torch.ones(3, 1, 3, 3)])
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    model = build_model("vae", FAMILIES["vae"].config(hidden=[], latent_dim=2, conditional=True, classes=2),
                        (1, 3, 3)).eval()
    last = [m for m in model.decoder.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.weight[:, 2:] = torch.tensor([-6.0, 6.0])  # the one-hot label beside the 2 code dimensions
        last.bias.zero_()
    bayes = [model.evaluate(x, y, EvalOptions(importance_samples=2, bayes_samples=3))["bayes_accuracy"]
             for y in (labels, 1 - labels)]
    requested = torch.arange(12) % 4
    real_labels = torch.arange(40) % 2  # the features of each class's samples like its test images, or shifted
    fake_labels = torch.arange(40) % 2
    intra = [intra_fid(REAL, real_labels, fake, fake_labels) for fake in (LIKE, SHIFTED)]
    return {"intra_fid": (intra[0], intra[1]), "bayes_accuracy": (bayes[0], bayes[1]),
            "class_consistency": (class_consistency(requested, requested), class_consistency((requested + 1) % 4,
                                                                                             requested))}


def _by_construction() -> dict[str, tuple[float, float]]:
    """(better, worse) for every ranked metric."""
    good_m, bad_m = manifold.manifold_metrics(REAL, LIKE).as_dict(), manifold.manifold_metrics(REAL, SHIFTED).as_dict()
    uniform, one = torch.arange(40) % 4, torch.zeros(40, dtype=torch.long)
    entropy = [manifold.class_entropy(manifold.class_histogram(p, 4)) for p in (uniform, one)]
    images, noisy = IMAGES[:, :, :4, :4].reshape(12, -1), torch.rand(12, 16) * 3 + 2
    pz = [parzen.parzen_estimate(s.view(12, 1, 4, 4), IMAGES[:6, :, :4, :4], IMAGES[6:, :, :4, :4]).log_likelihood
          for s in (images, noisy)]
    return {
        "reconstruction_sse": (_sse(IMAGES + 0.01), _sse(IMAGES.flip(0))),
        "reconstruction_sharpness": (pixels.sharpness(IMAGES.flip(0), IMAGES), pixels.sharpness(BLURRED, IMAGES)),
        "sharpness": (pixels.sharpness(IMAGES.flip(0), IMAGES), pixels.sharpness(BLURRED, IMAGES)),
        "diversity": (pixels.diversity(IMAGES.flip(0), IMAGES), pixels.diversity(IMAGES[:1].expand(12, -1, -1, -1)
                                                                                 + 0.01 * BLURRED, IMAGES)),
        "linear_probe_accuracy": _probe(probes.linear_probe_accuracy),
        "knn_accuracy": _probe(probes.knn_accuracy),
        "parzen_log_likelihood": (pz[0], pz[1]),
        "fid": (distances.fid(REAL, LIKE), distances.fid(REAL, SHIFTED)),
        "kid": (distances.kid(REAL, LIKE, subsets=5, subset_size=20).kid,
                distances.kid(REAL, SHIFTED, subsets=5, subset_size=20).kid),
        **{k: (good_m[k], bad_m[k]) for k in ("precision", "recall", "density", "coverage")},
        "class_entropy": (entropy[0], entropy[1]),
        **_likelihoods(),
        **_error_rates(),
        **_conditional(),
        **_modes(),
    }


def _modes() -> dict[str, tuple[float, float]]:
    """Samples of ring8 itself against samples piled on 3 of its 8 modes and spread between them."""
    ring = TOYS["ring8"]
    good = ring.sample(400, 0).points
    bad = torch.cat([good[:200] * 0.5, ring.centre_points[:3].float().repeat(67, 1)[:200]])
    c, s = ring.centre_points, ring.std
    return {"modes_covered": (modes.modes_covered(good, c, s), modes.modes_covered(bad, c, s)),
            "high_quality_share": (modes.high_quality_share(good, c, s), modes.high_quality_share(bad, c, s)),
            "mean_log_density": (modes.mean_log_density(good, ring), modes.mean_log_density(bad, ring))}


def _overshoots() -> dict[str, float]:
    """For a metric best at an ideal value, a result past the ideal on the side the worse one is not, and farther
    from it than the better one: noisier than the data, more spread, crowding the data's dense region."""
    noisy = IMAGES + 0.5 * torch.randn(IMAGES.shape, generator=torch.Generator().manual_seed(2))
    crowded = REAL[REAL.norm(dim=1).argmin()] + 0.01 * LIKE  # every sample where the data are densest
    return {"reconstruction_sharpness": pixels.sharpness(noisy, IMAGES), "sharpness": pixels.sharpness(noisy, IMAGES),
            "diversity": pixels.diversity(noisy * 4, IMAGES), "density": manifold.density_coverage(REAL, crowded)[0]}


# Metrics best at an ideal that is also the end of their range: no result lies past it.
IDEAL_AT_THE_BOUND = {"coverage": "a fraction of the test images: at most 1, its ideal"}


@pytest.fixture(scope="module")
def constructed():
    return _by_construction()


def test_every_metric_best_at_an_ideal_is_checked_from_both_sides(constructed):
    over = _overshoots()
    ideal = {k for k, m in METRICS.items() if m.competes and m.better == "ideal"}
    assert set(over) | set(IDEAL_AT_THE_BOUND) == ideal, ideal ^ (set(over) | set(IDEAL_AT_THE_BOUND))
    for key, value in over.items():
        good, bad = constructed[key]
        m = METRICS[key]
        assert (value - m.ideal) * (bad - m.ideal) < 0 and abs(value - m.ideal) > abs(good - m.ideal), key
        for order in ((value, good), (good, value)):
            runs = [RunSummary(name, metrics={key: v}) for name, v in zip(("first", "second"), order)]
            assert _marks(metric_table(runs), key) == [v == good for v in order], (key, order)


def test_every_key_these_metrics_write_has_a_glossary_entry_with_its_meaning():
    """The keys of the results built here (the full list, from trained runs of every family, is
    test_metric_catalog.py's); the page's glossary holds each with its declared meaning."""
    keys = {*manifold.manifold_metrics(REAL, LIKE).as_dict(), "kid", "kid_std", "fid",
            *parzen.parzen_estimate(IMAGES[:4], IMAGES[4:8], IMAGES[8:]).as_dict(), *_likelihoods(), *_error_rates(),
            "log_likelihood_iw_stderr", "importance_samples"}
    page = render([RunSummary("a", metrics=dict.fromkeys(keys, 0.5))])
    for key in keys:
        entry = re.search(rf'<dt id="g-{key}">{key}</dt><dd>(.*?)</dd>', page)
        assert entry and html.unescape(METRICS[key].meaning.split("`")[0][:30]) in html.unescape(entry[1]), key


def test_every_ranked_metric_has_a_construction(constructed):
    ranked = {k for k, m in METRICS.items() if m.competes}
    assert set(constructed) == ranked, ("a ranked metric needs a better and a worse result built here",
                                        ranked ^ set(constructed))
    for key, (good, bad) in constructed.items():
        assert good != bad, key  # the constructions tell the two apart


def _marks(table: str, key: str) -> list[bool]:
    """For the metric table's row of `key`: whether each run's cell is marked best."""
    row = re.search(rf'<tr[^>]*><th><a href="#g-{key}".*?</tr>', table)[0]
    return [cell.startswith("<td class=best") for cell in re.findall(r"<td[^>]*>", row)]


@pytest.mark.parametrize("key", sorted(k for k, m in METRICS.items() if m.competes))
def test_the_better_result_is_marked_best_and_the_glossary_says_which_way(constructed, key):
    good, bad = constructed[key]
    for order in ((good, bad), (bad, good)):
        runs = [RunSummary(name, metrics={key: v}) for name, v in zip(("first", "second"), order)]
        assert _marks(metric_table(runs), key) == [v == good for v in order], (key, order)
        if METRICS[key].column and not METRICS[key].stands_in:
            rows = headline_table(runs).split("</thead>")[1].split("</tr>")[:2]  # one row per run
            assert ["class=best" in row for row in rows] == [v == good for v in order], (key, order)
    entry = re.search(rf'<dt id="g-{key}">{key}</dt><dd>(.*?)</dd>', render(runs))[1]
    m = METRICS[key]
    if m.better == "ideal":  # the better value is the nearer to the ideal, and the entry names it
        assert abs(good - m.ideal) < abs(bad - m.ideal) and f"Closest to {m.ideal:g} is best" in entry
    else:
        way = "Higher" if good > bad else "Lower"
        assert f"{way} is better" in entry, (key, entry)


# -- precision, recall, density and coverage with sets of one size ----------------------------------------------
def _brute(real: torch.Tensor, fake: torch.Tensor, k_pr: int = 3, k_dc: int = 5,
           radii_of=lambda real, fake: (real, fake)) -> dict[str, float]:
    """The four from full distance matrices; radii_of picks which set's k-NN radii each side's balls take."""
    def kth(x, k):
        return torch.cdist(x, x).sort(1).values[:, k]

    dist = torch.cdist(fake, real)  # (fake, real)
    around_real, around_fake = radii_of(real, fake)
    precision = (dist <= kth(around_real, k_pr)[None]).any(1).float().mean()
    recall = (dist.T <= kth(around_fake, k_pr)[None]).any(1).float().mean()
    inside = dist <= kth(around_real, k_dc)[None]
    return {"precision": float(precision), "recall": float(recall),
            "density": float(inside.sum()) / (k_dc * len(fake)), "coverage": float(inside.any(0).float().mean())}


def test_manifold_metrics_with_equal_sized_sets_take_each_sides_radii_from_its_own_set():
    g = torch.Generator().manual_seed(4)
    real, fake = torch.randn(30, 3, generator=g), torch.randn(30, 3, generator=g) * 0.7 + 0.5
    got = manifold.manifold_metrics(real, fake).as_dict()
    want = _brute(real, fake)
    assert got == pytest.approx(want, abs=1e-12)
    swapped = _brute(real, fake, radii_of=lambda r, f: (f, r))  # each side's balls with the other set's radii
    roles = _brute(fake, real)  # real and fake exchanged
    for key in want:  # the data tell every mistake apart, so each one fails the assertion above
        assert swapped[key] != want[key] and roles[key] != want[key], key
    assert got["precision"] != got["recall"]
