"""`genmodels zoo`: the lecture in one command. Trains PCA, the autoencoders (plain, denoising,
contractive, sparse, stacked denoising), a VAE and a GAN on one dataset with presets sized for a
laptop CPU, evaluates each, and writes the comparison report OUT/report.html.

Every run goes through the library's own engine.train and evaluation.evaluate into OUT/<name>, so each
is an ordinary run directory that every other command reads. Re-running with the same OUT skips
finished runs with the same settings and resumes unfinished ones."""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .config import shown
from .data import load_data
from .engine import train
from .errors import GenmodelsError
from .evaluation import evaluate
from .models import RunConfig, build_model, build_run_config
from .models.gan import GANConfig
from .nn import resolve_arch
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

# --- presets derived from the data and a time budget ------------------------------------------

DEFAULT_BUDGET = 10.0  # minutes: a coffee break on a laptop
MAX_EPOCHS = 200  # as the digits presets: more buys nothing the lecture shows
# Seconds of training per image per epoch at 784 values an image (28x28 grey), batch 100, measured on the
# project's shared 2-core machine while two other jobs ran (about three times the quiet machine's, README,
# the Fashion-MNIST zoo). They fix the runs' costs relative to one another; the pilot (`measure_speed`)
# scales them all to the machine at hand. The MLPs scale with C*H*W values, the DCGAN with H*W pixels;
# stacked-dae: one fine-tuning epoch. EPOCH_SECONDS: each epoch's held-out pass, picture and checkpoint.
SECONDS_PER_IMAGE = {"ae": 0.35e-3, "denoising-ae": 0.35e-3, "contractive-ae": 0.2e-3, "sparse-ae": 0.7e-3,
                     "stacked-dae": 0.75e-3, "vae": 0.35e-3, "gan": 1.8e-3}
EPOCH_SECONDS = 1.0
# The derived GAN's DCGAN nets: half the default channels, 0.6 times the time a step (measured), so a
# short budget buys more steps, which matter more to a young GAN than width.
GAN_CHANNELS = [32, 64]
SDAE_PRETRAIN_EPOCHS = 1  # per layer: half the Fashion-MNIST preset's, which had 7.5 times the images
# Shares of the training time left once the feature network and the evaluation are reserved.
SHARES = {"ae": 0.06, "denoising-ae": 0.06, "contractive-ae": 0.04, "sparse-ae": 0.06, "stacked-dae": 0.1,
          "vae": 0.18, "gan": 0.5}
# Evaluation, measured the same way and scaled by the pilot too: a linear probe per probe image (PROBE_WEIGHT: the pixel baseline,
# fitted once for all runs, per 784 values, and each run's codes, the wide sigmoid codes slowest to fit),
# a sampler's Parzen and quality metrics per sample, the VAE's bound per test image and importance
# sample, and a fixed cost per run (loading, the PCA baseline, pictures).
EVAL_PROBE, EVAL_SAMPLE, EVAL_IW, EVAL_RUN = 4e-3, 1.5e-3, 3e-5, 1.0
PROBE_WEIGHT = {"ae": 0.3, "denoising-ae": 0.3, "contractive-ae": 2.0, "sparse-ae": 15.0, "stacked-dae": 0.3,
                "vae": 0.3}
FEATURES_SECONDS_PER_IMAGE = 0.8e-3  # one epoch of the feature classifier, 784 values


def _check_budget(budget: Any) -> float:
    ok = isinstance(budget, (int, float)) and not isinstance(budget, bool) and math.isfinite(budget) and budget > 0
    if not ok:
        raise GenmodelsError(f"--budget must be a number of minutes above 0, got {shown(budget)}; give e.g. --budget 10.")
    return float(budget)


