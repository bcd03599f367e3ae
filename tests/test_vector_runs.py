"""Runs on vector data (issue 29): every family that takes vectors trains on ring8, a (N, 8) .npy and a CSV and its
loss falls; resume continues exactly; sample, reconstruct, interpolate, encode and evaluate work, with outputs in
the data's own units (the standardiser config.json records, undone); families and settings that cannot take
vectors are refused before the run directory is touched; `sample --out FILE.npy` writes numbers for vector and
image runs alike. The data themselves are tests/test_vectors.py's."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import cli, one_sentence, tiny_vae_config
from genmodels import build_run_config, load_data, load_run, train
from genmodels.errors import ConfigError
from genmodels.evaluation import evaluate
from genmodels.report.catalog import METRICS
from genmodels.runlog import read_history
from genmodels.runs import reconstruct, sample

# Tiny settings per family, each small enough to train on a few hundred vectors in about a second.
FAMILIES = {
    "vae": {"hidden": [32], "latent_dim": 2},
    "ae": {"hidden": [32], "latent_dim": 2},
    "sdae": {"layers": [32, 2], "pretrain_epochs": 1, "corrupt": ["gauss:0.1"]},
    "pca": {"latent_dim": 2},
    "gan": {"hidden": [32, 32], "latent_dim": 4},
}
# The logged part that must fall from the first logged interval to the last, per family (PCA: solved in one pass).
FALLS = {"vae": "loss", "ae": "loss", "sdae": "rec", "gan": "d_loss"}  # sdae: fine-tuning alone


def shifted(n: int = 400, d: int = 8, seed: int = 0) -> np.ndarray:
    """Vectors on a 2-D plane in 8-D, far from standard units (column j: mean 100 + 10 j, std about 5 (j + 1))."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    mix = rng.normal(size=(2, d)) * (np.arange(d) + 1) * 3
    return (z @ mix + 100 + 10 * np.arange(d) + 0.3 * rng.normal(size=(n, d))).astype(np.float32)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """--data values: ring8 (600 points), a (400, 8) .npy and a CSV of the same vectors."""
    root = tmp_path_factory.mktemp("sources")
    a = shifted()
    np.save(root / "v.npy", a)
    (root / "v.csv").write_text("\n".join([",".join(f"c{j}" for j in range(8))]
                                          + [",".join(f"{v:.6f}" for v in row) for row in a]))
    return {"ring8": "ring8", "npy": str(root / "v.npy"), "csv": str(root / "v.csv")}


def config(family: str, source: str, epochs: int = 3, **train_over):
    data = {"source": source, "toy_size": 600} if source == "ring8" else {"source": source}
    values = {"family": family, "model": FAMILIES[family], "data": data,
              "train": {"epochs": epochs, "batch_size": 50, "lr": 3e-3, "log_every": 4, **train_over}}
    return build_run_config(values)


