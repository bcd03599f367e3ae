"""`genmodels compare`: several run directories side by side in one HTML page.

Reads the run directories only (config, weights, test metrics, metrics log, loss curve); every
picture is drawn into a temporary folder with the same functions the single-run commands use,
then embedded in the page, so nothing is ever written into a run."""

from __future__ import annotations

import tempfile
from pathlib import Path

from .. import runs
from ..errors import GenmodelsError
from ..features import fingerprint
from ..fileio import MiB, atomic_write, read_bounded
from ..plots import plot_curves
from ..runlog import read_history
from ..toy import TOYS
from ..vectordata import save_progress
from .html import render
from .summary import RunSummary

# A vector run's samples and reconstructions are scatters in the data plane: as many points as the picture
# training draws each epoch (training.VECTOR_POINTS), where an image grid shows 64 samples and 16 pairs.
POINTS = 1000


def _count(run: runs.Run, images: int) -> int:
    return POINTS if run.vectors else images


# A conditional run's samples: one labelled row per class (`sample --class all`), this many a row, fewer for many
# classes so that the grid stays about as large.
PER_CLASS = 8


def _samples(run: runs.Run, path: Path) -> Path:
    if _conditional(run) and not run.vectors:
        classes = runs.generative(run).classes
        return runs.sample(run, classes * max(1, min(PER_CLASS, 160 // classes)), path, klass="all")
    return runs.sample(run, _count(run, 64), path)


def _conditional(run: runs.Run) -> bool:
    return bool(getattr(run.model, "conditional", False))


# Each section's picture: the capability it needs, how it is drawn (through the same functions as
# sample/reconstruct/interpolate/latent), and the short note shown where a family lacks the capability.
DRAW = {
    "samples": ("samples", _samples, "cannot sample (no generative model)"),
    "reconstructions": ("encodes", lambda run, path: runs.reconstruct(run, path, n=_count(run, 16)),
                        "no encoder: no reconstructions"),
    "interpolation": ("decodes", lambda run, path: _interpolation(run, path), "no latent space to walk"),
    "latent": ("encodes", lambda run, path: runs.latent(run, path), "no encoder: no latent codes"),
}


def _interpolation(run: runs.Run, path: Path) -> Path:
    """Six walks, or as many as the test split has pairs of images for a model that walks between codes."""
    pairs = max(1, min(6, len(run.data.test) // 2)) if run.model.encodes else 6
    return runs.interpolate(run, path, pairs=pairs, steps=10)


def labels(run_dirs: list[Path]) -> list[str]:
    """Each run's directory name; parent/name where two runs share a name."""
    names = [d.name or str(d) for d in run_dirs]
    return [f"{d.parent.name}/{d.name}" if names.count(n) > 1 else n for d, n in zip(run_dirs, names)]


def training_curve(run: runs.Run, tmp: Path) -> bytes | str:
    """The run's training curves (loss.png), or a fresh plot from its metrics log."""
    run_dir = run.dir
    if run_dir.loss_plot.is_file():  # a regular file (never a pipe), of a picture's size
        return read_bounded(run_dir.loss_plot, "loss plot", 64 * MiB)
    history = read_history(run_dir)
    if history and plot_curves(history, tmp / "curve.png", run.model.curves):
        return (tmp / "curve.png").read_bytes()
    return "no training loss logged"


def progress_picture(run: runs.Run, tmp: Path) -> bytes | str:
    """A vector run's samples of the fixed noise at a few epochs (vectordata.save_progress), drawn again from what
    training recorded (progress.npz); a note where there is none."""
    cfg = run.config
    if not run.model.samples:
        return f"{cfg.family}: {DRAW['samples'][2]}"
    try:
        snapshots = run.dir.read_progress()
    except GenmodelsError as err:
        return str(err)
    if not snapshots:
        return f"{cfg.family}: no samples were recorded during training"
    test = None if cfg.data.source in TOYS else run.in_units(run.data.test.batch(slice(0, POINTS)))
    return save_progress(snapshots, tmp / "progress.png", cfg.data.source, test, cfg.family,
                         cfg.total_epochs()).read_bytes()


def summarise(run: runs.Run, name: str, tmp: Path) -> RunSummary:
    """Metrics and pictures of one loaded run; pictures are drawn under tmp."""
    cfg = run.config
    code = getattr(cfg.model, "latent_dim", None) or (getattr(cfg.model, "layers", None) or [None])[-1]
    about = f"{cfg.family}" + (f", code {code}" if code else "") + f", {cfg.train.epochs} ep, {cfg.data.source}"
    summary = RunSummary(name, about, run.dir.read_eval(), family=cfg.family, code=code,
                         epochs=(run.dir.trained_epochs() or 0, cfg.total_epochs()),
                         train_seconds=run.dir.train_seconds(), vectors=run.vectors,
                         conditional=_conditional(run), classes=runs.class_names(run) if _conditional(run) else None)
    for key, (capability, draw, why_not) in DRAW.items():
        if getattr(run.model, capability):
            summary.pictures[key] = draw(run, tmp / f"{key}.png").read_bytes()
        else:
            summary.pictures[key] = f"{cfg.family}: {why_not}"
    if run.vectors:
        summary.pictures["progress"] = progress_picture(run, tmp)
    summary.pictures["curves"] = training_curve(run, tmp)
    return summary


def _same_data(loaded: list[runs.Run], dirs: list[Path]) -> None:
    """Refuse runs trained on different data: their metrics are measured on different test images (and
    FID in different feature spaces), so one table of them would compare nothing. The same data spelled
    two ways (a name and its folder) are the same: the images' fingerprint decides."""
    def where(run: runs.Run) -> str:
        return run.config.data.source + (f" in {run.config.data.data_dir}" if run.config.data.data_dir else "")

    def images(run: runs.Run) -> str:  # run.data is checked against the recorded fingerprint: no second hash
        data = run.data
        return run.config.data.fingerprint or fingerprint(data)

    first = images(loaded[0])
    for run, d in zip(loaded[1:], dirs[1:]):
        if images(run) != first:
            raise GenmodelsError(f"{d} and {dirs[0]} were trained on different data ({where(run)}, {where(loaded[0])}: "
                                 "other images), so their metrics are measured on different test images; compare "
                                 "runs of one dataset at a time.")


def compare(run_dirs: list[str | Path], out: str | Path, device: str = "cpu",
            title: str = "genmodels comparison") -> Path:
    """Write the comparison of `run_dirs` to the HTML file `out` and return its path."""
    if not run_dirs:
        raise GenmodelsError("compare needs at least one run directory; pass the --out folders of training runs.")
    out = runs.output_file(out, ".html")  # an .html file, not a folder: never a run's own file
    dirs = [Path(d) for d in run_dirs]
    loaded = [runs.load_run(d, device) for d in dirs]  # every run checked before any work
    _same_data(loaded, dirs)
    summaries: list[RunSummary] = []
    with tempfile.TemporaryDirectory(prefix="genmodels-compare-") as tmp:
        for run, name, d in zip(loaded, labels(dirs), dirs):
            run_tmp = Path(tmp) / str(len(summaries))
            run_tmp.mkdir()
            summaries.append(summarise(run, name, run_tmp))
            # What `genmodels explore` can open: a run that decodes (on images or vectors).
            summaries[-1].path = str(d) if run.model.decodes else None
    atomic_write(out, render(summaries, title).encode("utf-8"))
    return out
