"""Plots with matplotlib's object API (no pyplot state, safe in any thread or headless machine)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np

from .fileio import atomic_write


def save_figure(fig, path: str | Path) -> None:
    """A figure as a PNG, written atomically (fileio.atomic_write)."""
    png = io.BytesIO()
    fig.savefig(png, format="png")
    atomic_write(Path(path), png.getvalue(), parents=True)


def _figure(width: float, height: float, layout: Literal["constrained"] | None = "constrained"):
    from matplotlib.figure import Figure  # imported lazily: matplotlib adds ~0.5 s to start-up

    return Figure(figsize=(width, height), dpi=100, layout=layout)


# Logged figures that are ratios to the data's own (1: like the test images): drawn from 0 with a line at 1.
RATIOS_TO_DATA = {"diversity"}


def plot_curves(history: list[dict], path: str | Path, panels: dict[str, tuple[str, ...]]) -> Path | None:
    """One panel per entry of `panels` (title -> logged keys), each key's training records as a line and
    its held-out records (once per epoch) as dots, against the step. A panel needs a training series or two
    held-out points (a one-pass PCA has neither); None when no panel has data."""
    def series(key: str, split: str) -> list[tuple[int, float]]:
        return [(r["step"], r[key]) for r in history if r.get("split") == split and key in r]

    def drawn(keys: tuple[str, ...]) -> bool:
        return any(series(k, "train") or len(series(k, "test")) > 1 for k in keys)

    shown = {title: keys for title, keys in panels.items() if drawn(keys)}
    if not shown:
        return None
    height = 3 * len(shown) + 0.5
    # Margins in inches rather than constrained layout, which draws the figure twice and doubles the cost of the
    # curves training redraws: room for tick labels of 8 characters, the step axis and each panel's title.
    fig = _figure(6, height, layout=None)
    fig.subplots_adjust(left=0.85 / 6, right=1 - 0.15 / 6, bottom=0.55 / height, top=1 - 0.3 / height,
                        hspace=0.4 / (3 - 0.4))
    axes = fig.subplots(len(shown), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (title, keys) in zip(axes, shown.items()):
        for j, key in enumerate(keys):
            colour = f"C{j}"
            if train := series(key, "train"):
                ax.plot(*zip(*train), color=colour, lw=1, label=f"train {key}")
            if test := series(key, "test"):
                ax.plot(*zip(*test), "o-" if not train else "o", color=colour, ms=3, lw=1,
                        label=f"test {key}" if train else key)
        if set(keys) <= RATIOS_TO_DATA:
            ax.axhline(1.0, color="grey", lw=0.8, ls="--", label="the test images")
            ax.set_ylim(bottom=0, top=max(1.2, ax.get_ylim()[1]))
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[-1].set_xlabel("step")
    save_figure(fig, path)
    return Path(path)


def plot_latent(codes: np.ndarray, labels: np.ndarray | None, path: str | Path,
                manifold: np.ndarray | None = None, title: str = "", *, manifold_z: np.ndarray | None = None,
                classes: tuple[str, ...] | None = None) -> Path:
    """latent_figure as a PNG."""
    save_figure(latent_figure(codes, labels, manifold, title, manifold_z=manifold_z, classes=classes), path)
    return Path(path)


def latent_figure(codes: np.ndarray, labels: np.ndarray | None, manifold: np.ndarray | None = None,
                  title: str = "", *, manifold_z: np.ndarray | None = None, classes: tuple[str, ...] | None = None):
    """Scatter of 2-D codes (PCA to 2-D above two dimensions) coloured by label, the colour bar reading
    the class names where given; beside it an optional decoded-manifold picture (Kingma & Welling 2013,
    Fig. 4) of a square grid of cells whose centres lie at z = (manifold_z[j], manifold_z[i]), i counted
    from the bottom row, with z axes and the square it covers outlined on the scatter."""
    xlabel, ylabel = "z1", "z2"
    if codes.shape[1] > 2:
        from sklearn.decomposition import PCA

        codes = PCA(n_components=2).fit_transform(codes)
        xlabel, ylabel = "PC 1 of z", "PC 2 of z"
    elif codes.shape[1] == 1:
        codes = np.concatenate([codes, np.zeros_like(codes)], 1)
        ylabel = ""
    if manifold is None:
        fig = _figure(7, 5.5)
        ax = fig.add_subplot()
    else:  # the manifold about as tall as the scatter, each decoded image ~30 px
        fig = _figure(14, 7)
        ax, ax2 = fig.subplots(1, 2)
    _scatter_by_class(fig, ax, codes, labels, classes)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title or "test codes")
    if manifold is not None:
        if manifold_z is None:
            ax2.imshow(manifold, cmap="gray" if manifold.ndim == 2 else None)
            ax2.set_axis_off()
        else:
            _draw_manifold(ax2, manifold, np.asarray(manifold_z, dtype=float))
            if xlabel == "z1" and ylabel == "z2":  # the scatter is in the same z coordinates
                from matplotlib.patches import Rectangle

                lo, hi = float(manifold_z[0]), float(manifold_z[-1])
                ax.add_patch(Rectangle((lo, lo), hi - lo, hi - lo, fill=False, ec="black", lw=0.8, ls="--",
                                       label="region decoded on the right"))
                ax.legend(loc="upper right", fontsize=8)
        ax.set_aspect("equal", adjustable="datalim")  # z1 and z2 on one scale, as in the manifold
        ax2.set_title("decoded manifold: z = \u03a6\u207b\u00b9(u), u evenly spaced" if manifold_z is not None
                      else "decoded manifold")
    return fig


def _scatter_by_class(fig, ax, codes: np.ndarray, labels: np.ndarray | None, classes) -> None:
    """One colour per class (tab10 up to 10 classes, tab20 up to 20), on a colour bar whose ticks read
    the class names, or the labels where there are none; a bar of numbers past 20 classes."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import BoundaryNorm, Colormap, ListedColormap, Normalize

    points = dict(s=float(np.clip(20_000 / len(codes), 5, 16)), alpha=0.8, linewidths=0)  # fewer, larger
    if labels is None or not len(labels):
        ax.scatter(codes[:, 0], codes[:, 1], color="C0", **points)
        return
    n = max(len(classes or ()), int(labels.max()) + 1)
    classes = classes if classes and len(classes) == n else None  # a label past the names: numbers
    cmap: Colormap
    norm: Normalize
    if n <= 20:
        qualitative = cast(ListedColormap, colormaps["tab10" if n <= 10 else "tab20"])  # both are listed maps
        cmap = ListedColormap(cast(Sequence[Any], qualitative.colors)[:n])  # their colours are a tuple
        norm = BoundaryNorm(np.arange(n + 1) - 0.5, n)
    else:
        cmap, norm = colormaps["turbo"], Normalize(-0.5, n - 0.5)
    ax.scatter(codes[:, 0], codes[:, 1], c=labels, cmap=cmap, norm=norm, **points)
    bar = fig.colorbar(ScalarMappable(norm, cmap), ax=ax, shrink=0.8)
    bar.ax.set_title("class" if classes else "label", fontsize=9)
    if n <= 20:
        bar.set_ticks(np.arange(n), labels=list(classes or map(str, range(n))))
        bar.ax.tick_params(length=0)
        bar.ax.invert_yaxis()  # class 0 on top: the names read down like a legend


