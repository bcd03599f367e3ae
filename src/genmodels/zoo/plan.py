"""The zoo for a dataset without fixed presets: the entries' settings derived from its image shape, their
epochs and the evaluation's sizes chosen to fit a time budget (`derive_plan`), the machine's speed measured by
a pilot (`measure_speed`), and the epochs re-split as the runs show how fast the machine is (`rescaled_epochs`)."""

from __future__ import annotations

import math
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..config import shown
from ..data import Dataset, DataSplits
from ..engine import train
from ..errors import GenmodelsError
from ..models import FEATURE_NETWORK, family
from .entries import BAYES_IW_EQUIVALENT, ENTRIES, ENTRY, Entry, Preset, sizes

DEFAULT_BUDGET = 10.0  # minutes: a coffee break on a laptop
MAX_EPOCHS = 200  # as the digits presets: more buys nothing the lecture shows
LEADING_RUNS = 2  # trained first: the largest shares, so a run that overruns later costs a cheap one its epochs
# The entries' seconds_per_image fix the runs' costs relative to one another; the pilot (`measure_speed`)
# scales them all to the machine at hand. EPOCH_SECONDS: each epoch's held-out pass, picture and checkpoint;
# FIT_SECONDS: fitting an entry trained once (PCA).
EPOCH_SECONDS, FIT_SECONDS = 1.0, 1.0
# Evaluation, measured as the entries' costs and scaled by the pilot too: a linear probe per probe image (the
# entry's probe_weight; the pixel baseline, fitted once for all runs, per 784 values), a sampler's Parzen and
# quality metrics per sample, the VAE's bound per test image and importance sample, and a fixed cost per run
# (loading, the PCA baseline, pictures).
EVAL_PROBE, EVAL_SAMPLE, EVAL_IW, EVAL_RUN = 4e-3, 1.5e-3, 3e-5, 1.0
FEATURES_SECONDS_PER_IMAGE = 0.8e-3  # one epoch of the feature classifier, 784 values
DERIVED_TRAIN = {"batch_size": 100}
# The fastest a machine is taken to be against the constants (measure_speed's lower clamp): before the pilot,
# a budget too short even then is refused without training anything.
FASTEST = 0.1
PILOT_EPOCHS, PILOT_TEST_IMAGES = 2, 50
# The comparison report after the runs (not in a plan's estimate): 2 to 4 s measured on the shared machine.
REPORT_SECONDS = 5.0
SMALLEST = 1e-6  # minutes: a budget that buys nothing, so every run gets 1 epoch and the evaluation its least


def check_budget(budget: Any) -> float:
    ok = isinstance(budget, (int, float)) and not isinstance(budget, bool) and math.isfinite(budget) and budget > 0
    if not ok:
        raise GenmodelsError(f"--budget must be a number of minutes above 0, got {shown(budget)}; "
                             "give e.g. --budget 10.")
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
            out.append(f"  {'features':<15}{FEATURE_NETWORK:<12}{'auto':<18}{self.feature_epochs:>4} epochs   "
                       f"~{self.seconds['features'] / 60:.1f} min")
        for name, p in self.presets.items():
            entry = ENTRY[name]
            arch = p.model.get("arch", "mlp") if entry.trained else "-"
            epochs: int | str = p.train.get("epochs", 1)
            if entry.pretraining is not None:
                per_layer, layers = entry.pretraining(p.model)
                epochs = f"{per_layer}x{layers}+{epochs}"
            out.append(f"  {name:<15}{p.family:<12}{arch:<18}{epochs!s:>4} epochs   ~{self.seconds[name] / 60:.1f} min")
        total = sum(self.seconds.values()) / 60
        eval_note = ", ".join(f"{k} {v}" for k, v in self.evaluate.items())
        out.append(f"  estimated {total:.1f} min of a {self.budget:g} min budget; evaluation: {eval_note}")
        return out


def _evaluation_seconds(entries: list[Entry], d: int, n_test: int, probe: int, samples: int, iw: int,
                        speed: float) -> dict[str, float]:
    """Each entry's evaluation: its fixed cost, its probe, its samples' metrics (a family that samples), an importance-
    weighted bound (the VAE's) and a Bayes classifier (entries.BAYES_IW_EQUIVALENT); the first
    entry pays for the pixel baseline's probe too."""
    eval_probe, eval_sample, eval_iw, eval_run = (cost * speed for cost in (EVAL_PROBE, EVAL_SAMPLE, EVAL_IW, EVAL_RUN))
    seconds = {entry.name: eval_run for entry in entries}
    for i, entry in enumerate(entries):
        if entry.probe_weight is not None:
            weight = entry.probe_weight + (4 * d / 784 if i == 0 else 0)
            seconds[entry.name] += eval_probe * probe * weight
        if family(entry.family).model.samples:
            seconds[entry.name] += eval_sample * samples * d / 784
        if entry.importance_weighted:
            seconds[entry.name] += eval_iw * iw * n_test * d / 784
        if entry.bayes:
            seconds[entry.name] += eval_iw * BAYES_IW_EQUIVALENT * n_test * d / 784
    return seconds


