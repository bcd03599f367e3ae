"""Sample-quality metrics against closed forms and hand-worked examples; the feature network."""

import json
import math
import warnings

import pytest
import torch

from conftest import tiny_vae_config
from genmodels import CheckpointError, train
from genmodels.cli import main
from genmodels.data import Dataset, DataSplits
from genmodels.features import load_features, train_features
from genmodels.metrics import (
    class_entropy,
    class_histogram,
    density_coverage,
    feature_moments,
    fid,
    frechet_distance,
    kid,
    knn_radii,
    precision_recall,
)


def _gaussian(n: int, mu: torch.Tensor, cov: torch.Tensor, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return mu + torch.randn(n, len(mu), generator=g, dtype=torch.float64) @ torch.linalg.cholesky(cov).T


def test_fid_of_a_set_with_itself_is_zero():
    x = torch.randn(500, 16, generator=torch.Generator().manual_seed(0))
    assert fid(x, x) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_matches_the_closed_form():
    # Commuting covariances: Tr((S1 S2)^{1/2}) = sum sqrt(a_i b_i) for diagonal S1 = diag(a), S2 = diag(b).
    a, b = torch.tensor([1.0, 4.0, 0.25]), torch.tensor([9.0, 1.0, 0.25])
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    expected = 1 + 4 + (a + b).sum() - 2 * (a * b).sqrt().sum()  # 5 + 14.5 - 2 * 5.25
    assert frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b)) == pytest.approx(float(expected), abs=1e-9)
    # Non-commuting covariances: rotate S2 and compare with the eigenvalues of S1 S2 directly.
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    s1, s2 = torch.diag(a).double(), q @ torch.diag(b).double() @ q.T
    root_trace = torch.linalg.eigvals(s1 @ s2).real.clamp_min(0).sqrt().sum()
    closed = (mu1 - mu2).pow(2).sum() + torch.trace(s1 + s2) - 2 * root_trace
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(float(closed), abs=1e-9)
    # From large samples, the FID of two Gaussians approaches that value.
    x, y = _gaussian(100_000, mu1.double(), s1, 2), _gaussian(100_000, mu2.double(), s2, 3)
    assert fid(x, y) == pytest.approx(float(closed), rel=0.02)
    m, s = feature_moments(x)
    assert torch.allclose(m, mu1.double(), atol=0.02) and torch.allclose(s, s1, atol=0.05)


def test_kid_is_unbiased_and_separates_distributions():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(400, 8, generator=g), torch.randn(400, 8, generator=g)
    same = kid(x, y, subsets=200, subset_size=100)
    # Many estimates on one distribution: mean ~0 within a few standard errors (it can go negative).
    assert abs(same.kid) < 4 * same.std / math.sqrt(same.subsets) + 1e-4, same
    shifted = kid(x, y + 0.5, subsets=50, subset_size=100)
    assert shifted.kid > 10 * shifted.std / math.sqrt(50) and shifted.kid > same.kid + 0.05, shifted


def test_kid_equals_the_formula_on_one_subset():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(5, 3, generator=g, dtype=torch.float64), torch.randn(5, 3, generator=g, dtype=torch.float64)
    k = lambda a, b: (a @ b.T / 3 + 1) ** 3  # noqa: E731
    off = lambda m: m.sum() - m.diagonal().sum()  # noqa: E731
    expected = off(k(x, x)) / 20 + off(k(y, y)) / 20 - 2 * k(x, y).mean()
    assert kid(x, y, subsets=1, subset_size=5).kid == pytest.approx(float(expected), abs=1e-12)


def test_precision_recall_density_coverage_by_hand():
    # Reals on a line at 0, 1, 2, 4. k = 1 radii: 1, 1, 1, 2.
    real = torch.tensor([[0.0, 0], [1, 0], [2, 0], [4, 0]])
    assert torch.allclose(knn_radii(real, 1), torch.tensor([1.0, 1, 1, 2]))
    # Fakes: (0.5, 0) lies in the balls of 0 and 1; (4, 1.5) in the ball of 4 only; (10, 0) in none.
    fake = torch.tensor([[0.5, 0.0], [4, 1.5], [10, 0]])
    # Fake k = 1 radii: d(a, b) = sqrt(3.5^2 + 1.5^2) = 3.808, d(b, c) = sqrt(36 + 2.25) = 6.185, d(a, c) = 9.5:
    # radii 3.808, 3.808, 6.185. Real 0: 0.5 from a -> in. Real 1: 0.5 -> in. Real 2: 1.5 -> in.
    # Real 4: 1.5 from b -> in. So recall = 1; precision = 2/3 (c is in no real ball).
    p, r = precision_recall(real, fake, k=1)
    assert p == pytest.approx(2 / 3) and r == pytest.approx(1.0)
    # density: ball memberships 2 + 1 + 0 = 3, over k M = 1 * 3: 1.0. coverage: balls of 0, 1, 4 hold a fake;
    # the ball of 2 (radius 1) does not (nearest fake 1.5 away): 3/4.
    d, c = density_coverage(real, fake, k=1)
    assert d == pytest.approx(1.0) and c == pytest.approx(0.75)
    # k = 2 radii of the reals: 2, 1, 2, 3. Memberships: a in the balls of 0, 1, 2 (3.5 from 4 > 3): 3;
    # b in the ball of 4 only (2.5 from 2 > 2): 1; c in none. density = 4 / (2 * 3); coverage: 0, 1, 2 hold a,
    # 4 holds b: 1.
    d, c = density_coverage(real, fake, k=2)
    assert d == pytest.approx(4 / 6) and c == pytest.approx(1.0)


