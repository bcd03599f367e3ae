"""The picture of a vector run (issue 29): model points scattered over the toy's true density contours, or over the
test points for other vectors, where an image run has its grid (vectordata.save_points, plots.plot_points)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from genmodels.toy import TOYS
from genmodels.vectordata import density_grid, save_points

RED = np.array([214, 39, 40])  # matplotlib's C3: the model's points


def colours(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3).astype(int)


def greys(pixels: np.ndarray) -> int:
    """Pixels of a grey between black and white: contour lines, and the axes' antialiased text."""
    return int((((pixels.max(1) - pixels.min(1)) < 8) & (pixels.max(1) < 250) & (pixels.min(1) > 20)).sum())


def near(pixels: np.ndarray, colour, tol: int = 40) -> int:
    return int((np.abs(pixels - np.asarray(colour)).max(1) <= tol).sum())


def test_the_density_grid_is_the_toys_log_density_and_peaks_at_its_modes():
    ring = TOYS["ring8"]
    x, y, log_p = density_grid("ring8", ring.sample(100, 0).points.numpy(), cells=401)
    assert log_p.shape == (401, 401)
    i, j = np.unravel_index(log_p.argmax(), log_p.shape)
    peak = torch.tensor([[x[j], y[i]]])
    assert torch.cdist(peak.double(), ring.centre_points).min() < 0.05
    np.testing.assert_allclose(log_p[i, j], ring.log_density(peak).item(), rtol=1e-9)
    assert density_grid("not-a-toy", np.zeros((3, 2))) is None


def test_the_density_grid_keeps_far_samples_in_the_picture_up_to_a_bound():
    x, y, _ = density_grid("ring8", np.array([[5.0, -4.0]]), cells=50)
    assert x.max() >= 5.0 and y.min() <= -4.0
    x, y, _ = density_grid("ring8", np.array([[1e6, 0.0]]), cells=50)  # a diverged sample does not shrink the rest
    assert x.max() < 10


def test_a_toy_picture_draws_the_points_over_the_contours_and_others_over_the_test_points(tmp_path):
    ring = TOYS["ring8"]
    points = 0.1 * torch.randn(500, 2, generator=torch.Generator().manual_seed(0))  # a collapsed model's samples
    toy = colours(save_points(points, tmp_path / "toy.png", "ring8", title="ring8"))
    bare = colours(save_points(points, tmp_path / "bare.png", "/data/v.npy", title="ring8"))
    assert near(toy, RED) > 200 and near(bare, RED) > 200  # the samples
    assert greys(toy) > greys(bare) + 500  # the toy's contours; no contours for data whose density is unknown
    test = ring.sample(500, 1).points
    other = colours(save_points(points, tmp_path / "other.png", "/data/v.npy", reference=test, title="ring8"))
    assert near(other, (200, 200, 200), tol=30) > 100 + near(bare, (200, 200, 200), tol=30)  # the test points


def test_vectors_above_two_columns_show_the_first_two(tmp_path):
    path = save_points(torch.randn(300, 5), tmp_path / "five.png", "/data/v.npy", reference=torch.randn(300, 5))
    assert near(colours(path), RED) > 100


@pytest.mark.filterwarnings("ignore:After epoch")  # one epoch's samples look alike; not what is tested here
def test_latent_of_a_vector_run_draws_the_decoded_code_grid_as_curves_in_the_data_plane(tmp_path):
    from genmodels import build_run_config, load_run, train
    from genmodels.runs import latent

    config = build_run_config({"family": "vae", "model": {"hidden": [16], "latent_dim": 2},
                               "data": {"source": "ring8", "toy_size": 300}, "train": {"epochs": 1}})
    train(config, tmp_path / "run", progress=False)
    with Image.open(latent(load_run(tmp_path / "run"), tmp_path / "latent.png", grid=5)) as picture:
        width, height = picture.size
    assert width > 1.8 * height  # the codes and, beside them, the decoded grid
    assert near(colours(tmp_path / "latent.png"), (31, 119, 180)) > 100  # curves of the z1 lines (C0)
