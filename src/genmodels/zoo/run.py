"""Running the zoo: every preset trained and evaluated into its run directory (`run_zoo`), finished runs
kept and unfinished ones resumed (`run_state`), the feature network trained once (`feature_network`), the
comparison report written, and the summary table the command prints (`summary_table`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..data import DataSplits, load_data
from ..engine import train
from ..errors import ConfigError, GenmodelsError
from ..evaluation import evaluate
from ..features import FeatureNetwork, load_features, train_features
from ..models import FEATURE_NETWORK, RunConfig
from ..progress import say
from ..provenance import canonical_source
from ..report.catalog import summary_keys
from ..report.compare import compare
from ..rundir import RunDir
from ..runs import load_run
from ..zoodir import ZooDir
from .entries import ENTRY, EVALUATE, PRESETS, VECTOR_EVALUATE, Preset, bayes_samples, vector_presets
from .plan import (
    DEFAULT_BUDGET,
    FASTEST,
    REPORT_SECONDS,
    Plan,
    check_budget,
    derive_plan,
    least_budget,
    measure_speed,
    pilot_seconds,
    plan_within,
    rescaled_epochs,
)


def _comparable(cfg: RunConfig) -> dict:
    """The settings that decide what a run learns, but for its length (a shorter run with the same
    settings is resumed) and where or on how many threads it ran."""
    values = json.loads(cfg.to_json())
    values.pop("shape", None)
    values["data"].pop("fingerprint", None)  # recorded by training; resuming checks it against the data
    for key in ("classes", "class_counts"):  # a conditional model's, recorded from the data's labels the same way
        values["model"].pop(key, None)
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
    done = rd.trained_epochs() if rd.weights.exists() else None
    if done is None or saved.shape is None:
        return "new"  # stopped before its first epoch ended: nothing worth keeping
    total = saved.total_epochs(config.train.epochs)
    if done == total or (at_least and done > total):
        return "done"
    return "partial" if done < total else f"it has trained {done} epochs, the preset asks for {total}"


def feature_network(splits: DataSplits, where: Path, progress: bool = False, log: Callable[[str], None] = say,
                    epochs: int | None = None) -> FeatureNetwork:
    """The zoo's feature classifier for FID and the other sample-quality metrics: reused from `where`
    when it was trained on exactly this data, else trained there once (genmodels.features; epochs
    None: the classifier's default)."""
    try:
        return load_features(where, splits)
    except GenmodelsError:  # absent, unfinished or for other data: train it afresh
        rd = RunDir(where)
        held = rd.read_config().family if rd.holds_run() else None
        if held not in (None, FEATURE_NETWORK):  # replace only a feature network, never another run
            raise GenmodelsError(f"{where} holds a {held} run, where the zoo keeps its feature network; "
                                 "move it away or choose another --out.") from None
        log(f"[features] training the feature classifier into {where} (for FID, KID, precision/recall)")
        return train_features(splits, where, epochs=epochs, progress=progress, overwrite=held == FEATURE_NETWORK)


@dataclass(frozen=True)
class _Zoo:
    """One call of run_zoo: its folder, the data, how it trains, the evaluation's options and the derived plan
    it follows (None: fixed presets)."""

    dir: ZooDir
    data: str
    splits: DataSplits
    options: dict[str, Any]
    plan: Plan | None
    overwrite: bool
    progress: bool
    log: Callable[[str], None]
    began: float
    data_settings: dict[str, Any]  # more of the runs' data config (a toy's toy_size)


def run_zoo(data: str = "digits", out: str | Path = ZooDir.DEFAULT, *, overwrite: bool = False,
            progress: bool = True, presets: dict[str, Preset] | None = None,
            evaluate_options: dict[str, Any] | None = None, features: FeatureNetwork | str | Path | None = None,
            budget: float | None = None, speed: float | None = None, toy_size: int | None = None,
            log: Callable[[str], None] = say) -> tuple[Path, dict[str, dict]]:
    """Train, evaluate and compare every preset of `data` into `out`; returns the report's path and
    each run's metrics.

    data: digits or fashion-mnist (the fixed presets of PRESETS, which refuse a budget), or any other
    source (an IDX folder, a .npy/.npz file, an image folder), whose presets and evaluation options
    `derive_plan` chooses from the data's shape to fit `budget` minutes (default DEFAULT_BUDGET) on this
    machine as fast as a pilot finds it (`measure_speed`), or as `speed` says (tests); a budget too short for
    the smallest plan is refused before any run is trained (`plan_within`), before the pilot where it is too
    short even for the fastest machine.
    presets: replaces the presets (tests use tiny ones). overwrite: retrain every run from scratch.
    features: the feature network for the sample-quality metrics (FID, KID, precision/recall, ...),
    as a FeatureNetwork or its directory; None trains it once into OUT/features (or reuses it there);
    data without labels gets none, and no sample-quality metrics.
    Vector data (N, D) (a 2-D toy, a .npy/.npz or CSV of vectors) trains every entry whose family takes vectors,
    at settings derived from D (entries.vector_presets; no budget, no pilot), and measures the samples on the
    vectors themselves (no feature network). toy_size: the training points of a toy (None: its default)."""
    began = time.perf_counter()
    if budget is not None:
        check_budget(budget)
        if data in PRESETS:
            raise GenmodelsError(f"{data} has fixed presets (the README's tables), so --budget does not apply; drop "
                                 "it, or write the data as an IDX folder (genmodels data convert) to derive presets.")
    folder = ZooDir(out)
    if folder.root.exists() and not folder.root.is_dir():
        raise GenmodelsError(f"{folder.root} is a file, not a directory; choose another --out for the zoo.")
    data = canonical_source(data)  # runs outlive the working directory
    splits = load_data(data, toy_size=toy_size)
    if splits.kind == "vectors":
        return _vector_zoo(folder, data, splits, toy_size, budget, overwrite, progress, presets, evaluate_options,
                           log, began)
    labelled = splits.train.labels is not None and splits.test.labels is not None
    plan = None if data in PRESETS else _derived_plan(splits, labelled, budget, speed, folder.root, log, began)
    classes = splits.num_classes or 0
    if presets is None and labelled and classes < 2 and plan is not None:  # one class: nothing to condition on
        plan = replace(plan, presets={n: p for n, p in plan.presets.items() if not ENTRY[n].labels})
    if presets is None:
        presets = PRESETS[data] if plan is None else plan.presets
    options = {**EVALUATE, **(plan.evaluate if plan is not None else {})}
    if any(ENTRY[name].bayes for name in presets if name in ENTRY):
        options["bayes_samples"] = bayes_samples(options["importance_samples"], classes)
    options.update(evaluate_options or {})
    if features is None and not labelled:
        options["quality_samples"] = 0  # no labels, no feature classifier to compare samples in
    elif features is None:
        features = feature_network(splits, folder.features, progress, log,
                                   plan.feature_epochs if plan is not None else None)
    options["features"] = features
    options["baselines"] = {}  # the pixel and PCA probes, fitted once for all runs
    return _finish(_Zoo(folder, data, splits, options, plan, overwrite, progress, log, began, {}), presets)


def _vector_zoo(folder: ZooDir, data: str, splits: DataSplits, toy_size: int | None, budget: float | None,
                overwrite: bool, progress: bool, presets: dict[str, Preset] | None,
                evaluate_options: dict[str, Any] | None, log: Callable[[str], None], began: float
                ) -> tuple[Path, dict[str, dict]]:
    """The zoo on vector data: the entries whose families take vectors, settings from D, no feature network
    (the sample metrics are measured on the vectors themselves)."""
    if budget is not None:
        raise ConfigError(f"{data} holds vectors, whose zoo has fixed presets sized from their columns (a 2-D toy "
                          "in about two minutes), so --budget does not apply; drop it.")
    if presets is None:
        presets = vector_presets(splits.shape[0])
    options = {**EVALUATE, **VECTOR_EVALUATE, **(evaluate_options or {}), "features": None, "baselines": {}}
    settings = {} if toy_size is None else {"toy_size": toy_size}
    return _finish(_Zoo(folder, data, splits, options, None, overwrite, progress, log, began, settings), presets)


def _finish(zoo: _Zoo, presets: dict[str, Preset]) -> tuple[Path, dict[str, dict]]:
    """Every preset trained and evaluated, then compared in the report."""
    results = _run_all(zoo, presets)
    report = compare([zoo.dir.run(name) for name in presets], zoo.dir.report,
                     title=f"genmodels zoo: {zoo.splits.source}")
    minutes, secs = divmod(round(time.perf_counter() - zoo.began), 60)
    zoo.log(f"[zoo] {len(presets)} runs trained, evaluated and compared in {minutes} min {secs} s")
    return report, results


def _derived_plan(splits: DataSplits, labelled: bool, budget: float | None, speed: float | None, out: Path,
                  log: Callable[[str], None], began: float) -> Plan:
    """The plan for data without fixed presets, at the speed a pilot measures (or `speed`), printed; a budget
    that cannot hold the smallest plan is refused (ConfigError): before the pilot where even the fastest
    machine could not, else once the pilot has measured this one, removing the folder it made."""
    what = f"A {budget:g} min budget" if budget is not None else f"The default {DEFAULT_BUDGET:g} min budget"
    budget = DEFAULT_BUDGET if budget is None else budget
    shape, n_train, n_test = splits.shape, len(splits.train), len(splits.test)
    c, h, w = shape
    data = f"{n_train:,} training images of {h}x{w}x{c}"
    spent, made = 0.0, not out.exists()
    if speed is None:
        least = least_budget(shape, n_train, n_test, labelled, FASTEST, pilot_seconds(shape, n_train))
        if budget < least:
            raise ConfigError(f"{what} is too short for {data}: even on a machine {1 / FASTEST:g} times as fast as "
                              "the zoo's cost constants say, the pilot that times this one, the smallest plan (one "
                              f"epoch a run) and the report take {least:g} min; give --budget {least:g} or more.")
        start = time.perf_counter()
        speed = measure_speed(splits, derive_plan(shape, n_train, n_test, budget, labelled), out)
        log(f"[pilot] {time.perf_counter() - start:.1f} s: this machine takes {speed:.2f} times the time "
            "the zoo's cost constants say")
        spent = time.perf_counter() - began  # the data's loading and the pilot: gone from the budget
    plan = plan_within(shape, n_train, n_test, budget, labelled, speed, spent)
    if plan is None:
        if made and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # the pilot's folder, made for nothing
        least = least_budget(shape, n_train, n_test, labelled, speed, spent)
        pilot = f"the {spent:.0f} s spent loading the data and timing it, " if spent else ""
        raise ConfigError(f"{what} is too short for {data} on this machine: {pilot}the smallest plan (one epoch a "
                          f"run, the evaluation at its least) and the report take {least:g} min; give --budget "
                          f"{least:g} or more.")
    log(f"[plan] {data}, a {plan.budget:g} min budget:")
    for line in plan.lines():
        log(line)
    return plan


def _run_all(zoo: _Zoo, presets: dict[str, Preset]) -> dict[str, dict]:
    """Each preset trained (or kept, or resumed) and evaluated in turn; a derived plan's epochs re-split as the
    runs show how fast the machine is."""
    results: dict[str, dict] = {}
    spent: dict[str, float] = {}  # training seconds of the plan's runs so far
    plan = zoo.plan if zoo.plan is not None and presets is zoo.plan.presets else None
    for i, (name, preset) in enumerate(presets.items(), 1):
        zoo.log(f"[{i}/{len(presets)}] {name} ({preset.family})")
        if plan is not None and ENTRY[name].trained:  # the time left, re-split
            left = plan.budget * 60 - REPORT_SECONDS - (time.perf_counter() - zoo.began)  # the report's kept
            epochs = rescaled_epochs(plan, name, left, spent)
            if epochs != preset.train["epochs"]:
                zoo.log(f"  {epochs} epochs, not the planned {preset.train['epochs']}: its part of the "
                        f"{max(left, 0) / 60:.1f} min left at the speed of the runs so far")
                preset = replace(preset, train={**preset.train, "epochs": epochs})
        results[name] = _train_and_evaluate(zoo, preset.config(zoo.data, **zoo.data_settings), zoo.dir.run(name))
        if "train_seconds" in results[name] and plan is not None and ENTRY[name].trained:
            spent[name] = results[name]["train_seconds"]
    return results


def _train_and_evaluate(zoo: _Zoo, config: RunConfig, run_dir: Path) -> dict:
    state = "new" if zoo.overwrite else run_state(run_dir, config, at_least=zoo.plan is not None)
    if state not in ("new", "done", "partial"):
        raise GenmodelsError(f"{run_dir} holds a run with other settings ({state}); pass --overwrite to retrain "
                             "the zoo, or choose another --out.")
    start, seconds = time.perf_counter(), None
    if state == "done":
        zoo.log(f"  finished run kept: {run_dir}")
    else:
        # "new" may be a run stopped before its first checkpoint (config.json and nothing else): start it afresh.
        train(config, run_dir, resume=state == "partial", overwrite=zoo.overwrite or state == "new",
              progress=zoo.progress, data=zoo.splits)
        seconds = time.perf_counter() - start
        zoo.log(f"  {'resumed' if state == 'partial' else 'trained'} in {seconds:.1f} s")
    saved = RunDir(run_dir).read_eval() if state == "done" else None
    if saved is not None:
        return saved
    run = load_run(run_dir, data=zoo.splits)  # already loaded: spare evaluate a second read
    start = time.perf_counter()
    metrics = evaluate(run, **zoo.options)
    zoo.log(f"  evaluated in {time.perf_counter() - start:.1f} s")
    # train_seconds: wall time of this call's training (absent for kept runs); not part of the saved metrics.
    return {**metrics, **({"train_seconds": round(seconds, 1)} if seconds else {})}


def _cell(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else "\u2013" if v is None else str(v)


def summary_table(results: dict[str, dict], keys: list[str] | None = None) -> str:
    """A compact text table: one row per run, one column per metric that any run has; by default the metrics
    declared as the printed summary's columns (report/catalog.py, summary=True), in their order."""
    keys = [k for k in (summary_keys() if keys is None else keys) if any(k in r for r in results.values())]
    header = ["run", "family", *keys]
    rows = [[name, str(r.get("family", "")), *(_cell(r.get(k)) for k in keys)] for name, r in results.items()]
    widths = [max(len(row[j]) for row in [header, *rows]) for j in range(len(header))]

    def fmt(row: list[str]) -> str:  # the run and family left, the numbers right
        return "  ".join(c.ljust(w) if j < 2 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths, strict=True)))

    return "\n".join(fmt(row) for row in [header, *rows])
