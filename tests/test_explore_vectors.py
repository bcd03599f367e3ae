"""The explorer on vector runs (issue 29): its routes answer in the data's own units (config.json's standardiser
undone), for 2-D data with the test points of the data plane, a click on the plane encoded, and for wider data the
decoded vector's numbers; what the page cannot take (an image file) is refused in one sentence. The page itself, in
headless Chromium, is tests/test_explore_conditional.py's (one browser session for vector and conditional runs)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from genmodels import build_run_config, load_run, train
from genmodels.explore import load_runs
from genmodels.explore.server import Explorer, build_app
from test_hostile_explorer import _call

TOY = 600  # ring8 points (train + test): enough to see the ring, a second to train on


def _config(family: str, data: dict, **model) -> dict:
    return {"family": family, "model": {"hidden": [32], "latent_dim": 2, **model}, "data": data,
            "train": {"epochs": 1, "batch_size": 50, "lr": 3e-3}}


_TRAINED: dict = {}  # the runs below, trained once a session (tests/test_explore_conditional.py shows them too)


@pytest.fixture(scope="module")
def vector_runs(tmp_path_factory):
    """A 2-d VAE and a GAN on ring8, and an AE on (400, 5) vectors far from standard units, each in about a second."""
    if not _TRAINED:
        _TRAINED.update(_train(tmp_path_factory.mktemp("explore-vectors")))
    return dict(_TRAINED)


def _train(root):
    rng = np.random.default_rng(0)
    wide = rng.normal(size=(400, 2)) @ (rng.normal(size=(2, 5)) * 3) + 100 + 10 * np.arange(5)
    np.save(root / "wide.npy", (wide + 0.3 * rng.normal(size=(400, 5))).astype(np.float32))
    ring = {"source": "ring8", "toy_size": TOY}
    configs = {"vae": _config("vae", ring), "gan": _config("gan", ring, hidden=[32, 32], latent_dim=4),
               "ae": _config("ae", {"source": str(root / "wide.npy")})}
    with warnings.catch_warnings():  # so short a training warns that its samples look alike: true, not tested here
        warnings.simplefilter("ignore", RuntimeWarning)
        for name, values in configs.items():
            train(build_run_config(values), root / name, progress=False)
    return {name: root / name for name in configs}


@pytest.fixture(scope="module")
def app(vector_runs):
    explorer = Explorer(load_runs(list(vector_runs.values())))
    yield build_app(explorer), {r.name: r for r in explorer.runs.values()}
    explorer.pool.shutdown()


def _post(app, key: str, route: str, body: dict) -> tuple[int, dict]:
    headers = {"content-type": "application/json"}
    return _call(app, "POST", f"/api/runs/{key}/{route}", headers, json.dumps(body).encode())


def _in_units(run_dir, x: torch.Tensor) -> np.ndarray:
    """Standardised model outputs in the data's units, by config.json's standardiser as the file records it."""
    recorded = json.loads((run_dir / "config.json").read_text())["data"]["standardiser"]
    return x.double().numpy() * np.array(recorded["std"]) + np.array(recorded["mean"])


def test_a_2d_run_describes_the_data_plane_in_the_datas_units(app, vector_runs):
    asgi, runs = app
    status, answer = _call(asgi, "GET", "/api/runs")
    assert status == 200
    info = {r["name"]: r for r in answer["runs"]}
    vae, gan, ae = info["vae"], info["gan"], info["ae"]
    assert vae["kind"] == gan["kind"] == ae["kind"] == "vectors" and vae["shape"] == [2] and ae["shape"] == [5]
    test = runs["vae"].run.data.test
    raw = test.stored(slice(0, len(test))).double().numpy()  # ring8's test points as generated: data units
    np.testing.assert_allclose(vae["data"]["points"], raw, atol=1e-4)
    assert vae["data"]["labels"] == test.labels.tolist() and len(set(vae["data"]["labels"])) == 8
    assert vae["map"]["points"] and "map" not in gan and gan["data"]["points"] == vae["data"]["points"]
    # A wider run has no plane, but each column's extent and middle 90% in its own units (about 100 + 10 j).
    assert "points" not in ae["data"] and len(ae["data"]["extent"]) == 5
    for j, ((lo, hi), (a, b)) in enumerate(zip(ae["data"]["extent"], ae["data"]["band"])):
        assert lo <= a < b <= hi and lo < 100 + 10 * j < hi


def test_a_decoded_code_is_the_models_decode_in_the_datas_units(app, vector_runs):
    asgi, runs = app
    codes = [[0.3, -0.2], [1.5, 0.4]]
    for name in ("vae", "ae"):
        status, answer = _post(asgi, runs[name].key, "decode", {"targets": [{"code": c} for c in codes]})
        assert status == 200 and "images" not in answer
        with torch.inference_mode():
            expected = _in_units(vector_runs[name], load_run(vector_runs[name]).model.decode(torch.tensor(codes)))
        assert np.asarray(answer["vectors"]).shape == expected.shape
        np.testing.assert_allclose(answer["vectors"], expected, rtol=1e-5, atol=1e-4)
    assert np.abs(np.asarray(answer["vectors"]) - 100).max() < 200  # the wide run's in its units, not standardised


def test_a_point_of_the_plane_is_encoded_and_its_reconstruction_decoded(app, vector_runs):
    asgi, runs = app
    point = [1.41, 1.41]  # a mode of ring8, in data units
    status, answer = _post(asgi, runs["vae"].key, "decode", {"targets": [{"vector": point}]})
    assert status == 200
    run = load_run(vector_runs["vae"])
    recorded = json.loads((vector_runs["vae"] / "config.json").read_text())["data"]["standardiser"]
    x = (torch.tensor([point], dtype=torch.float64) - torch.tensor(recorded["mean"])) / torch.tensor(recorded["std"])
    with torch.inference_mode():
        code = run.model.encode(x.float())
        rebuilt = _in_units(vector_runs["vae"], run.model.decode(code))
    np.testing.assert_allclose(answer["codes"], code.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(answer["vectors"], rebuilt, rtol=1e-5, atol=1e-4)
    assert answer["points"] == answer["codes"]  # a 2-d code is its own place on the map
    # A test vector by its index, in data units, and its code is the map's.
    status, one = _call(asgi, "GET", f"/api/runs/{runs['vae'].key}/images/3")
    test = runs["vae"].run.data.test
    assert status == 200 and np.allclose(one["vector"], test.stored(slice(3, 4))[0].double().numpy(), atol=1e-5)


def test_samples_and_walks_are_the_models_own_in_the_datas_units(app, vector_runs):
    asgi, runs = app
    status, answer = _post(asgi, runs["gan"].key, "sample", {"seed": 5, "n": 6})
    assert status == 200
    model = load_run(vector_runs["gan"]).model
    with torch.inference_mode():
        expected = _in_units(vector_runs["gan"], model.sample(6, generator=torch.Generator().manual_seed(5)))
    np.testing.assert_allclose(answer["vectors"], expected, rtol=1e-5, atol=1e-4)
    a, b = answer["codes"][0], answer["codes"][1]
    status, walk = _post(asgi, runs["gan"].key, "interpolate", {"a": {"code": a}, "b": {"code": b}, "steps": 4})
    assert status == 200 and len(walk["vectors"]) == 4
    np.testing.assert_allclose([walk["vectors"][0], walk["vectors"][-1]], expected[:2], rtol=1e-5, atol=1e-4)


def test_what_a_vector_run_cannot_take_gets_one_sentence(app):
    asgi, runs = app
    status, answer = _call(asgi, "POST", f"/api/runs/{runs['vae'].key}/upload", {"content-type": "image/png"}, b"x")
    assert status == 400 and answer["error"].startswith("The vae run was trained on vectors, not images")
    status, answer = _post(asgi, runs["vae"].key, "decode", {"targets": [{"vector": [1.0, 2.0, 3.0]}]})
    assert status == 400 and "has 3 numbers but the vae run's data have 2 columns" in answer["error"]
    status, answer = _post(asgi, runs["gan"].key, "decode", {"targets": [{"vector": [1.0, 2.0]}]})
    assert status == 400 and answer["error"] == "The gan run cannot encode; send codes instead."
    status, answer = _post(asgi, runs["vae"].key, "decode", {"targets": [{"code": [0.0, 0.0]}], "labels": [1]})
    assert status == 400 and "not conditional" in answer["error"]
