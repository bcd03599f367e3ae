"""Plots with matplotlib's object API (no pyplot state, safe in any thread or headless machine)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .fileio import atomic_write


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # imported lazily: matplotlib adds ~0.5 s to start-up

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save_png(fig, path: str | Path) -> Path:
    """The figure as a PNG, written atomically: a failed write leaves the previous file as it was."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    atomic_write(Path(path), buffer.getvalue())
    return Path(path)


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
    fig = _figure(6, 3 * len(shown) + 0.5)
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
    return _save_png(fig, path)


def plot_latent(codes: np.ndarray, labels: np.ndarray | None, path: str | Path,
                manifold: np.ndarray | None = None, title: str = "") -> Path:
    """Scatter of 2-D codes (PCA to 2-D above two dimensions) coloured by label; beside it an
    optional decoded-manifold picture (Kingma & Welling 2013, Fig. 4)."""
    xlabel, ylabel = "z1", "z2"
    if codes.shape[1] > 2:
        from sklearn.decomposition import PCA

        codes = PCA(n_components=2).fit_transform(codes)
        xlabel, ylabel = "PC 1 of z", "PC 2 of z"
    elif codes.shape[1] == 1:
        codes = np.concatenate([codes, np.zeros_like(codes)], 1)
        ylabel = ""
    panels = 2 if manifold is not None else 1
    fig = _figure(6 * panels, 5.5)
    ax = fig.add_subplot(1, panels, 1)
    sc = ax.scatter(codes[:, 0], codes[:, 1], c=labels if labels is not None else None, cmap="tab10", s=4, alpha=0.7)
    if labels is not None:
        fig.colorbar(sc, ax=ax, label="label")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title or "test codes")
    if manifold is not None:
        ax2 = fig.add_subplot(1, panels, 2)
        ax2.imshow(manifold, cmap="gray" if manifold.ndim == 2 else None, interpolation="nearest")
        ax2.set_axis_off()
        ax2.set_title("decoded manifold")
    return _save_png(fig, path)
