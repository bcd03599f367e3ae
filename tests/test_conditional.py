"""The conditional VAE and GAN (issue 30, `model.conditional`): they train on labelled data and learn, take the
data's classes and class counts into config.json, resume exactly, refuse data without labels or with a label
outside their classes before the run directory is touched, sample the class asked for, and leave unconditional
runs as they were. The label's place in each loss and its gradient: tests/test_loss_terms*.py."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from conftest import TINY, cli, one_sentence, tiny_vae_config
from genmodels import build_run_config, runs
from genmodels.config import TrainConfig
from genmodels.data import Dataset, DataSplits
from genmodels.engine import resume_run, train
from genmodels.errors import DataError, GenmodelsError
from genmodels.images import grid_array
from genmodels.models import FAMILIES, build_model
from genmodels.models.base import EvalOptions
from genmodels.optim import StepContext

NETS = {
    ("vae", "mlp"): {"arch": "mlp", "hidden": [32], "latent_dim": 4},
    ("vae", "conv"): {"arch": "conv", "channels": [8, 16], "latent_dim": 4},
    ("gan", "mlp"): {"arch": "mlp", "hidden": [32], "latent_dim": 4, "ema": 0.0},
    ("gan", "conv"): {"arch": "conv", "channels": [8, 16], "latent_dim": 4, "ema": 0.0},
}


def conditional(family: str, arch: str, classes: int = 10) -> torch.nn.Module:
    torch.manual_seed(0)
    settings = {**NETS[family, arch], "conditional": True, "classes": classes}
    return build_model(family, FAMILIES[family].config.model_validate(settings), (1, 8, 8)).train()


@pytest.mark.parametrize("family, arch", list(NETS))
def test_each_conditional_family_learns_on_labelled_digits(digits, family, arch):
    """A few Adam steps on labelled digits: the VAE's negative ELBO falls, the GAN's discriminator loss falls."""
    model = conditional(family, arch)
    assert model.needs_labels
    optimizers = model.make_optimizers(TrainConfig(lr=3e-3), torch.device("cpu"))
    ctx = StepContext(model, optimizers, None)
    key = "loss" if family == "vae" else "d_loss"
    torch.manual_seed(1)
    seen = [float(model.train_step(digits.train.take(slice(0, 128), labels=True), ctx)[key]) for _ in range(30)]
    assert sum(seen[-5:]) < 0.9 * sum(seen[:5]), seen


def test_a_conditional_run_records_the_datas_classes_and_counts_and_resumes_exactly(digits, tmp_path):
    config = tiny_vae_config(model={"conditional": True}, train={"epochs": 2})
    full = train(config, tmp_path / "full", progress=False, data=digits)
    saved = json.loads((tmp_path / "full" / "config.json").read_text())["model"]
    counts = torch.bincount(digits.train.labels, minlength=10).tolist()
    assert (saved["conditional"], saved["classes"], saved["class_counts"]) == (True, 10, counts)
    train(tiny_vae_config(model={"conditional": True}, train={"epochs": 1}), tmp_path / "half", progress=False,
          data=digits)
    resumed = resume_run(tmp_path / "half", 2, progress=False, data=digits)
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name


def unlabelled(digits) -> DataSplits:
    return DataSplits(Dataset(digits.train.images, None, "plain/train"),
                      Dataset(digits.test.images, None, "plain/test"), "plain")


@pytest.mark.parametrize("family", ["vae", "gan"])
def test_data_without_labels_is_refused_before_the_run_directory_is_touched(digits, tmp_path, family):
    config = build_run_config({"family": family, "model": {"conditional": True}, "data": {"source": "digits"}})
    with pytest.raises(DataError, match="needs labels, and plain has none.*drop --conditional"):
        train(config, tmp_path / "run", progress=False, data=unlabelled(digits))
    assert not (tmp_path / "run").exists()


def test_a_label_outside_the_classes_is_refused_before_the_run_directory_is_touched(digits, tmp_path):
    config = tiny_vae_config(model={"conditional": True, "classes": 3})
    with pytest.raises(DataError, match="has label 9 but the model has 3 classes; give --classes 10"):
        train(config, tmp_path / "run", progress=False, data=digits)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("family", ["vae", "gan"])
def test_sample_takes_labels_and_refuses_them_where_they_cannot_go(family):
    model = conditional(family, "mlp", classes=3).eval()
    with torch.no_grad():
        a = model.sample(4, torch.Generator().manual_seed(0), labels=torch.tensor([0, 0, 0, 0]))
        b = model.sample(4, torch.Generator().manual_seed(0), labels=torch.tensor([2, 2, 2, 2]))
        assert a.shape == (4, 1, 8, 8) and not torch.equal(a, b)  # the same codes, another class: other images
        with pytest.raises(GenmodelsError, match="Label 3 is outside this model's classes 0..2"):
            model.sample(2, labels=torch.tensor([1, 3]))
        plain = build_model(family, FAMILIES[family].config.model_validate(NETS[family, "mlp"]), (1, 8, 8))
        with pytest.raises(GenmodelsError, match="is not conditional, so it takes no labels"):
            plain.sample(2, labels=torch.tensor([0, 1]))


def test_samples_without_labels_draw_classes_in_the_training_proportions():
    model = conditional("vae", "mlp", classes=3)
    model.config = model.config.model_copy(update={"class_counts": [0, 1, 3]})
    drawn = model.draw_labels(4000, torch.Generator().manual_seed(0))
    share = torch.bincount(drawn, minlength=3).float() / 4000
    assert share[0] == 0 and abs(share[2] - 0.75) < 0.03


def test_the_label_changes_the_conditional_loss(digits):
    """The label reaches the loss (its closed form and gradient: tests/test_loss_terms.py)."""
    model = conditional("vae", "mlp")
    b = digits.train.take(slice(0, 32), labels=True)
    losses = []
    for labels in (b.labels, (b.labels + 1) % 10):
        torch.manual_seed(0)
        losses.append(model(b.x, labels).loss.item())
    assert losses[0] != losses[1]


# -- sampling a class (stage 2) -------------------------------------------------------------------------------------
NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@pytest.fixture(scope="module")
def cvae_run(tmp_path_factory, digits):
    out = tmp_path_factory.mktemp("cvae") / "run"
    train(tiny_vae_config(model={"conditional": True}, train={"epochs": 1}), out, progress=False, data=digits)
    named = DataSplits(digits.train, digits.test, digits.source, classes=NAMES)
    return runs.load_run(out, data=named)


def test_sample_a_class_by_index_or_name_into_an_array(cvae_run, tmp_path):
    seven = np.load(runs.sample(cvae_run, 6, tmp_path / "seven.npy", seed=3, klass="7"))
    by_name = np.load(runs.sample(cvae_run, 6, tmp_path / "Seven.npy", seed=3, klass="Seven"))
    three = np.load(runs.sample(cvae_run, 6, tmp_path / "three.npy", seed=3, klass="3"))
    want = runs.draw_samples(cvae_run, 6, 3, labels=torch.full((6,), 7))
    assert np.array_equal(seven, by_name) and not np.array_equal(seven, three)
    assert np.array_equal(seven, (want * 255).round().clamp(0, 255).to(torch.uint8).numpy())


def test_unknown_classes_are_refused_with_the_nearest_name(cvae_run, tmp_path):
    with pytest.raises(GenmodelsError, match="no class 'sevn'.*did you mean 'seven'"):
        runs.sample(cvae_run, 4, tmp_path / "s.png", klass="sevn")
    with pytest.raises(GenmodelsError, match="Class 10 is outside this run's classes 0..9"):
        runs.sample(cvae_run, 4, tmp_path / "s.png", klass="10")
    assert not (tmp_path / "s.png").exists()


def test_class_all_draws_one_labelled_row_per_class(cvae_run, tmp_path):
    picture = np.asarray(Image.open(runs.sample(cvae_run, 20, tmp_path / "all.png", klass="all")).convert("L"))
    plain = np.asarray(Image.open(runs.sample(cvae_run, 20, tmp_path / "plain.png")).convert("L"))
    cells = grid_array(torch.zeros(20, 1, 8, 8), nrow=2)  # ten rows of two: the grid beside the names
    assert picture.shape[0] == cells.shape[0] and picture.shape[1] > cells.shape[1] and plain.shape != picture.shape
    margin, row = picture[:, : picture.shape[1] - cells.shape[1]], cells.shape[0] / 10
    for k in range(10):  # each row's name is written in the margin beside it
        assert (margin[int(k * row) : int((k + 1) * row)] < 128).any(), k


def test_reconstruct_interpolate_and_encode_keep_each_images_label(cvae_run, tmp_path):
    model, x = cvae_run.model, cvae_run.data.test.batch(slice(0, 4))
    y = cvae_run.data.test.labels[:4]
    with torch.no_grad():
        assert not torch.equal(model.reconstruct(x, y), model.reconstruct(x, (y + 1) % 10))
    assert runs.reconstruct(cvae_run, tmp_path / "r.png", n=4).exists()
    assert runs.interpolate(cvae_run, tmp_path / "i.png", pairs=2, steps=3).exists()
    codes = runs.encode_split(cvae_run, cvae_run.data.test)
    with torch.no_grad():
        assert torch.allclose(codes[:4], model.encode(x, y), atol=1e-6)


def test_a_run_that_is_not_conditional_refuses_class(digits, tmp_path):
    train(tiny_vae_config(train={"epochs": 1}), tmp_path / "plain", progress=False, data=digits)
    with pytest.raises(GenmodelsError, match="is not conditional, so it cannot sample a class"):
        runs.sample(runs.load_run(tmp_path / "plain", data=digits), 4, tmp_path / "s.png", klass="3")


@pytest.mark.slow
def test_the_command_line_samples_a_class(cvae_run, tmp_path):
    out = tmp_path / "s.npy"
    done = subprocess.run([sys.executable, "-m", "genmodels", "sample", str(cvae_run.dir.path), "-n", "5",
                           "--class", "4", "--seed", "2", "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert np.array_equal(np.load(out), np.load(runs.sample(cvae_run, 5, tmp_path / "p.npy", seed=2, klass="4")))
    bad = subprocess.run([sys.executable, "-m", "genmodels", "sample", str(cvae_run.dir.path), "--class", "x9"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no class 'x9'" in bad.stderr


# -- evaluation (stage 3) -------------------------------------------------------------------------------------------
def direct_log_p_x_given_y(m, x: torch.Tensor, y: int, eps: torch.Tensor) -> torch.Tensor:
    """log (1/K) sum_k p(x|z_k,y) p(z_k) / q(z_k|x,y), written out for a Bernoulli CVAE: (B,)."""
    k, b = eps.shape[:2]
    onehot = F.one_hot(torch.full((b,), y), m.classes).float()
    h = torch.cat([m.encoder(x), onehot], 1)
    mu, logvar = m.mu_head(h), m.logvar_head(h)
    z = mu + (0.5 * logvar).exp() * eps  # (K, B, D)
    logits = m.decoder(torch.cat([z, onehot.expand(k, -1, -1)], 2).reshape(k * b, -1)).reshape(k, b, -1)
    log_px = -F.binary_cross_entropy_with_logits(logits, x.flatten(1).expand(k, -1, -1), reduction="none").sum(2)
    normal = torch.distributions.Normal
    log_w = log_px + normal(0.0, 1.0).log_prob(z).sum(2) - normal(mu, (0.5 * logvar).exp()).log_prob(z).sum(2)
    return torch.logsumexp(log_w, 0) - math.log(k)


def test_bayes_accuracy_is_argmax_of_log_p_x_given_y_plus_log_p_y_computed_directly():
    torch.manual_seed(0)
    config = FAMILIES["vae"].config(hidden=[5], latent_dim=2, conditional=True, classes=3, class_counts=[1, 2, 5])
    model = build_model("vae", config, (1, 3, 3)).eval()
    x, labels = torch.rand(7, 1, 3, 3), torch.tensor([0, 1, 2, 0, 1, 2, 2])
    torch.manual_seed(4)
    found = model.evaluate(x, labels, EvalOptions(importance_samples=3, bayes_samples=4))
    torch.manual_seed(4)  # the same draws in the same order: the ELBO's, the bound's, then K per class in class order
    torch.randn(7, 2), torch.randn(3, 7, 2)
    with torch.no_grad():
        scores = torch.stack([direct_log_p_x_given_y(model, x, y, torch.randn(4, 7, 2)) for y in range(3)], 1)
    scores = scores + torch.log(torch.tensor([1, 2, 5]) / 8)
    guess = scores.argmax(1)
    assert found["bayes_accuracy"] == pytest.approx((guess == labels).float().mean().item())
    assert found["bayes_samples"] == 4 and sum(map(sum, found["bayes_confusion"])) == 7
    assert found["bayes_confusion"] == [[int(((labels == t) & (guess == g)).sum()) for g in range(3)] for t in range(3)]
    torch.manual_seed(5)
    with torch.no_grad():
        got = model.class_scores(x, 4)
    torch.manual_seed(5)
    with torch.no_grad():
        want = torch.stack([direct_log_p_x_given_y(model, x, y, torch.randn(4, 7, 2)) for y in range(3)], 1)
    assert torch.allclose(got, want + torch.log(torch.tensor([1, 2, 5]) / 8), atol=1e-5)


def test_class_consistency_is_the_feature_networks_accuracy_on_samples_of_requested_classes(digits, tmp_path):
    from genmodels.evaluation import PIXEL_IMAGES, evaluate, requested_classes
    from genmodels.features import FeatureNetwork
    from genmodels.metrics import fid

    config = build_run_config({"family": "gan", "model": {**NETS["gan", "mlp"], "conditional": True},
                               "train": {"epochs": 1, "batch_size": 128}})
    train(config, tmp_path / "cgan", progress=False, data=digits)
    run = runs.load_run(tmp_path / "cgan", data=digits)
    torch.manual_seed(0)
    net = build_model("classifier", FAMILIES["classifier"].config(hidden=[8], feature_dim=8, classes=10), (1, 8, 8))
    features = FeatureNetwork(net.eval(), tmp_path / "features", accuracy=0.0, fingerprint="untrained")
    found = evaluate(run, probe_train=0, parzen_samples=0, quality_samples=150, features=features, seed=2)
    requested = requested_classes(run, max(150, PIXEL_IMAGES), 2)
    assert torch.bincount(requested, minlength=10).min() > 0  # every class asked for
    drawn = runs.draw_samples(run, len(requested), 2, labels=requested)[:150]
    want = (features.predict(drawn).cpu() == requested[:150]).float().mean().item()
    real = (features.predict(digits.test.batch(slice(0, len(digits.test)))).cpu() == digits.test.labels)
    real = real.float().mean().item()
    assert found["class_consistency"] == pytest.approx(want)
    assert found["class_consistency_real"] == pytest.approx(real)
    real_features = features.features(digits.test.batch(slice(0, len(digits.test))))
    fake_features = features.features(drawn)
    per_class = [fid(real_features[digits.test.labels == c], fake_features[requested[:150] == c]) for c in range(10)]
    assert found["intra_fid"] == pytest.approx(sum(per_class) / 10, rel=1e-5)


def test_the_latent_plot_of_a_two_dimensional_conditional_code_decodes_its_commonest_class(cvae_run, tmp_path):
    """The decoded manifold of a conditional VAE with a 2-D code needs a class: its commonest training class."""
    assert cvae_run.model.latent_dim == 2
    assert runs.latent(cvae_run, tmp_path / "latent.png", grid=3).exists()


def test_evaluate_bayes_samples_reaches_bayes_accuracy_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "cvae"
    assert cli("train", "vae", "--conditional", "--data", "digits", "--epochs", 1, *TINY, "--out", out,
               "--no-progress") == 0
    fast = ["--importance-samples", 2, "--probe-train", 0, "--parzen-samples", 0, "--quality-samples", 0,
            "--no-progress"]
    assert cli("evaluate", out, *fast, "--bayes-samples", 0) == 0
    assert "bayes_accuracy" not in json.loads((out / "eval.json").read_text())
    assert cli("evaluate", out, *fast, "--bayes-samples", 3) == 0
    assert json.loads((out / "eval.json").read_text())["bayes_samples"] == 3
    capsys.readouterr()
    assert cli("evaluate", out, *fast, "--bayes-samples", -1) == 2
    one_sentence(capsys, "--bayes-samples must be between 0")