def _draw_manifold(ax, picture: np.ndarray, z: np.ndarray) -> None:
    """The grid picture on axes whose unit is one cell, ticked with round z values where they fall
    between the cells' centres (z need not be evenly spaced: Phi^-1 of an even grid is not)."""
    from matplotlib.ticker import MaxNLocator

    n = len(z)
    ax.imshow(picture, cmap="gray" if picture.ndim == 2 else None, vmin=0, vmax=255,  # no contrast stretch
              extent=(-0.5, n - 0.5, -0.5, n - 0.5), interpolation="antialiased")
    ticks = MaxNLocator(nbins=8, steps=[1, 2, 2.5, 5, 10]).tick_values(z[0], z[-1])
    ticks = ticks[(ticks >= z[0] - 1e-9) & (ticks <= z[-1] + 1e-9)]
    where = np.interp(ticks, z, np.arange(n))
    text = [f"{t + 0:g}".replace("-", "\u2212") for t in ticks]  # + 0: no "-0"; matplotlib's minus sign
    ax.set_xticks(where, text)
    ax.set_yticks(where, text)
    ax.set(xlabel="z1", ylabel="z2")


def plot_points(points: np.ndarray, path: str | Path, *, reference: np.ndarray | None = None,
                density: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None, title: str = "",
                names: tuple[str, str] = ("x1", "x2")) -> Path:
    """A picture of vector data (n, D), in the data's own units: the first two columns of `points` scattered over
    the true density's contours where it is known (density: x (nx,), y (ny,), log-density (ny, nx)), else over
    `reference` points (the test points, in grey). The picture of a vector run where an image run has a grid."""
    fig = _figure(6, 6)
    ax = fig.add_subplot()
    if density is not None:
        x, y, log_p = density
        levels = np.linspace(max(log_p.max() - 12, log_p.min()), log_p.max(), 8)
        ax.contour(x, y, log_p, levels=levels, cmap="Greys", linewidths=0.7)
    if reference is not None and len(reference):
        ax.scatter(reference[:, 0], reference[:, 1 if reference.shape[1] > 1 else 0], s=4, color="0.6", alpha=0.5,
                   linewidths=0, label="test points")
    ys = points[:, 1] if points.shape[1] > 1 else np.zeros(len(points))
    ax.scatter(points[:, 0], ys, s=float(np.clip(20_000 / max(len(points), 1), 3, 12)), color="C3", alpha=0.7,
               linewidths=0, label="model")
    ax.set(xlabel=names[0], ylabel=names[1] if points.shape[1] > 1 else "", title=title)
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(loc="upper right", fontsize=8)
    save_figure(fig, path)
    return Path(path)


