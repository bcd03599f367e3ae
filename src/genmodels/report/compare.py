"""`genmodels compare`: several run directories side by side in one HTML page.

Reads the run directories only (config, weights, eval.json, metrics.jsonl, loss.png); every
picture is drawn into a temporary folder with the same functions the single-run commands use,
then embedded in the page, so nothing is ever written into a run."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from .. import checkpoint as ckpt
from .. import runs
from ..errors import GenmodelsError
from .html import RunSummary, render
from .plots import plot_loss_curve

# The picture each section draws, through the same functions as sample/reconstruct/interpolate/latent.
DRAW = {
    "samples": lambda run, path: runs.sample(run, 64, path),
    "reconstructions": lambda run, path: runs.reconstruct(run, path, n=16),
    "interpolation": lambda run, path: runs.interpolate(run, path, pairs=6, steps=10),
    "latent": lambda run, path: runs.latent(run, path),
}
WHY_NOT = {  # the short note shown where a family has no such picture
    "samples": "cannot sample (no generative model)",
    "reconstructions": "no encoder: no reconstructions",
    "interpolation": "no latent space to walk",
    "latent": "no encoder: no latent codes",
}


def labels(run_dirs: list[Path]) -> list[str]:
    """Each run's directory name; parent/name where two runs share a name."""
    names = [d.name or str(d) for d in run_dirs]
    return [f"{d.parent.name}/{d.name}" if names.count(n) > 1 else n for d, n in zip(run_dirs, names)]


def read_eval(run_dir: Path) -> dict | None:
    path = run_dir / "eval.json"
    if not path.exists():
        return None
    try:
        values = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise GenmodelsError(f"{path} is not valid JSON; run genmodels evaluate {run_dir} again.") from None
    return values if isinstance(values, dict) else None


def training_curve(run_dir: Path, tmp: Path) -> bytes | str:
    """The run's loss.png, or a fresh plot from its metrics.jsonl."""
    if (run_dir / "loss.png").is_file():
        return (run_dir / "loss.png").read_bytes()
    path = run_dir / ckpt.METRICS
    if path.is_file():
        history = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if plot_loss_curve(history, tmp / "loss.png"):
            return (tmp / "loss.png").read_bytes()
    return "no training loss logged"


def summarise(run: runs.Run, name: str, tmp: Path) -> RunSummary:
    """Metrics and pictures of one loaded run; pictures are drawn under tmp."""
    cfg = run.config
    code = getattr(cfg.model, "latent_dim", None) or (getattr(cfg.model, "layers", None) or [None])[-1]
    about = f"{cfg.family}" + (f", code {code}" if code else "") + f", {cfg.train.epochs} ep, {cfg.data.source}"
    summary = RunSummary(name, about, read_eval(run.dir))
    for key, draw in DRAW.items():
        path = tmp / f"{key}.png"
        try:
            draw(run, path)
            summary.pictures[key] = path.read_bytes()
        except GenmodelsError:
            summary.pictures[key] = f"{cfg.family}: {WHY_NOT[key]}"
    summary.pictures["curves"] = training_curve(run.dir, tmp)
    return summary


def compare(run_dirs: list[str | Path], out: str | Path, device: str = "cpu",
            title: str = "genmodels comparison") -> Path:
    """Write the comparison of `run_dirs` to the HTML file `out` and return its path."""
    if not run_dirs:
        raise GenmodelsError("compare needs at least one run directory; pass the --out folders of training runs.")
    dirs = [Path(d) for d in run_dirs]
    loaded = [runs.load_run(d, device) for d in dirs]  # every run checked before any work
    out = Path(out)
    if out.is_dir():
        raise GenmodelsError(f"{out} is a directory; give --out a file name such as {out / 'report.html'}.")
    summaries = []
    with tempfile.TemporaryDirectory(prefix="genmodels-compare-") as tmp:
        for run, name in zip(loaded, labels(dirs)):
            run_tmp = Path(tmp) / str(len(summaries))
            run_tmp.mkdir()
            summaries.append(summarise(run, name, run_tmp))
    out.parent.mkdir(parents=True, exist_ok=True)
    ckpt.atomic_write(out, render(summaries, title).encode("utf-8"))
    return out