def test_manifold_metrics_match_full_distance_matrices(monkeypatch):
    # The library works on squared distances in blocks of rows, from one addmm each; the reference here is
    # the whole float64 distance matrix from torch.cdist, each metric written straight from its paper.
    from genmodels.metrics import manifold

    monkeypatch.setattr(manifold, "_CHUNK", 64)  # several blocks, and a short last one
    gen = torch.Generator().manual_seed(0)
    real, fake = torch.randn(300, 8, generator=gen), 1.3 * torch.randn(250, 8, generator=gen) + 0.2
    r64, f64 = real.double(), fake.double()
    radius = lambda x, k: torch.cdist(x, x).sort(1).values[:, k]  # noqa: E731 -- column 0 is the point itself
    assert torch.allclose(knn_radii(real, 3).double(), radius(r64, 3), atol=1e-5)
    held_by_real = torch.cdist(f64, r64) <= radius(r64, 3)[None]  # (fake, real): fake in a real ball
    held_by_fake = torch.cdist(r64, f64) <= radius(f64, 3)[None]
    p, r = precision_recall(real, fake, k=3)
    assert p == pytest.approx(held_by_real.any(1).double().mean().item())
    assert r == pytest.approx(held_by_fake.any(1).double().mean().item())
    balls = torch.cdist(f64, r64) <= radius(r64, 5)[None]
    d, c = density_coverage(real, fake, k=5)
    assert d == pytest.approx(balls.sum().item() / (5 * 250))
    assert c == pytest.approx(balls.any(0).double().mean().item())


def test_class_histogram_and_entropy():
    hist = class_histogram(torch.arange(10).repeat(3), 10)
    assert torch.allclose(hist, torch.full((10,), 0.1, dtype=torch.float64))
    assert class_entropy(hist) == pytest.approx(math.log(10))
    collapsed = class_histogram(torch.full((50,), 3), 10)
    assert collapsed[3] == 1 and class_entropy(collapsed) == pytest.approx(0.0)


