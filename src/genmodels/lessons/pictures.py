"""The lessons' pictures: image rows (genmodels.images) and line plots (matplotlib's object API, genmodels.plots)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..images import save_grid
from ..plots import save_figure


def stretched(images: torch.Tensor) -> torch.Tensor:
    """Each image (N, C, H, W) stretched to [0, 1] on its own: a basis vector or a difference, made visible."""
    flat = images.flatten(1)
    low, high = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    return ((flat - low) / (high - low).clamp_min(1e-12)).reshape(images.shape)


def image_rows(rows: Sequence[torch.Tensor], path: Path) -> Path:
    """Rows of images (each (n, C, H, W), n equal), one row each, as one PNG."""
    per_row = max(r.shape[0] for r in rows)
    padded = [torch.cat([r, torch.ones(per_row - r.shape[0], *r.shape[1:])]) for r in rows]
    return save_grid(torch.cat(padded).float().cpu(), path, nrow=per_row)


def line_plot(path: Path, x: Sequence[float], series: dict[str, tuple[Sequence[float], Sequence[float] | None]],
              xlabel: str, ylabel: str, log_x: bool = False, lines: dict[str, float] | None = None) -> Path:
    """One line per series (name -> (values, error bars or None)) against x, optional horizontal lines."""
    from matplotlib.figure import Figure  # imported lazily: matplotlib adds ~0.5 s to start-up

    fig = Figure(figsize=(5.5, 3.4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for name, (values, errors) in series.items():
        ax.errorbar(list(x), list(values), yerr=None if errors is None else list(errors), marker="o", ms=4,
                    capsize=3, label=name)
    for name, y in (lines or {}).items():
        ax.axhline(y, ls="--", color="grey", lw=1)
        ax.annotate(name, (0.01, y), xycoords=("axes fraction", "data"), va="bottom", fontsize=8, color="grey")
    if log_x:
        ax.set_xscale("log")
        ax.minorticks_off()
    if len(x) <= 12:  # a few measured points: label each
        ax.set_xticks(list(x), [f"{v:g}" for v in x])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)
    return path


def histograms(path: Path, series: dict[str, torch.Tensor], xlabel: str, bins: int = 60) -> Path:
    """Overlaid histograms of 1-D samples, on shared bins."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    values = torch.cat([v.flatten() for v in series.values()]).double()
    edges = torch.linspace(float(values.min()), float(values.max()), bins + 1).tolist()
    for name, v in series.items():
        ax.hist(v.double().numpy(), bins=edges, alpha=0.55, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("repeats")
    ax.legend(fontsize=8)
    save_figure(fig, path)
    return path


def confusion_plot(path: Path, confusion: np.ndarray) -> Path:
    """A confusion matrix (true class x predicted class, counts) as an image with its counts written in."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.8, 4.2), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    shown = ax.imshow(confusion, cmap="Blues")
    for (i, j), count in np.ndenumerate(confusion):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                color="white" if count > confusion.max() / 2 else "black")
    classes = range(confusion.shape[0])
    ax.set_xticks(list(classes))
    ax.set_yticks(list(classes))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    fig.colorbar(shown, ax=ax, shrink=0.8)
    save_figure(fig, path)
    return path
