"""Vector data (N, D) from their sources: the 2-D toy distributions (genmodels.toy), arrays of a .npy/.npz file and
CSV files. Each ends as float32 vectors, memory-mapped where a .npy file allows; `data.load_data` splits them and
`dataset.DataSplits` standardises them with the training split's statistics. Every bad input raises a one-sentence
DataError (docs/ARCHITECTURE.md, "Errors").
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from .datafiles import MAX_CLASSES, check_fits, is_number, read_csv
from .dataset import Dataset, DataSplits
from .errors import ConfigError, DataError, GenmodelsError
from .toy import TEST_SIZE, TOYS, TRAIN_SIZE, GaussianMixture, toy_splits


def load_toy(name: str, size: int | None, seed: int) -> DataSplits:
    """The toy `name` (toy.TOYS): `size` training points (None: toy.TRAIN_SIZE), a fifth as many test points
    (TEST_SIZE by default), drawn from `seed` (the split seed); labels are the mixture component, where there is one."""
    train_size = TRAIN_SIZE if size is None else size
    test_size = TEST_SIZE if size is None else max(1, size // 5)
    try:
        splits = toy_splits(name, train_size, test_size, seed)
    except ConfigError as err:
        raise DataError(f"--toy-size {size!r} is not a size of toy data ({err}); give e.g. --toy-size 10000.") from None
    classes = TOYS[name].classes
    names = tuple(f"{'mode' if name in ('ring8', 'grid25') else 'part'} {k}" for k in range(classes)) or None
    return DataSplits(Dataset(splits.train.points, splits.train.labels, f"{name}/train"),
                      Dataset(splits.test.points, splits.test.labels, f"{name}/test"), name, names)


def vectors_from_array(a: np.ndarray, path: Path, what: str, limit: float | None = None) -> torch.Tensor:
    """A 2-D numeric array (N, D) as float32 vectors: a C-ordered float32 memory map stays mapped, others are
    converted once the copy fits in memory (check_fits). NaN and infinity are refused later, per split
    (dataset.check_finite)."""
    if a.dtype.kind not in "iuf":
        raise DataError(f"{path} {what} holds {a.dtype} values, not numbers; store vectors as floats.")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise DataError(f"{path} {what} has shape {a.shape}, which holds no values; give at least one row and column.")
    if isinstance(a, np.memmap) and not (a.dtype == np.float32 and a.flags.c_contiguous):
        check_fits(a.size * 4, f"{path} {what} ({a.dtype}, shape {a.shape}) copied as float32", limit,
                   "save it as a C-ordered float32 array (numpy.save), which is memory-mapped as it is")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if a.flags.writeable:
        return torch.from_numpy(a)
    with warnings.catch_warnings():  # read-only map: genmodels never writes data in place (Dataset.batch)
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(a)


def refuse_1d(a: np.ndarray, path: Path, what: str) -> None:
    """A 1-D array is neither images nor vectors: one sentence saying how to make it one or the other."""
    if a.ndim == 1:
        raise DataError(f"{path} {what} is 1-D (shape {a.shape}); save vectors as a 2-D array (N, D), "
                        "e.g. a.reshape(-1, 1) for one feature.")


def read_csv_vectors(path: Path, label_column: str | None, limit: float | None
                     ) -> tuple[torch.Tensor, torch.Tensor | None, tuple[str, ...] | None]:
    """A CSV file's vectors (N, D) float32, with the labels of `label_column` (integers as they are, text as
    the index of its name among the sorted names, which become the classes) and the class names."""
    header, rows = read_csv(path, limit)
    if not rows:
        raise DataError(f"{path} holds a header but no rows; give one row per vector.")
    label_at = None
    if label_column is not None:
        if label_column not in header:
            raise DataError(f"{path} has no column {label_column!r} for --label-column; its columns are "
                            f"{', '.join(header[:20])}.")
        label_at = header.index(label_column)
    features = [j for j in range(len(header)) if j != label_at]
    if not features:
        raise DataError(f"{path} holds only the label column; give at least one column of numbers.")
    out = np.empty((len(rows), len(features)), np.float32)
    for i, row in enumerate(rows):
        try:
            out[i] = [float(row[j]) for j in features]
        except ValueError:
            j = next(j for j in features if not is_number(row[j]))
            raise DataError(f"{path} line {i + 2} column {header[j]!r} holds {row[j][:40]!r}, not a number; "
                            "give numbers only (name a text column of classes with --label-column).") from None
    labels, classes = (None, None) if label_at is None else _labels([row[label_at].strip() for row in rows], path)
    return torch.from_numpy(out), labels, classes


def _labels(cells: list[str], path: Path) -> tuple[torch.Tensor, tuple[str, ...] | None]:
    """Non-negative whole numbers as labels themselves; otherwise class names, numbered in sorted order."""
    if all(c.isdigit() for c in cells):
        values = [int(c) for c in cells]
        if max(values) >= MAX_CLASSES:
            raise DataError(f"{path} has label {max(values)} but labels must be class indices under {MAX_CLASSES:,}; "
                            "number the classes 0, 1, 2, ...")
        return torch.tensor(values, dtype=torch.int64), None
    names = sorted(set(cells))
    if len(names) > MAX_CLASSES:
        raise DataError(f"{path} label column holds {len(names):,} different names, over the {MAX_CLASSES:,} classes "
                        "allowed; use a column of class names or indices.")
    index = {name: k for k, name in enumerate(names)}
    return torch.tensor([index[c] for c in cells], dtype=torch.int64), tuple(names)


def density_grid(source: str, points: np.ndarray, cells: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The true log-density of the toy `source` on a grid covering its mass and `points` (n, 2): x (cells,),
    y (cells,), log p (cells, cells); None for data whose density is unknown (any source but a toy)."""
    if source not in TOYS:
        return None
    return _log_density_grid(source, *_extent_with(source, points), cells)