@pytest.mark.filterwarnings("ignore:After epoch")  # a few epochs of a GAN look alike; not what is tested here
@pytest.mark.parametrize("source", ["ring8", "npy", "csv"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_family_trains_on_vectors_and_its_loss_falls(tmp_path, sources, family, source):
    out = tmp_path / "run"
    result = train(config(family, sources[source]), out, progress=False)
    saved = json.loads((out / "config.json").read_text())
    assert saved["shape"] == ([2] if source == "ring8" else [8])
    assert saved["data"]["standardiser"] is not None and len(saved["data"]["standardiser"]["std"]) == saved["shape"][0]
    picture = out / "images" / ("samples.png" if family == "gan" or family == "vae" else "reconstructions.png")
    assert picture.stat().st_size > 1000
    if family in FALLS:
        key = FALLS[family]
        series = [r[key] for r in result.history if r.get("split") == "train" and key in r]
        window = max(1, len(series) // 4)
        assert np.mean(series[-window:]) < np.mean(series[:window]), (family, source, series)


def test_the_vae_on_vectors_takes_a_gaussian_decoder_by_default(tmp_path):
    train(config("vae", "ring8", epochs=1), tmp_path / "run", progress=False)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model"]["likelihood"] == "gaussian"


@pytest.mark.parametrize("family, model, words", [
    ("vae", {"arch": "conv"}, "arch = 'conv' is a network of images"),
    ("vae", {"likelihood": "bernoulli"}, "likelihood = 'bernoulli' models values in [0, 1]"),
    ("vae", {"binarize": True}, "binarize = True draws binary pixels"),
    ("ae", {"arch": "conv"}, "arch = 'conv' is a network of images"),
    ("ae", {"loss": "bce"}, "loss = 'bce' models values in [0, 1]"),
    ("sdae", {"loss": "bce"}, "loss = 'bce' models values in [0, 1]"),
    ("gan", {"arch": "conv"}, "arch = 'conv' is a network of images"),
    ("classifier", {"classes": 8}, "trains on images only, not vector data"),
])
def test_what_cannot_take_vectors_is_refused_before_the_run_directory_is_touched(tmp_path, family, model, words):
    run_config = build_run_config({"family": family, "model": model, "data": {"source": "ring8", "toy_size": 50}})
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("]", r"\]")) as info:
        train(run_config, tmp_path / "run", progress=False)
    assert "\n" not in str(info.value) and str(info.value).endswith(".")
    assert not (tmp_path / "run").exists()


def test_a_refusal_on_the_command_line_is_one_sentence(tmp_path, capsys):
    assert cli("train", "vae", "--data", "ring8", "--toy-size", "50", "--arch", "conv", "--out", tmp_path / "r",
               "--no-progress") == 2
    one_sentence(capsys, "cannot train on vector data", "--arch mlp")
    assert not (tmp_path / "r").exists()


def test_resume_continues_a_vector_run_exactly(tmp_path):
    whole = train(config("vae", "ring8", epochs=2), tmp_path / "whole", progress=False).model
    train(config("vae", "ring8", epochs=1), tmp_path / "half", progress=False)
    resumed = train(config("vae", "ring8", epochs=2), tmp_path / "half", resume=True, progress=False).model
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert len(read_history(load_run(tmp_path / "half").dir)) == len(read_history(load_run(tmp_path / "whole").dir))


@pytest.fixture(scope="module")
def npy_runs(sources, tmp_path_factory):
    """A PCA keeping all 8 components and a VAE, each trained on the (400, 8) .npy."""
    root = tmp_path_factory.mktemp("npy_runs")
    pca = build_run_config({"family": "pca", "model": {"latent_dim": 8}, "data": {"source": sources["npy"]}})
    train(pca, root / "pca", progress=False)
    train(config("vae", sources["npy"], epochs=4), root / "vae", progress=False)
    return root


def test_reconstructions_are_in_the_data_units(npy_runs, sources):
    """A PCA with every component reconstructs exactly: in data units its output equals the input."""
    run = load_run(npy_runs / "pca")
    x = run.data.test.batch(slice(0, 50))
    with torch.inference_mode():
        back = run.in_units(run.model.reconstruct(x))
    np.testing.assert_allclose(back.numpy(), run.data.test.stored(slice(0, 50)).numpy(), rtol=1e-4, atol=1e-3)
    assert reconstruct(run, npy_runs / "r.png").stat().st_size > 1000


def test_samples_written_as_numbers_are_in_the_data_units(npy_runs, tmp_path):
    assert cli("sample", npy_runs / "vae", "-n", "500", "--out", tmp_path / "s.npy") == 0
    drawn = np.load(tmp_path / "s.npy")
    data = shifted()
    assert drawn.shape == (500, 8) and drawn.dtype == np.float32
    # Standardised samples would sit near 0 with std near 1; in data units they sit near the data's means.
    assert np.all(np.abs(drawn.mean(0) - data.mean(0)) < data.std(0))
    assert np.all(drawn.std(0) < 2 * data.std(0)) and drawn.std(0).max() > 1  # decoder means: less spread


def test_later_commands_take_the_units_from_config_json(npy_runs, tmp_path):
    """The standardiser config.json records is what sample undoes: moved there, the samples move with it."""
    run = load_run(npy_runs / "vae")
    before = np.load(sample(run, 200, tmp_path / "a.npy", seed=3))
    cfg = json.loads((npy_runs / "vae" / "config.json").read_text())
    cfg["data"]["standardiser"]["mean"] = [m + 1000 for m in cfg["data"]["standardiser"]["mean"]]
    moved = tmp_path / "moved"
    moved.mkdir()
    for f in ("model.safetensors", "checkpoint.safetensors"):
        (moved / f).write_bytes((npy_runs / "vae" / f).read_bytes())
    (moved / "config.json").write_text(json.dumps(cfg))
    after = np.load(sample(load_run(moved), 200, tmp_path / "b.npy", seed=3))
    np.testing.assert_allclose(after, before + 1000, rtol=1e-5, atol=1e-3)


def test_an_image_runs_samples_as_numbers_are_uint8_pixels(tmp_path, digits):
    train(tiny_vae_config(train={"epochs": 1}), tmp_path / "run", progress=False, data=digits)
    path = sample(load_run(tmp_path / "run", data=digits), 12, tmp_path / "s.npy", seed=1)
    pixels = np.load(path)
    assert pixels.shape == (12, 1, 8, 8) and pixels.dtype == np.uint8 and pixels.max() > 0
    run = load_run(tmp_path / "run", data=digits)
    with torch.inference_mode():
        means = run.model.sample(12, generator=torch.Generator().manual_seed(1))
    np.testing.assert_array_equal(pixels, (means * 255).round().clamp(0, 255).to(torch.uint8).numpy())


@pytest.mark.filterwarnings("ignore:After epoch")
def test_commands_and_evaluate_on_a_toy_run(tmp_path):
    out = tmp_path / "gan"
    train(config("gan", "ring8", epochs=2), out, progress=False)
    for args in (("sample", out, "-n", "300", "--out", tmp_path / "s.png"),
                 ("interpolate", out, "--out", tmp_path / "i.png")):
        assert cli(*args) == 0 and (tmp_path / args[-1]).stat().st_size > 1000
    results = evaluate(load_run(out), parzen_samples=200, quality_samples=300, probe_train=100)
    assert set(results) <= set(METRICS), set(results) - set(METRICS)
    assert results["modes_total"] == 8 and 0 <= results["modes_covered"] <= 8
    assert 0 <= results["high_quality_share"] <= 1 and "FID" in results["skipped"]
    assert {"kid", "precision", "recall", "density", "coverage"} <= set(results) and "fid" not in results


def test_encode_and_latent_on_a_vector_run(tmp_path):
    out = tmp_path / "ae"
    train(config("ae", "ring8", epochs=1), out, progress=False)
    assert cli("encode", out, "--out", tmp_path / "c.npz") == 0
    codes = np.load(tmp_path / "c.npz")
    assert codes["codes"].shape == (120, 2) and codes["labels"].max() < 8
    assert cli("latent", out, "--out", tmp_path / "l.png") == 0
    results = evaluate(load_run(out), probe_train=100)
    assert set(results) <= set(METRICS) and "reconstruction_sse" in results


def test_toy_data_is_named_and_sized_in_the_help(capsys):
    with pytest.raises(SystemExit):
        cli("train", "vae", "--help")
    text = " ".join(capsys.readouterr().out.split())
    assert "--toy-size" in text and "ring8" in text and "a fifth as many" in text and "--label-column" in text


def test_load_data_of_a_run_rebuilds_the_same_toy(tmp_path):
    train(config("pca", "ring8", epochs=1), tmp_path / "run", progress=False)
    run = load_run(tmp_path / "run")
    assert torch.equal(run.data.train.images, load_data("ring8", toy_size=600).train.images)


def test_the_gan_on_vectors_has_no_spectral_norm_unless_asked():
    from genmodels.models import build_model
    from genmodels.models.registry import FAMILIES as ALL

    plain = build_model("gan", ALL["gan"].config(hidden=[8]), (2,))
    asked = build_model("gan", ALL["gan"].config(hidden=[8], spectral_norm=True), (2,))
    images = build_model("gan", ALL["gan"].config(hidden=[8]), (1, 8, 8))
    assert (plain.spectral, asked.spectral, images.spectral) == (False, True, True)


@pytest.mark.filterwarnings("ignore:After epoch")
def test_a_toy_run_whose_samples_diverged_is_refused_in_one_sentence(tmp_path):
    from genmodels.errors import GenmodelsError

    train(config("gan", "ring8", epochs=1), tmp_path / "gan", progress=False)
    run = load_run(tmp_path / "gan")
    with torch.no_grad():
        for p in run.model.parameters():
            p.fill_(float("inf"))
    with pytest.raises(GenmodelsError, match="weights are damaged"):
        evaluate(run, parzen_samples=0, quality_samples=0, probe_train=0)


def test_log_likelihoods_of_a_vector_run_are_in_the_data_units(npy_runs):
    """log p(x) = log p(z) - sum_j log std_j for the standardised z: evaluate adds the standardisation's
    log-Jacobian to what the model measures on the vectors it sees."""
    from genmodels.evaluation import SplitView
    from genmodels.models import EvalOptions

    run = load_run(npy_runs / "vae")
    results = evaluate(run, importance_samples=5, parzen_samples=0, quality_samples=0, probe_train=0)
    torch.manual_seed(0)
    with torch.inference_mode():
        seen = run.model.evaluate(SplitView(run.data.test, run.device), None, EvalOptions(5, 100))
    shift = -float(run.standardiser.std.log().sum())
    assert shift < -10  # the data's stds are far from 1, so the units matter
    for key in ("elbo", "log_likelihood_iw"):
        assert results[key] == pytest.approx(seen[key] + shift, rel=1e-9), key


@pytest.mark.parametrize("family", ["vae", "gan", "ae", "sdae"])
def test_decoders_of_vectors_have_a_linear_output(family):
    """Standardised vectors are unbounded: a decoder whose last layer says -5 gives -5, not sigmoid(-5)."""
    from genmodels.models import build_model
    from genmodels.models.registry import FAMILIES as ALL

    settings = {k: v for k, v in FAMILIES[family].items() if k != "corrupt"}
    model = build_model(family, ALL[family].config(**settings), (3,)).eval()
    with torch.no_grad():
        for layer in model.modules():  # every layer giving 3 values: the decoders' last, G's and its average's
            if isinstance(layer, torch.nn.Linear) and layer.out_features == 3:
                layer.weight.zero_()
                layer.bias.fill_(-5.0)
    with torch.inference_mode():
        out = model.decode(torch.zeros(4, model.latent_dim))
    assert out.shape == (4, 3) and torch.allclose(out, torch.full((4, 3), -5.0)), out