@pytest.fixture(scope="module")
def digit_features(digits, tmp_path_factory):
    """A feature network trained on digits, once for the module (about 2 s on one thread)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    net = train_features(digits, tmp_path_factory.mktemp("feat") / "net", epochs=8, progress=False,
                         train={"batch_size": 64, "lr": 3e-3})
    torch.set_num_threads(before)
    return net


def test_feature_network_features_do_not_depend_on_the_layout(tmp_path):
    # On the CPU FeatureNetwork runs its convolutions channels-last, for speed; the features must be
    # those of the plain NCHW network, up to float32 rounding.
    import copy

    from genmodels.features import FeatureNetwork
    from genmodels.models import build_model, build_run_config

    cfg = build_run_config({"family": "classifier", "model": {"arch": "conv", "channels": [4, 8], "feature_dim": 16,
                                                              "classes": 10}})
    torch.manual_seed(0)
    model = build_model("classifier", cfg.model, (1, 16, 16)).eval()
    x = torch.rand(50, 1, 16, 16)
    with torch.inference_mode():
        ref = copy.deepcopy(model).body(x)
    net = FeatureNetwork(model, tmp_path, 0.0, "none", batch_size=20)
    assert model.body[0][3].weight.is_contiguous(memory_format=torch.channels_last)  # 4 -> 8 channels
    assert torch.allclose(net.features(x), ref, atol=1e-5)


def test_feature_network_trains_and_refuses_other_data(digits, digit_features, tmp_path):
    net = digit_features
    assert net.accuracy > 0.8, net.accuracy
    meta = json.loads((net.dir / "features.json").read_text())
    assert meta["source"] == "digits" and meta["feature_dim"] == 128 and meta["test_accuracy"] == net.accuracy
    x = digits.test.batch(slice(0, 20))
    assert net.features(x).shape == (20, 128) and net.predict(x).shape == (20,)
    loaded = load_features(net.dir, digits)
    assert torch.allclose(loaded.features(x), net.features(x)) and "test acc" in loaded.name
    other = DataSplits(digits.train, Dataset(digits.test.images[:-1], digits.test.labels[:-1], "t"), "digits")
    with pytest.raises(CheckpointError, match=r"trained on another dataset.*genmodels features train --data digits"):
        load_features(net.dir, other)
    with pytest.raises(CheckpointError, match="holds no feature network"):
        load_features(tmp_path / "nothing", digits)


def test_evaluate_reports_sample_quality(digits, digit_features, tmp_path, monkeypatch, capsys):
    train(tiny_vae_config(), tmp_path / "vae", progress=False, data=digits)
    monkeypatch.chdir(tmp_path)  # no runs/features/digits here: the metrics are skipped, with a hint
    assert main(["evaluate", "vae", "--quality-samples", "300", "--parzen-samples", "0", "--probe-train", "0",
                 "--importance-samples", "2"]) == 0
    out = capsys.readouterr().out
    assert "genmodels features train --data digits" in out
    assert "fid" not in json.loads((tmp_path / "vae" / "eval.json").read_text())
    assert main(["evaluate", "vae", "--quality-samples", "300", "--parzen-samples", "0", "--probe-train", "0",
                 "--importance-samples", "2", "--features", str(digit_features.dir)]) == 0
    out = capsys.readouterr().out
    results = json.loads((tmp_path / "vae" / "eval.json").read_text())
    for key in ("fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "class_entropy"):
        assert math.isfinite(results[key]), key
    assert len(results["class_histogram"]) == 10 and sum(results["class_histogram"]) == pytest.approx(1, abs=1e-3)
    assert results["features"] == digit_features.name and 0 <= results["class_entropy"] <= math.log(10) + 1e-9
    assert "class_histogram" in out and "[" not in out.split("class_histogram")[1].splitlines()[0]
    # A directory without a feature network is refused in one sentence.
    assert main(["evaluate", "vae", "--quality-samples", "300", "--features", "vae"]) == 2
    assert "holds no feature network" in capsys.readouterr().err


def test_features_train_command(tmp_path, capsys):
    out = tmp_path / "feat"
    assert main(["features", "train", "--data", "digits", "--out", str(out), "--epochs", "1", "--hidden", "32",
                 "--feature-dim", "16", "--no-progress"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    meta = json.loads((out / "features.json").read_text())
    assert meta["feature_dim"] == 16 and meta["epochs"] == 1 and meta["arch"] == "mlp"


def test_a_classifier_without_its_number_of_classes_says_how_to_set_it():
    from genmodels import ConfigError
    from genmodels.models import build_model, build_run_config

    cfg = build_run_config({"family": "classifier"})  # classes: none, the data's (features train sets them)
    with pytest.raises(ConfigError, match="give --classes N"):
        build_model("classifier", cfg.model, (1, 8, 8))


def test_the_default_gan_learns_the_digits_and_a_stuck_one_is_called_collapsed(digits, digit_features, tmp_path):
    from genmodels import build_run_config, load_run
    from genmodels.evaluation import evaluate

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        options = {"features": digit_features, "parzen_samples": 0, "probe_train": 0, "quality_samples": 2000}
        # Every setting a default (an MLP D with spectral normalisation, two time-scales, the moving average).
        learned = build_run_config({"family": "gan", "train": {"epochs": 60}})
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # no false alarm while the generator warms up
            train(learned, tmp_path / "gan", progress=False, data=digits)
        r = evaluate(load_run(tmp_path / "gan"), **options)
        assert not r["collapsed"] and r["class_entropy"] > 2.0 and r["diversity"] > 0.7, r
        # A generator that cannot move (lr 1e-9) keeps drawing one image: the log and eval.json say so.
        stuck = build_run_config({"family": "gan", "train": {"epochs": 4, "lr": 1e-9}})
        said = r"After epoch 4 the gan's samples look alike: their diversity ended at 0\.\d\d"
        with pytest.warns(RuntimeWarning, match=said):
            train(stuck, tmp_path / "stuck", progress=False, data=digits)
        last = [json.loads(line) for line in (tmp_path / "stuck" / "metrics.jsonl").read_text().splitlines()][-1]
        assert last["split"] == "test" and last["diversity"] < 0.3
        r = evaluate(load_run(tmp_path / "stuck"), **options)
        assert r["collapsed"] and r["diversity"] < 0.3
        assert json.loads((tmp_path / "stuck" / "eval.json").read_text())["collapsed"]
    finally:
        torch.set_num_threads(before)