def derive_plan(shape: tuple[int, ...], n_train: int, n_test: int, budget: float = DEFAULT_BUDGET,
                labelled: bool = True, speed: float = 1.0) -> Plan:
    """The zoo's entries for images of `shape` (C, H, W), with epochs that fit `budget` minutes.

    Each entry's settings follow the shape (its `derive`, from `entries.Sizes`). Time: each run's epoch costs
    n_train (plus n_test/3 for its held-out pass) times the entry's seconds_per_image, scaled by the image's
    size and by `speed`, the machine's slowness against those constants (`measure_speed`, a pilot on the data;
    1: the constants as they are). From the budget come off the feature network and the evaluation (at most a
    third of the budget: sample and probe counts shrink to fit), and what is left is split by the entries'
    shares; each run gets the epochs its share pays for, 1 to MAX_EPOCHS. For one speed the rule is
    deterministic, and a larger budget never gives fewer epochs. As it goes, run_zoo rescales each run's
    epochs to the time left (`rescaled_epochs`), as the load of a shared machine changes. Labelled data get the
    conditional entries too (Entry.labels), the shares then taken over all of them."""
    budget = check_budget(budget)
    size = sizes(shape, n_train)
    d = size.d
    entries = [entry for entry in ENTRIES if labelled or not entry.labels]
    models = {entry.name: entry.derive(size) for entry in entries}
    trained = [entry for entry in entries if entry.trained]
    total_share = math.fsum(entry.share for entry in trained)  # 1 without the conditional entries
    per_epoch = {e.name: e.seconds_per_image * speed * e.cost_scale(shape, models[e.name]) * (n_train + n_test / 3)
                 + EPOCH_SECONDS * speed for e in trained}

    # The evaluation: probes and sample counts grow with the budget (in minutes of the constants' machine)
    # up to evaluate's own amounts.
    seconds, effective = budget * 60, budget / speed
    probe = min(10_000, n_train, max(500, round(100 * effective))) if labelled else 0
    samples = min(10_000, max(1000, 500 * round(budget * 60 * 0.1 / (EVAL_SAMPLE * speed * d / 784) / 500)))
    iw = 200 if effective >= 5 else 50
    options = {"importance_samples": iw, "probe_train": probe, "parzen_samples": samples,
               "quality_samples": samples if labelled else 0}
    evaluation = _evaluation_seconds(entries, d, n_test, probe, samples, iw, speed)
    # The feature network: its 5 epochs (the classifier's default), fewer where they would take more than
    # a fifth of the budget, 2 at least.
    feature_epoch = FEATURES_SECONDS_PER_IMAGE * speed * n_train * d / 784
    feature_epochs = max(2, min(5, int(seconds / 5 / feature_epoch)))
    features = feature_epoch * feature_epochs if labelled else 0.0
    # Reserved up front: the feature network and at most a third of the budget for the evaluation, so
    # that the training time left grows with the budget.
    reserved = features + min(sum(evaluation.values()), seconds / 3)
    left = max(0.0, seconds - reserved)
    # A pretraining (the stacked-dae's) is the same for every budget (so a larger one resumes the run), paid out
    # of its share; a lower layer's epoch costs about half a full one.
    first = {e.name: 0.5 * math.prod(e.pretraining(models[e.name])) * per_epoch[e.name] if e.pretraining else 0.0
             for e in trained}
    epochs = {e.name: max(1, min(MAX_EPOCHS, int((e.share / total_share * left - first[e.name]) / per_epoch[e.name])))
              for e in trained}
    leading = [e.name for e in sorted(trained, key=lambda e: -e.share)[:LEADING_RUNS]]
    order = [*leading, *[e.name for e in entries if e.name not in leading]]
    presets = {name: ENTRY[name].preset(models[name], {**DERIVED_TRAIN, "epochs": epochs.get(name)}) for name in order}
    cost = {e.name: per_epoch[e.name] * epochs[e.name] + first[e.name] for e in trained}
    estimate = {**({"features": features} if labelled else {}),
                **{e.name: (cost[e.name] if e.trained else FIT_SECONDS) + evaluation[e.name] for e in entries}}
    return Plan(presets, options, {name: estimate[name] for name in ("features", *presets) if name in estimate}, budget,
                feature_epochs, cost, per_epoch)


