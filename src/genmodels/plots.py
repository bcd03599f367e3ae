"""Plots with matplotlib's object API (no pyplot state, safe in any thread or headless machine)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # imported lazily: matplotlib adds ~0.5 s to start-up

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def plot_loss_curve(history: list[dict], path: str | Path, key: str = "loss") -> Path | None:
    """Training loss per logged interval and held-out loss per epoch, against the step."""
    train = [(r["step"], r[key]) for r in history if r.get("split") == "train" and key in r]
    test = [(r["step"], r[key]) for r in history if r.get("split") == "test" and key in r]
    if not train:
        return None
    fig = _figure(6, 4)
    ax = fig.add_subplot()
    ax.plot(*zip(*train), label=f"train {key}", lw=1)
    if test:
        ax.plot(*zip(*test), "o-", label=f"test {key}", ms=3)
    ax.set_xlabel("step")
    ax.set_ylabel(key)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(path)
    return Path(path)


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
    fig.savefig(path)
    return Path(path)