@dataclass(frozen=True)
class Plan:
    """The zoo chosen for one dataset and budget: its presets, the evaluation's options, and the
    estimated seconds of the feature network and of each run (training and evaluation)."""

    presets: dict[str, Preset]
    evaluate: dict[str, Any]
    seconds: dict[str, float]
    budget: float  # minutes
    feature_epochs: int = 5
    train_seconds: dict[str, float] = field(default_factory=dict)  # each run's training alone
    epoch_seconds: dict[str, float] = field(default_factory=dict)  # one epoch of each trained run

    def lines(self) -> list[str]:
        """One line per run (family, arch, epochs, estimated minutes), the feature network's first."""
        out = []
        if "features" in self.seconds:
            out.append(f"  {'features':<15}{'classifier':<12}{'auto':<18}{self.feature_epochs:>4} epochs   "
                       f"~{self.seconds['features'] / 60:.1f} min")
        for name, p in self.presets.items():
            arch = "-" if p.family == "pca" else p.model.get("arch", "mlp")
            epochs = p.train.get("epochs", 1)
            if p.family == "sdae":
                epochs = f"{p.model['pretrain_epochs']}x{len(p.model['layers'])}+{epochs}"
            out.append(f"  {name:<15}{p.family:<12}{arch:<18}{epochs!s:>4} epochs   ~{self.seconds[name] / 60:.1f} min")
        total = sum(self.seconds.values()) / 60
        eval_note = ", ".join(f"{k} {v}" for k, v in self.evaluate.items())
        out.append(f"  estimated {total:.1f} min of a {self.budget:g} min budget; evaluation: {eval_note}")
        return out