def plan_within(shape: tuple[int, ...], n_train: int, n_test: int, budget: float, labelled: bool = True,
                speed: float = 1.0, spent: float = 0.0) -> Plan | None:
    """The plan of a `budget` minutes zoo whose estimate fits in the time left (`spent` seconds are gone: the
    pilot's, the data's loading; REPORT_SECONDS are kept for the report), None where none does.

    That is derive_plan's for the time left, where its estimate fits (epochs are rounded down but to 1, and
    evaluation sizes come in steps, so it may overshoot by some percent); else the plan of the largest time
    below it (1% steps) whose estimate fits; else the smallest plan (one epoch a run, the evaluation at its
    least), if that fits. Its `budget` is the whole budget, as the zoo's deadline."""
    left = budget * 60 - spent - REPORT_SECONDS
    smallest = derive_plan(shape, n_train, n_test, SMALLEST, labelled, speed)
    floor = sum(smallest.seconds.values())
    minutes = left / 60
    while minutes * 60 > floor:
        plan = derive_plan(shape, n_train, n_test, minutes, labelled, speed)
        if sum(plan.seconds.values()) <= minutes * 60:
            return replace(plan, budget=budget)
        minutes *= 0.99
    return replace(smallest, budget=budget) if floor <= left else None


def least_budget(shape: tuple[int, ...], n_train: int, n_test: int, labelled: bool = True,
                 speed: float = 1.0, spent: float = 0.0) -> float:
    """The smallest budget in minutes, two significant digits rounded up, for which plan_within finds a plan:
    the smallest plan's estimate, `spent` and the report's seconds."""
    floor = sum(derive_plan(shape, n_train, n_test, SMALLEST, labelled, speed).seconds.values())
    minutes = (floor + spent + REPORT_SECONDS) / 60
    step = 10.0 ** (math.floor(math.log10(minutes)) - 1)
    return round(math.ceil(minutes / step - 1e-9) * step, 12)


def pilot_seconds(shape: tuple[int, ...], n_train: int, speed: float = FASTEST) -> float:
    """measure_speed's estimated seconds at `speed`: its epochs of each pilot entry, at the smallest plan's
    settings (a pilot's are the same for any budget)."""
    smallest = derive_plan(shape, n_train, PILOT_TEST_IMAGES, SMALLEST, False, speed)
    return sum(PILOT_EPOCHS * speed * (e.seconds_per_image * e.cost_scale(shape, smallest.presets[e.name].model)
                                       * (min(e.pilot_images, n_train) + PILOT_TEST_IMAGES / 3) + EPOCH_SECONDS)
               for e in ENTRIES if e.pilot_images)


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
    planned: int = plan.presets[name].train["epochs"]
    # Never above the plan: time to spare is the budget's, not a cheap run's to take.
    return max(1, min(planned, int(planned * max(0.0, seconds_left) / need + 1e-9))) if need > 0 else planned


def measure_speed(splits: DataSplits, plan: Plan, where: Path) -> float:
    """The machine's slowness now against the entries' seconds_per_image: two short epochs of each entry with
    pilot images (the ae and the gan) on the data's first images, trained into a temporary folder under `where`,
    the second epoch's training steps timed (the first warms up), over what the constants predict; clamped to
    FASTEST..100."""
    measured = expected = 0.0
    where.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".pilot-", dir=where))
    try:
        for entry in (e for e in ENTRIES if e.pilot_images):
            n = min(entry.pilot_images, len(splits.train))
            sub = DataSplits(Dataset(splits.train.stored(slice(0, n)), None, "pilot/train"),
                             Dataset(splits.test.stored(slice(0, PILOT_TEST_IMAGES)), None, "pilot/test"),
                             splits.source)
            preset = plan.presets[entry.name]
            config = replace(preset, train={**preset.train, "epochs": PILOT_EPOCHS}).config(splits.source)
            with warnings.catch_warnings():  # a GAN of three steps looks collapsed: no news
                warnings.simplefilter("ignore")
                measured += train(config, tmp / entry.name, progress=False, data=sub).epoch_seconds[-1]
            expected += entry.seconds_per_image * entry.cost_scale(splits.shape, preset.model) * n
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return min(100.0, max(FASTEST, measured / expected))
