"""The scikit-learn wrapper: conventions, Pipeline + GridSearchCV, errors."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from genmodels import ConfigError, DataError
from genmodels.estimator import AutoEncoderTransformer


@pytest.fixture(scope="module")
def xy():
    x, y = load_digits(return_X_y=True)
    return x[:600] / 16.0, y[:600]


def test_constructor_only_stores_and_clone_round_trips():
    est = AutoEncoderTransformer(latent_dim=4, options={"hidden": [16]}, epochs=2)
    params = est.get_params()
    assert params["latent_dim"] == 4 and params["options"] == {"hidden": [16]}
    twin = clone(est)
    assert twin.get_params() == params and not hasattr(twin, "model_")


def test_fit_transform_inverse_transform_shapes(xy):
    x, _ = xy
    est = AutoEncoderTransformer(latent_dim=5, options={"hidden": [16]}, epochs=2, lr=3e-3)
    with pytest.raises(NotFittedError):
        est.transform(x)
    codes = est.fit_transform(x)
    assert est.fit(x) is est
    assert codes.shape == (600, 5) and est.n_features_in_ == 64 and est.image_shape_ == (1, 8, 8)
    assert np.allclose(est.transform(x), codes)  # a second fit with the same seed: the same model
    assert est.inverse_transform(codes).shape == (600, 64)
    assert est.score(x) < 0


def test_pipeline_and_grid_search_round_trip(xy):
    x, y = xy
    pipe = Pipeline([("ae", AutoEncoderTransformer(epochs=4, batch_size=32, lr=1e-2)),
                     ("clf", LogisticRegression(max_iter=200))])
    grid = {"ae__latent_dim": [2, 8], "ae__options": [{"hidden": [16]}, {"hidden": [16], "corrupt": ["mask:0.2"]}]}
    search = GridSearchCV(pipe, grid, cv=2, error_score="raise")
    search.fit(x, y)
    assert set(search.best_params_) == {"ae__latent_dim", "ae__options"}
    assert search.best_params_["ae__latent_dim"] == 8  # 8 codes keep more of the label than 2
    assert search.score(x, y) > 0.5
    assert search.best_estimator_.named_steps["ae"].transform(x).shape == (600, 8)


def test_sdae_and_vae_families_encode(xy):
    x, y = xy
    sdae = AutoEncoderTransformer("sdae", latent_dim=3, options={"layers": [16], "pretrain_epochs": 1}, epochs=1)
    assert sdae.fit_transform(x).shape == (600, 3)
    vae = AutoEncoderTransformer("vae", latent_dim=2, options={"hidden": [16]}, epochs=1)
    assert vae.fit_transform(x).shape == (600, 2)


@pytest.mark.parametrize("bad, error, match", [
    (np.full((10, 64), np.nan), DataError, "NaN"),
    (np.full((10, 64), 3.0), DataError, r"\[0, 1\]"),
    (np.zeros((10, 2, 2)), DataError, "n_samples"),
])
def test_bad_input_gives_a_clear_error(bad, error, match):
    with pytest.raises(error, match=match):
        AutoEncoderTransformer(epochs=1).fit(bad)


def test_bad_parameter_gives_a_clear_error(xy):
    with pytest.raises(ConfigError, match="model.contractive"):
        AutoEncoderTransformer(options={"contractive": -1.0}, epochs=1).fit(xy[0])
    with pytest.raises(DataError, match="image_shape"):
        AutoEncoderTransformer(image_shape=(1, 4, 4), epochs=1).fit(xy[0])
    with pytest.raises(ConfigError, match="'gan' has no encoder.*vae, ae, sdae, pca"):  # before any training
        AutoEncoderTransformer(family="gan", latent_dim=4, epochs=1).fit(xy[0])


def test_run_dir_keeps_the_run_and_refuses_to_overwrite_another(xy, tmp_path):
    from genmodels import load_run

    x, _ = xy
    run = tmp_path / "run"
    est = AutoEncoderTransformer(latent_dim=3, options={"hidden": [16]}, epochs=1, run_dir=str(run)).fit(x)
    saved = (run / "model.safetensors").read_bytes()
    with torch.inference_mode():  # the run in run_dir is the fitted model
        codes = load_run(run).model.encode(torch.as_tensor(x[:5].reshape(-1, 1, 8, 8), dtype=torch.float32))
    assert np.allclose(codes.numpy(), est.transform(x[:5]), atol=1e-6)
    with pytest.raises(ConfigError, match=r"run_dir .*run already holds a run; give another run_dir, or "
                                          r"overwrite=True to replace it\."):
        AutoEncoderTransformer(latent_dim=3, options={"hidden": [16]}, epochs=1, seed=1, run_dir=str(run)).fit(x)
    assert (run / "model.safetensors").read_bytes() == saved  # the first run untouched
    AutoEncoderTransformer(latent_dim=3, options={"hidden": [16]}, epochs=1, seed=1, run_dir=str(run),
                           overwrite=True).fit(x)
    assert (run / "model.safetensors").read_bytes() != saved
