"""The latent picture: class names on the colour bar, the decoded manifold on z axes."""

import numpy as np
import pytest
import torch
from matplotlib.patches import Rectangle
from PIL import Image

from genmodels import runs
from genmodels.data import FASHION_MNIST_CLASSES
from genmodels.plots import latent_figure, plot_latent

GRID = 20
Z = torch.special.ndtri(torch.linspace(0.05, 0.95, GRID)).numpy()  # the z of runs.latent's cells


def _codes(n=300, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 2)).astype(np.float32), rng.integers(0, classes, n)


def _axes(fig):
    """The scatter's, the colour bar's and the manifold's axes (None where absent), found by what they hold."""
    scatter = fig.axes[0]  # added first
    manifold = next((a for a in fig.axes if a.images), None)
    bar = next((a for a in fig.axes if a is not scatter and a is not manifold), None)
    return scatter, bar, manifold


def _texts(labels) -> list[str]:
    return [t.get_text() for t in labels]


def _number(text: str) -> float:
    return float(text.replace("\u2212", "-"))


def _manifold(cell=32, pad=2):
    return np.zeros((GRID * (cell + pad) + pad,) * 2, np.uint8)


def test_the_colour_bar_reads_the_class_names_or_the_labels(tmp_path):
    codes, labels = _codes()
    fig = latent_figure(codes, labels, classes=FASHION_MNIST_CLASSES)
    scatter, bar, _ = _axes(fig)
    assert _texts(bar.get_yticklabels()) == list(FASHION_MNIST_CLASSES)
    assert bar.get_title() == "class" and bar.yaxis_inverted()  # class 0 on top
    # the points have tab10's colours: the point of label k is tab10's colour k
    from matplotlib import colormaps

    fig.draw_without_rendering()  # colours are mapped when drawn
    colours = scatter.collections[0].get_facecolors()[:, :3]
    tab10 = np.array(colormaps["tab10"].colors)
    assert np.allclose(colours, tab10[labels])

    fig = latent_figure(codes, labels)
    bar = _axes(fig)[1]
    assert _texts(bar.get_yticklabels()) == [str(k) for k in range(10)] and bar.get_title() == "label"
    assert len(latent_figure(codes, None).axes) == 1  # no labels: one colour, no bar

    out = plot_latent(codes, labels, tmp_path / "l.png", classes=FASHION_MNIST_CLASSES)
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > im.size[1] / 2


def test_up_to_twenty_names_on_the_bar_and_numbers_past_them():
    codes, labels = _codes(classes=12)
    names = tuple("abcdefghijkl")
    assert _texts(_axes(latent_figure(codes, labels, classes=names))[1].get_yticklabels()) == list(names)
    codes, labels = _codes(classes=50)
    fig = latent_figure(codes, labels)
    assert all(t.replace("\u2212", "-").lstrip("-").replace(".", "").isdigit()
               for t in _texts(_axes(fig)[1].get_yticklabels()) if t)


def test_the_manifold_has_z_axes_ticked_with_z_values_and_is_outlined_on_the_scatter():
    codes, labels = _codes()
    fig = latent_figure(codes, labels, _manifold(), manifold_z=Z)
    scatter, _, manifold = _axes(fig)
    assert manifold.get_xlabel() == "z1" and manifold.get_ylabel() == "z2"
    for ticks, texts in ((manifold.get_xticks(), manifold.get_xticklabels()),
                         (manifold.get_yticks(), manifold.get_yticklabels())):
        values = [_number(t) for t in _texts(texts)]
        assert len(values) >= 5 and 0.0 in values and values == sorted(values)
        # each tick sits where the grid's z equals its label: cell i (counted from the left or the bottom)
        # is drawn around i, and z varies between cells as Phi^-1 does, so equal steps in z are not equal steps
        assert np.allclose(np.interp(ticks, np.arange(GRID), Z), values, atol=0.01)
        assert not np.allclose(np.diff(ticks), np.diff(ticks)[0], rtol=0.05)
    (square,) = [p for p in scatter.patches if isinstance(p, Rectangle)]
    assert np.allclose(square.get_xy(), (Z[0], Z[0])) and np.isclose(square.get_width(), Z[-1] - Z[0])
    assert np.isclose(square.get_height(), Z[-1] - Z[0])
    fig.draw_without_rendering()  # lay out, then measure on the 100 dpi canvas
    shown, beside = manifold.get_window_extent(), scatter.get_window_extent()
    assert shown.height >= 28 * GRID and shown.width >= 28 * GRID  # each decoded image >= 28 px
    assert shown.height >= 0.9 * beside.height  # about as tall as the scatter


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """A 2-D VAE trained for one epoch on a folder of two classes of 8x8 images."""
    from genmodels.cli import main

    root = tmp_path_factory.mktemp("plots")
    rng = np.random.default_rng(0)
    for k, name in enumerate(("dark", "light")):
        (root / "set" / name).mkdir(parents=True)
        for i in range(20):
            Image.fromarray(rng.integers(100 * k, 100 * k + 120, (8, 8), dtype=np.uint8)).save(
                root / "set" / name / f"{i}.png")
    assert main(["train", "vae", "--data", str(root / "set"), "--latent-dim", "2", "--hidden", "8",
                 "--epochs", "1", "--out", str(root / "run"), "--no-progress"]) == 0
    return root / "run"


def test_latent_passes_the_class_names_and_the_grid_z(folder_run, tmp_path, monkeypatch):
    seen = {}

    def spy(*args, **kwargs):
        seen.update(kwargs, manifold=args[3])
        return plot_latent(*args, **kwargs)

    monkeypatch.setattr(runs, "plot_latent", spy)
    out = runs.latent(runs.load_run(folder_run), tmp_path / "l.png", grid=GRID)
    assert out.is_file() and seen["classes"] == ("dark", "light")
    assert np.allclose(seen["manifold_z"], Z, atol=1e-6)
    assert seen["manifold"].shape[0] >= 28 * GRID  # cells of 8x8 images upscaled to >= 28 px
