"""`genmodels zoo`: the lecture in one command. Trains PCA, the autoencoders (plain, denoising,
contractive, sparse, stacked denoising), a VAE and a GAN on one dataset with presets sized for a
laptop CPU, evaluates each, and writes the comparison report OUT/report.html.

Every run goes through the library's own engine.train and evaluation.evaluate into OUT/<name>, so each
is an ordinary run directory that every other command reads. Re-running with the same OUT skips
finished runs with the same settings and resumes unfinished ones."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .data import load_data
from .engine import train
from .errors import GenmodelsError
from .evaluation import evaluate
from .models import RunConfig, build_model, build_run_config
from .report.compare import compare
from .rundir import RunDir
from .runs import load_run


@dataclass(frozen=True)
class Preset:
    """One model of the zoo: its family, model settings and training settings."""

    family: str
    model: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)

    def config(self, source: str) -> RunConfig:
        return build_run_config({"family": self.family, "model": self.model, "data": {"source": source},
                                 "train": self.train}, where=f"the zoo preset for {self.family}")


# Digits: 1,437 training images of 8x8 pixels, so every net is small and every epoch a fraction of a
# second; one torch thread (a second only spins on nets this small). Codes of 8 (an 8x compression)
# except where the idea needs more units: the contractive AE's one sigmoid layer and the sparse AE's
# overcomplete code, of which only a fraction rho should be active.
_DIGITS_TRAIN = {"epochs": 200, "batch_size": 64, "lr": 2e-3, "threads": 1}
DIGITS = {
    "pca": Preset("pca", {"latent_dim": 8}, {"threads": 1}),
    "ae": Preset("ae", {"latent_dim": 8, "hidden": [128]}, _DIGITS_TRAIN),
    "denoising-ae": Preset("ae", {"latent_dim": 8, "hidden": [128], "corrupt": ["mask:0.25"]}, _DIGITS_TRAIN),
    "contractive-ae": Preset("ae", {"latent_dim": 32, "hidden": [], "code_activation": "sigmoid",
                                    "contractive": 0.1}, _DIGITS_TRAIN),
    "sparse-ae": Preset("ae", {"latent_dim": 100, "hidden": [128], "code_activation": "sigmoid",
                               "sparse_kl": 0.5, "sparse_rho": 0.05}, _DIGITS_TRAIN),
    "stacked-dae": Preset("sdae", {"layers": [128, 64, 8], "pretrain_epochs": 50, "corrupt": ["mask:0.25"]},
                          _DIGITS_TRAIN),
    "vae": Preset("vae", {"latent_dim": 8, "hidden": [128]}, _DIGITS_TRAIN),
    # The GAN with its defaults, as the README's command trains it (benchmarks/gan_quality.py).
    "gan": Preset("gan", {}, {"epochs": 200, "threads": 1}),
}

# Fashion-MNIST: 60,000 training images of 28x28; the README's sizes, a few epochs each
# (tens of seconds to a few minutes per model on two cores), all cores.
_FASHION_TRAIN = {"epochs": 10, "batch_size": 100}
FASHION_MNIST = {
    "pca": Preset("pca", {"latent_dim": 30}),
    "ae": Preset("ae", {"latent_dim": 30, "hidden": [512]}, _FASHION_TRAIN),
    "denoising-ae": Preset("ae", {"latent_dim": 30, "hidden": [512], "corrupt": ["mask:0.25"]}, _FASHION_TRAIN),
    "contractive-ae": Preset("ae", {"latent_dim": 256, "hidden": [], "code_activation": "sigmoid",
                                    "contractive": 0.1}, _FASHION_TRAIN),
    "sparse-ae": Preset("ae", {"latent_dim": 1000, "hidden": [512], "code_activation": "sigmoid",
                               "sparse_kl": 0.5, "sparse_rho": 0.05}, _FASHION_TRAIN),
    "stacked-dae": Preset("sdae", {"layers": [1000, 500, 250, 30], "pretrain_epochs": 2}, _FASHION_TRAIN),
    "vae": Preset("vae", {"latent_dim": 16, "hidden": [512]}, _FASHION_TRAIN),
    # The GAN with its defaults (DCGAN-style nets for 28x28), trained within 15 minutes on two cores.
    "gan": Preset("gan", {}, {"epochs": 10}),
}

PRESETS: dict[str, dict[str, Preset]] = {"digits": DIGITS, "fashion-mnist": FASHION_MNIST}

# Moderate evaluation: K=200 importance samples for the VAE's log-likelihood, Parzen on for every
# model that samples (evaluation.evaluate's defaults otherwise).
EVALUATE: dict[str, Any] = {"importance_samples": 200, "parzen_samples": 10_000}

# The metrics the printed summary shows, one column each (the report has them all).
HEADLINE = ["reconstruction_sse", "linear_probe_accuracy", "knn_accuracy", "elbo", "log_likelihood_iw",
            "parzen_log_likelihood", "fid", "precision", "recall", "sharpness", "test_error"]


def _comparable(cfg: RunConfig) -> dict:
    """The settings that decide what a run learns, but for its length (a shorter run with the same
    settings is resumed) and where or on how many threads it ran."""
    values = json.loads(cfg.to_json())
    values.pop("shape", None)
    values["data"].pop("fingerprint", None)  # recorded by training; resuming checks it against the data
    for key in ("epochs", "threads", "device"):
        values["train"].pop(key, None)
    return values


def _first_difference(a: dict, b: dict, prefix: str = "") -> str:
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            if isinstance(a.get(key), dict) and isinstance(b.get(key), dict):
                return _first_difference(a[key], b[key], f"{prefix}{key}.")
            return f"{prefix}{key} is {a.get(key)!r}, the preset has {b.get(key)!r}"
    return "none"


def run_state(run_dir: Path, config: RunConfig) -> str:
    """'new' (nothing there), 'done' (same settings, all epochs), 'partial' (same settings, fewer
    epochs: resume it) or a sentence saying how the run there differs from the preset."""
    rd = RunDir(run_dir)
    if not rd.holds_run():
        return "new"
    saved = rd.read_config()
    if _comparable(saved) != _comparable(config):
        return _first_difference(_comparable(saved), _comparable(config))
    if not rd.checkpoint.exists() or not rd.weights.exists():
        return "new"  # stopped before its first epoch ended: nothing worth keeping
    done = rd.trained_epochs()
    total = build_model(saved.family, saved.model, saved.shape).total_epochs(config.train.epochs)
    if done == total:
        return "done"
    return "partial" if done < total else f"it has trained {done} epochs, the preset asks for {total}"


def feature_network(splits, where: Path, progress: bool = False, log: Callable[[str], None] = print):
    """The zoo's feature classifier for FID and the other sample-quality metrics: reused from `where`
    when it was trained on exactly this data, else trained there once (genmodels.features)."""
    from .features import load_features, train_features

    try:
        return load_features(where, splits)
    except GenmodelsError:  # absent, unfinished or for other data: train it afresh
        rd = RunDir(where)
        held = rd.read_config().family if rd.holds_run() else None
        if held not in (None, "classifier"):  # replace only a feature network, never another run
            raise GenmodelsError(f"{where} holds a {held} run, where the zoo keeps its feature network; "
                                 "move it away or choose another --out.") from None
        log(f"[features] training the feature classifier into {where} (for FID, KID, precision/recall)")
        return train_features(splits, where, progress=progress, overwrite=held == "classifier")


def run_zoo(data: str = "digits", out: str | Path = "runs/zoo", *, overwrite: bool = False, progress: bool = True,
            presets: dict[str, Preset] | None = None, evaluate_options: dict[str, Any] | None = None,
            features: Any = None, log: Callable[[str], None] = print) -> tuple[Path, dict[str, dict]]:
    """Train, evaluate and compare every preset of `data` into `out`; returns the report's path and
    each run's metrics.

    presets: replaces PRESETS[data] (tests use tiny ones). overwrite: retrain every run from scratch.
    features: the feature network for the sample-quality metrics (FID, KID, precision/recall, ...),
    as a FeatureNetwork or its directory; None trains it once into OUT/features (or reuses it there)."""
    if presets is None:
        if data not in PRESETS:
            raise GenmodelsError(f"The zoo has presets for {' and '.join(PRESETS)}, not {data!r}; use one of those.")
        presets = PRESETS[data]
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise GenmodelsError(f"{out} is a file, not a directory; choose another --out for the zoo.")
    splits = load_data(data)
    options = {**EVALUATE, **(evaluate_options or {})}
    options["features"] = features if features is not None else feature_network(splits, out / "features", progress, log)
    results = {}
    for i, (name, preset) in enumerate(presets.items(), 1):
        log(f"[{i}/{len(presets)}] {name} ({preset.family})")
        results[name] = _train_and_evaluate(preset.config(data), out / name, splits, overwrite, progress, options, log)
    report = compare([out / name for name in presets], out / "report.html", title=f"genmodels zoo: {data}")
    return report, results


def _train_and_evaluate(config: RunConfig, run_dir: Path, splits, overwrite: bool, progress: bool,
                        options: dict[str, Any], log: Callable[[str], None]) -> dict:
    state = "new" if overwrite else run_state(run_dir, config)
    if state not in ("new", "done", "partial"):
        raise GenmodelsError(f"{run_dir} holds a run with other settings ({state}); pass --overwrite to retrain "
                             "the zoo, or choose another --out.")
    start, seconds = time.perf_counter(), None
    if state == "done":
        log(f"  finished run kept: {run_dir}")
    else:
        train(config, run_dir, resume=state == "partial", overwrite=overwrite, progress=progress, data=splits)
        seconds = time.perf_counter() - start
        log(f"  {'resumed' if state == 'partial' else 'trained'} in {seconds:.1f} s")
    saved = RunDir(run_dir).read_eval() if state == "done" else None
    if saved is not None:
        return saved
    run = load_run(run_dir, data=splits)  # already loaded: spare evaluate a second read
    # train_seconds: wall time of this call's training (absent for kept runs); not part of the saved metrics.
    return {**evaluate(run, **options), **({"train_seconds": round(seconds, 1)} if seconds else {})}


def _cell(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else "\u2013" if v is None else str(v)


def summary_table(results: dict[str, dict], keys: list[str] = HEADLINE) -> str:
    """A compact text table: one row per run, one column per headline metric that any run has."""
    keys = [k for k in keys if any(k in r for r in results.values())]
    header = ["run", "family", *keys]
    rows = [[name, str(r.get("family", "")), *(_cell(r.get(k)) for k in keys)] for name, r in results.items()]
    widths = [max(len(row[j]) for row in [header, *rows]) for j in range(len(header))]
    fmt = lambda row: "  ".join(c.ljust(w) if j < 2 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths)))  # noqa: E731
    return "\n".join(fmt(row) for row in [header, *rows])