def plot_latent_curves(codes: np.ndarray, labels: np.ndarray | None, curves: list[np.ndarray], path: str | Path, *,
                       reference: np.ndarray | None = None,
                       density: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None, title: str = "",
                       classes: tuple[str, ...] | None = None) -> Path:
    """For a vector run with 2-D codes: the codes coloured by label (left) and, in the data plane (right; the
    first two columns), the decoder's image of a grid of code lines, each a curve (n, D) in data units, over the
    true density's contours or the test points: the learned manifold as curves."""
    fig = _figure(13, 6)
    left, right = fig.subplots(1, 2)
    _scatter_by_class(fig, left, codes, labels, classes)
    left.set(xlabel="z1", ylabel="z2", title=title or "test codes")
    left.set_aspect("equal", adjustable="datalim")
    if density is not None:
        x, y, log_p = density
        right.contour(x, y, log_p, levels=np.linspace(max(log_p.max() - 12, log_p.min()), log_p.max(), 8),
                      cmap="Greys", linewidths=0.7)
    elif reference is not None and len(reference):
        right.scatter(reference[:, 0], reference[:, 1], s=4, color="0.6", alpha=0.5, linewidths=0)
    for k, curve in enumerate(curves):
        right.plot(curve[:, 0], curve[:, 1], color="C0" if k < len(curves) // 2 else "C3", lw=0.8, alpha=0.8)
    right.set(xlabel="x1", ylabel="x2", title="decoded grid of codes: z1 lines blue, z2 lines red")
    right.set_aspect("equal", adjustable="datalim")
    save_figure(fig, path)
    return Path(path)


def plot_progress(panels: list[tuple[str, np.ndarray]], path: str | Path, *, reference: np.ndarray | None = None,
                  density: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                  limits: tuple[float, float, float, float] | None = None, title: str = "") -> Path:
    """Several scatters of vector data side by side, three to a row, on one pair of axes: each panel (its title,
    points (n, D)) the first two columns of a model's points over the true density's contours or over `reference`
    points (grey), as in plot_points; limits: (x0, x1, y0, y1) of every panel (None: what holds the points).
    The same noise's samples at a few epochs of training: modes found or dropped."""
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig = _figure(3.2 * cols, 3.2 * rows + 0.4)
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False).reshape(-1)
    size = float(np.clip(8_000 / max(max(len(p) for _, p in panels), 1), 2, 8))
    for ax, (name, points) in zip(axes, panels):
        if density is not None:
            x, y, log_p = density
            ax.contour(x, y, log_p, levels=np.linspace(max(log_p.max() - 12, log_p.min()), log_p.max(), 8),
                       cmap="Greys", linewidths=0.6)
        if reference is not None and len(reference):
            ax.scatter(reference[:, 0], reference[:, 1 if reference.shape[1] > 1 else 0], s=3, color="0.6",
                       alpha=0.5, linewidths=0)
        ys = points[:, 1] if points.shape[1] > 1 else np.zeros(len(points))
        ax.scatter(points[:, 0], ys, s=size, color="C3", alpha=0.7, linewidths=0)
        ax.set_title(name, fontsize=10)
        ax.set_aspect("equal", adjustable="box")  # the axes are shared: each panel's box takes the aspect
    if limits is not None:
        axes[0].set(xlim=limits[:2], ylim=limits[2:])
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=11)
    save_figure(fig, path)
    return Path(path)