def _extent_with(source: str, points: np.ndarray) -> tuple[float, float, float, float]:
    """The toy's extent (x0, x1, y0, y1) widened to take in the finite `points` (n, 2): samples far off the modes
    stay in the picture, up to 3x the data's own extent (a diverged sample does not shrink the rest)."""
    x0, x1, y0, y1 = TOYS[source].extent()
    finite = points[np.isfinite(points).all(1)] if len(points) else points
    if len(finite):
        span = max(x1 - x0, y1 - y0)
        lo, hi = np.maximum(finite.min(0), (x0 - span, y0 - span)), np.minimum(finite.max(0), (x1 + span, y1 + span))
        x0, y0, x1, y1 = min(x0, lo[0]), min(y0, lo[1]), max(x1, hi[0]), max(y1, hi[1])
    return x0, x1, y0, y1


def _log_density_grid(source: str, x0: float, x1: float, y0: float, y1: float,
                      cells: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The toy's true log-density on a cells x cells grid over [x0, x1] x [y0, y1]: x, y, log p (cells, cells)."""
    x, y = np.linspace(x0, x1, cells), np.linspace(y0, y1, cells)
    grid = np.stack(np.meshgrid(x, y), -1).reshape(-1, 2)
    return x, y, TOYS[source].log_density(grid).numpy().reshape(cells, cells)


def save_points(points: torch.Tensor, path: str | Path, source: str, reference: torch.Tensor | None = None,
                title: str = "") -> Path:
    """A picture of model outputs in data units (n, D) (plots.plot_points): over the toy's true density, or over
    the `reference` points (test points, data units) for other vectors; the first two columns above 2-D."""
    from .plots import plot_points  # imported here: matplotlib is slow to import

    p = points.detach().to("cpu", torch.float64).numpy()
    # The contours over the toy's own extent, computed once per process (a curve toy's density takes seconds, and
    # training draws this picture every epoch); the axes still take in every point.
    density = _toy_density(source) if source in TOYS and p.shape[1] == 2 else None
    ref = None if reference is None or density is not None else reference.detach().cpu().numpy()
    more = "" if p.shape[1] <= 2 else f" (columns 1 and 2 of {p.shape[1]})"
    return plot_points(p, path, reference=ref, density=density, title=title + more)


# The progress picture: the samples of the fixed noise at a few epochs, side by side (record_progress).
PROGRESS_PANELS = 6


class ProgressRecord(Protocol):
    """Where a run keeps the samples of its progress picture and the picture (rundir.RunDir)."""

    @property
    def progress_png(self) -> Path: ...

    def read_progress(self) -> dict[int, np.ndarray]: ...

    def write_progress(self, snapshots: dict[int, np.ndarray]) -> None: ...


def progress_epochs(epochs: int, panels: int = PROGRESS_PANELS) -> set[int]:
    """The epochs (0-based) of a run of `epochs` whose samples the progress picture keeps: every one of a short
    run, else the first, the last and between them evenly spaced on a log scale (a GAN finds or drops modes in its
    first epochs, and changes less later). A function of the run's length alone, so a resumed run keeps the same."""
    if epochs <= panels:
        return set(range(epochs))
    return {int(round(e)) - 1 for e in np.geomspace(1, epochs, panels)}


def record_progress(run: ProgressRecord, epoch: int, epochs: int, points: torch.Tensor, source: str,
                    reference: torch.Tensor | None, family: str) -> None:
    """At the epochs progress_epochs picks: the samples of the fixed noise at the end of `epoch` (0-based; points
    (n, D) in data units, the first two columns kept) join the run's record, written atomically, and the picture
    is drawn again from it (save_progress). Points recorded for later epochs are dropped: they belong to a run
    that stopped before its checkpoint, and the epochs redone after --resume record them again, alike."""
    if epoch not in progress_epochs(epochs):
        return
    try:
        kept = {e: p for e, p in run.read_progress().items() if e < epoch}
    except GenmodelsError:  # a damaged record: a new one replaces it
        kept = {}
    kept[epoch] = points[:, :2].detach().to("cpu", torch.float32).numpy()
    run.write_progress(kept)
    save_progress(kept, run.progress_png, source, reference, family, epochs)


def save_progress(snapshots: dict[int, np.ndarray], path: str | Path, source: str, reference: torch.Tensor | None,
                  family: str, epochs: int) -> Path:
    """The picture of a progress record (epoch, 0-based -> points (n, d), data units): up to PROGRESS_PANELS of its
    epochs, evenly picked, side by side over the toy's true density or the `reference` points (plots.plot_progress).
    The panels share axes that hold every point, up to 3x the data's own extent (as density_grid)."""
    from .plots import plot_progress  # imported here: matplotlib is slow to import

    shown = sorted(snapshots)
    if len(shown) > PROGRESS_PANELS:  # a run resumed for more epochs kept the marks of both lengths
        shown = [shown[round(i)] for i in np.linspace(0, len(shown) - 1, PROGRESS_PANELS)]
    panels = [(f"epoch {e + 1} of {max(epochs, e + 1)}", snapshots[e].astype(np.float64)) for e in shown]
    every = np.concatenate([p for _, p in panels])
    density = _toy_density(source) if source in TOYS and every.shape[1] == 2 else None
    ref = None if reference is None or density is not None else reference.detach().cpu().numpy()
    limits = None
    if density is not None:
        x0, x1, y0, y1 = TOYS[source].extent()
        pad = 0.05 * max(x1 - x0, y1 - y0)
        x0, x1, y0, y1 = _extent_with(source, every)
        limits = (x0 - pad, x1 + pad, y0 - pad, y1 + pad)
    return plot_progress(panels, path, reference=ref, density=density, limits=limits,
                         title=f"{family}: the samples of one fixed noise batch during training")


@functools.lru_cache(maxsize=8)
def _toy_density(source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The toy's true log-density on a grid over its own extent, a tenth wider each side (the contours drawn lie
    within it): computed once per process, as a curve's density (numerical quadrature) takes a while (about 3 s
    of CPU at 100 cells a side; a mixture's narrow modes need 200 cells, which cost it a fraction of a second)."""
    cells = 200 if isinstance(TOYS[source], GaussianMixture) else 100
    x0, x1, y0, y1 = TOYS[source].extent()
    dx, dy = (x1 - x0) / 10, (y1 - y0) / 10
    return _log_density_grid(source, x0 - dx, x1 + dx, y0 - dy, y1 + dy, cells)