def derive_plan(shape: tuple[int, int, int], n_train: int, n_test: int, budget: float = DEFAULT_BUDGET,
                labelled: bool = True, speed: float = 1.0) -> Plan:
    """The eight runs for images of `shape` (C, H, W), with epochs that fit `budget` minutes.

    Sizes scale from the Fashion-MNIST presets by the D = C*H*W values of an image: codes of about
    sqrt(D) (30 for 28x28, 8 for 8x8), MLP widths of 2D up to 512 (the stacked-dae's first layer up to
    1000), the contractive AE's one sigmoid layer D/3 up to 256, the sparse AE's code 1.5D up to 1000.
    The GAN's arch follows "auto" (DCGAN-style, GAN_CHANNELS, for 16 px a side or more, else the MLP
    with its default widths); the autoencoders and the VAE are MLPs, as in the Fashion-MNIST presets,
    whose C*H*W inputs carry colour.

    Time: each run's epoch costs n_train (plus n_test/3 for its held-out pass) times
    SECONDS_PER_IMAGE, scaled by the image's size and by `speed`, the machine's slowness against
    those constants (`measure_speed`, a pilot on the data; 1: the constants as they are). From the
    budget come off the feature network and the evaluation (at most a third of the budget: sample
    and probe counts shrink to fit), and what is left is split by SHARES (the GAN and the VAE the
    largest); each run gets the epochs its share pays for, 1 to MAX_EPOCHS. For one speed the rule
    is deterministic, and a larger budget never gives fewer epochs. As it goes, run_zoo rescales each
    run's epochs to the time left (`rescaled_epochs`), as the load of a shared machine changes."""
    budget = _check_budget(budget)
    per_image = {name: cost * speed for name, cost in SECONDS_PER_IMAGE.items()}
    eval_probe, eval_sample, eval_iw, eval_run = (cost * speed for cost in (EVAL_PROBE, EVAL_SAMPLE, EVAL_IW, EVAL_RUN))
    c, h, w = shape
    d = c * h * w
    k = min(d, max(2, min(64, round(math.sqrt(d)))))
    hidden = min(512, 2 ** math.ceil(math.log2(2 * d)))
    gan = GANConfig()
    conv = resolve_arch(gan.arch, shape, gan.channels) == "conv"
    scale = _scales(shape, conv)
    per_epoch = {name: per_image[name] * scale[name] * (n_train + n_test / 3) + EPOCH_SECONDS * speed
                 for name in SHARES}

    # The evaluation: probes and sample counts grow with the budget (in minutes of the constants' machine)
    # up to evaluate's own amounts.
    seconds, effective = budget * 60, budget / speed
    probe = min(10_000, n_train, max(500, round(100 * effective))) if labelled else 0
    samples = min(10_000, max(1000, 500 * round(budget * 60 * 0.1 / (eval_sample * d / 784) / 500)))
    iw = 200 if effective >= 5 else 50
    options = {"importance_samples": iw, "probe_train": probe, "parzen_samples": samples,
               "quality_samples": samples if labelled else 0}
    evaluation = {name: eval_run for name in ("pca", *SHARES)}
    evaluation["pca"] += eval_probe * probe * (4 * d / 784 + 0.3)  # the first run with codes fits the pixel baseline
    for name, weight in PROBE_WEIGHT.items():
        evaluation[name] += eval_probe * probe * weight
    for name in ("vae", "gan"):
        evaluation[name] += eval_sample * samples * d / 784
    evaluation["vae"] += eval_iw * iw * n_test * d / 784
    # The feature network: its 5 epochs (the classifier's default), fewer where they would take more than
    # a fifth of the budget, 2 at least.
    feature_epoch = FEATURES_SECONDS_PER_IMAGE * speed * n_train * d / 784
    feature_epochs = max(2, min(5, int(seconds / 5 / feature_epoch)))
    features = feature_epoch * feature_epochs if labelled else 0.0
    # Reserved up front: the feature network and at most a third of the budget for the evaluation, so
    # that the training time left grows with the budget.
    reserved = features + min(sum(evaluation.values()), seconds / 3)
    left = max(0.0, seconds - reserved)
    layers = [max(k, min(1000, 2 * d)), max(k, min(500, d)), max(k, min(250, d // 2)), k]
    # The stacked-dae's pretraining, as Fashion-MNIST's, is the same for every budget (so a larger one
    # resumes the run), paid out of its share; a lower layer's epoch costs about half a full one.
    pretrain_cost = 0.5 * SDAE_PRETRAIN_EPOCHS * len(layers) * per_epoch["stacked-dae"]
    first = {name: pretrain_cost if name == "stacked-dae" else 0.0 for name in SHARES}
    epochs = {name: max(1, min(MAX_EPOCHS, int((SHARES[name] * left - first[name]) / per_epoch[name])))
              for name in SHARES}
    train = {"batch_size": 100}
    presets = {
        "pca": Preset("pca", {"latent_dim": min(k, n_train)}),
        "ae": Preset("ae", {"latent_dim": k, "hidden": [hidden]}, {**train, "epochs": epochs["ae"]}),
        "denoising-ae": Preset("ae", {"latent_dim": k, "hidden": [hidden], "corrupt": ["mask:0.25"]},
                               {**train, "epochs": epochs["denoising-ae"]}),
        "contractive-ae": Preset("ae", {"latent_dim": min(256, max(k, d // 3)), "hidden": [], "code_activation": "sigmoid",
                                        "contractive": 0.1}, {**train, "epochs": epochs["contractive-ae"]}),
        "sparse-ae": Preset("ae", {"latent_dim": min(1000, 3 * d // 2), "hidden": [hidden], "code_activation": "sigmoid",
                                   "sparse_kl": 0.5, "sparse_rho": 0.05}, {**train, "epochs": epochs["sparse-ae"]}),
        "stacked-dae": Preset("sdae", {"layers": layers, "pretrain_epochs": SDAE_PRETRAIN_EPOCHS},
                              {**train, "epochs": epochs["stacked-dae"]}),
        "vae": Preset("vae", {"latent_dim": min(16, k), "hidden": [hidden]}, {**train, "epochs": epochs["vae"]}),
        "gan": Preset("gan", {"arch": "conv", "channels": GAN_CHANNELS} if conv else {"arch": "mlp"},
                      {"epochs": epochs["gan"]}),
    }
    # The GAN and the VAE first: the largest shares, so a run that overruns later costs a cheap one its epochs.
    presets = {name: presets[name] for name in ("gan", "vae", *[n for n in presets if n not in ("gan", "vae")])}
    cost = {name: per_epoch[name] * epochs[name] + first[name] for name in SHARES}
    estimate = {**({"features": features} if labelled else {}),
                "pca": 1.0 + evaluation["pca"], **{name: cost[name] + evaluation[name] for name in SHARES}}
    return Plan(presets, options, {name: estimate[name] for name in ("features", *presets) if name in estimate}, budget,
                feature_epochs, cost, per_epoch)


def rescaled_epochs(plan: Plan, name: str, seconds_left: float, spent: dict[str, float]) -> int:
    """Epochs for run `name` now that the runs before it have shown how fast the machine is (a shared
    machine's load changes): their training took `spent` seconds (by name) against the plan's estimate,
    and that ratio (0.25..4) rescales what the runs still to come need; `name`'s planned epochs are
    scaled by the time left over that need (its evaluation estimate kept), 1 to its planned epochs."""
    estimated = sum(plan.train_seconds[n] for n in spent)
    ratio = min(4.0, max(0.25, sum(spent.values()) / estimated)) if estimated > 0 else 1.0
    names = list(plan.presets)
    coming = [n for n in names[names.index(name):] if n in plan.train_seconds]
    need = sum(plan.train_seconds[n] * ratio + plan.seconds[n] - plan.train_seconds[n] for n in coming)
    planned = plan.presets[name].train["epochs"]
    # Never above the plan: time to spare is the budget's, not a cheap run's to take.
    return max(1, min(planned, int(planned * max(0.0, seconds_left) / need + 1e-9))) if need > 0 else planned


def _scales(shape: tuple[int, int, int], conv: bool) -> dict[str, float]:
    """Each run's cost against a 28x28 grey image's: C*H*W values for the MLPs, H*W pixels for the DCGAN."""
    c, h, w = shape
    scale = {name: c * h * w / 784 for name in SHARES}
    if conv:
        scale["gan"] = h * w / 784 * (c + 3) / 4  # the first layer alone sees the channels
    return scale


PILOT_IMAGES = {"ae": 2000, "gan": 1000}  # twenty and ten batches of 100: steps, not overheads


def measure_speed(splits, plan: Plan, where: Path) -> float:
    """The machine's slowness now against SECONDS_PER_IMAGE: two short epochs of the plan's ae and gan
    on the data's first images, trained into a temporary folder under `where`, the second epoch's
    training steps timed (the first warms up), over what the constants predict; clamped to 0.1..100."""
    import shutil
    import tempfile

    from .data import Dataset, DataSplits

    conv = plan.presets["gan"].model.get("arch") == "conv"
    scale = _scales(splits.shape, conv)
    measured = expected = 0.0
    where.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".pilot-", dir=where))
    try:
        for name, n in PILOT_IMAGES.items():
            n = min(n, len(splits.train))
            sub = DataSplits(Dataset(splits.train.stored(slice(0, n)), None, "pilot/train"),
                             Dataset(splits.test.stored(slice(0, 50)), None, "pilot/test"), splits.source)
            preset = plan.presets[name]
            config = replace(preset, train={**preset.train, "epochs": 2}).config(splits.source)
            with warnings.catch_warnings():  # a GAN of three steps looks collapsed: no news
                warnings.simplefilter("ignore")
                measured += train(config, tmp / name, progress=False, data=sub).epoch_seconds[-1]
            expected += SECONDS_PER_IMAGE[name] * scale[name] * n
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return min(100.0, max(0.1, measured / expected))


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


def run_state(run_dir: Path, config: RunConfig, at_least: bool = False) -> str:
    """'new' (nothing there), 'done' (same settings, all epochs), 'partial' (same settings, fewer
    epochs: resume it) or a sentence saying how the run there differs from the preset.
    at_least: a run with more epochs than the preset is 'done' too (a derived plan's epochs follow
    the machine's speed, so a second call may ask for fewer)."""
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
    if done == total or (at_least and done > total):
        return "done"
    return "partial" if done < total else f"it has trained {done} epochs, the preset asks for {total}"


def feature_network(splits, where: Path, progress: bool = False, log: Callable[[str], None] = print,
                    epochs: int | None = None):
    """The zoo's feature classifier for FID and the other sample-quality metrics: reused from `where`
    when it was trained on exactly this data, else trained there once (genmodels.features; epochs
    None: the classifier's default)."""
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
        return train_features(splits, where, epochs=epochs, progress=progress, overwrite=held == "classifier")


def run_zoo(data: str = "digits", out: str | Path = "runs/zoo", *, overwrite: bool = False, progress: bool = True,
            presets: dict[str, Preset] | None = None, evaluate_options: dict[str, Any] | None = None,
            features: Any = None, budget: float | None = None, speed: float | None = None,
            log: Callable[[str], None] = print) -> tuple[Path, dict[str, dict]]:
    """Train, evaluate and compare every preset of `data` into `out`; returns the report's path and
    each run's metrics.

    data: digits or fashion-mnist (the fixed presets of PRESETS, which refuse a budget), or any other
    source (an IDX folder, a .npy/.npz file, an image folder), whose presets and evaluation options
    `derive_plan` chooses from the data's shape to fit `budget` minutes (default DEFAULT_BUDGET) on this
    machine as fast as a pilot finds it (`measure_speed`), or as `speed` says (tests).
    presets: replaces the presets (tests use tiny ones). overwrite: retrain every run from scratch.
    features: the feature network for the sample-quality metrics (FID, KID, precision/recall, ...),
    as a FeatureNetwork or its directory; None trains it once into OUT/features (or reuses it there);
    data without labels gets none, and no sample-quality metrics."""
    began = time.perf_counter()
    if budget is not None:
        _check_budget(budget)
        if data in PRESETS:
            raise GenmodelsError(f"{data} has fixed presets (the README's tables), so --budget does not apply; drop "
                                 "it, or write the data as an IDX folder (genmodels data convert) to derive presets.")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise GenmodelsError(f"{out} is a file, not a directory; choose another --out for the zoo.")
    if data not in PRESETS and Path(data).expanduser().exists():
        data = str(Path(data).expanduser().resolve())  # runs outlive the working directory
    splits = load_data(data)
    labelled = splits.train.labels is not None and splits.test.labels is not None
    options, feature_epochs, plan = {**EVALUATE, **(evaluate_options or {})}, None, None
    if data in PRESETS:
        presets = presets if presets is not None else PRESETS[data]
    else:
        budget = DEFAULT_BUDGET if budget is None else budget
        args = (splits.shape, len(splits.train), len(splits.test), budget, labelled)
        if speed is None:
            start = time.perf_counter()
            speed = measure_speed(splits, derive_plan(*args), out)
            log(f"[pilot] {time.perf_counter() - start:.1f} s: this machine takes {speed:.2f} times the time "
                "the zoo's cost constants say")
        plan = derive_plan(*args, speed=speed)
        c, h, w = splits.shape
        log(f"[plan] {len(splits.train):,} training images of {h}x{w}x{c}, a {plan.budget:g} min budget:")
        for line in plan.lines():
            log(line)
        presets = presets if presets is not None else plan.presets
        options, feature_epochs = {**EVALUATE, **plan.evaluate, **(evaluate_options or {})}, plan.feature_epochs
    if features is None and not labelled:
        options["quality_samples"] = 0  # no labels, no feature classifier to compare samples in
    elif features is None:
        features = feature_network(splits, out / "features", progress, log, feature_epochs)
    options["features"] = features
    options["baselines"] = {}  # the pixel and PCA probes, fitted once for all runs
    results, spent = {}, {}
    for i, (name, preset) in enumerate(presets.items(), 1):
        log(f"[{i}/{len(presets)}] {name} ({preset.family})")
        if plan is not None and presets is plan.presets and name in SHARES:  # the time left, re-split
            left = plan.budget * 60 - (time.perf_counter() - began)
            epochs = rescaled_epochs(plan, name, left, spent)
            if epochs != preset.train["epochs"]:
                log(f"  {epochs} epochs, not the planned {preset.train['epochs']}: its part of the "
                    f"{max(left, 0) / 60:.1f} min left at the speed of the runs so far")
                preset = replace(preset, train={**preset.train, "epochs": epochs})
        results[name] = _train_and_evaluate(preset.config(data), out / name, splits, overwrite, progress, options, log,
                                            at_least=data not in PRESETS)
        if "train_seconds" in results[name] and name in SHARES:
            spent[name] = results[name]["train_seconds"]
    report = compare([out / name for name in presets], out / "report.html", title=f"genmodels zoo: {splits.source}")
    minutes, secs = divmod(round(time.perf_counter() - began), 60)
    log(f"[zoo] {len(presets)} runs trained, evaluated and compared in {minutes} min {secs} s")
    return report, results


def _train_and_evaluate(config: RunConfig, run_dir: Path, splits, overwrite: bool, progress: bool,
                        options: dict[str, Any], log: Callable[[str], None], at_least: bool = False) -> dict:
    state = "new" if overwrite else run_state(run_dir, config, at_least)
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
    start = time.perf_counter()
    metrics = evaluate(run, **options)
    log(f"  evaluated in {time.perf_counter() - start:.1f} s")
    # train_seconds: wall time of this call's training (absent for kept runs); not part of the saved metrics.
    return {**metrics, **({"train_seconds": round(seconds, 1)} if seconds else {})}


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
