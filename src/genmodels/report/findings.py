"""Findings in words: what the compared runs show, each sentence generated from their numbers, with the
numbers beside it. The lecture's claims are checks that pass or fail on the data at hand; a claim whose
runs are not in the report is not mentioned."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .summary import RunSummary


@dataclass(frozen=True)
class Finding:
    verdict: str  # "pass", "fail" (a claim checked on these runs) or "note" (a plain observation)
    text: str


def _value(run: RunSummary, key: str) -> float | None:
    v = (run.metrics or {}).get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _best_of(runs: list[RunSummary], family: str, key: str) -> tuple[RunSummary, float] | None:
    """The run of `family` with the highest `key`, and that value; collapsed runs left out."""
    have = [(r, _value(r, key)) for r in runs
            if r.family == family and not r.collapsed and _value(r, key) is not None]  # collapsed: says nothing
    return max(have, key=lambda rv: rv[1]) if have else None


def _versus(runs: list[RunSummary], key: str, claim: str, winner: str, loser: str, what: str) -> list[Finding]:
    """The claim "winner's `key` is higher than loser's", checked on the best run of each family."""
    a, b = _best_of(runs, winner, key), _best_of(runs, loser, key)
    if a is None or b is None:
        return []
    holds, tie = a[1] > b[1], a[1] == b[1]
    return [Finding("note" if tie else "pass" if holds else "fail",
                    f"{claim}: {'a tie' if tie else 'yes' if holds else 'not here'}, {a[0].name} {a[1]:.3g} against "
                    f"{b[0].name} {b[1]:.3g} ({what}).")]


def _each(runs: list[RunSummary], key: str, baseline: str, better: str, claim: str, what: str) -> list[Finding]:
    """The claim "every run's `key` beats its `baseline`", with each run's pair of numbers."""
    pairs = [(r, _value(r, key), _value(r, baseline)) for r in runs if r.family != "pca"]
    pairs = [(r, v, b) for r, v, b in pairs if v is not None and b is not None]
    if not pairs:
        return []
    beats = [(v < b) if better == "lower" else (v > b) for _, v, b in pairs]
    listed = ", ".join(f"{r.name} {v:.3g} vs {b:.3g}" for r, v, b in pairs)
    verdict = f"{'yes' if all(beats) else 'not all'}: {sum(beats)} of {len(pairs)}"
    return [Finding("pass" if all(beats) else "fail", f"{claim}: {verdict} ({what}: {listed}).")]


def findings(runs: list[RunSummary]) -> list[Finding]:
    found: list[Finding] = []
    for r in runs:
        if r.metrics is None:
            found.append(Finding("note", f"{r.name} has not been evaluated: `genmodels evaluate {r.name}` measures it."))
        if r.epochs is not None and r.epochs[0] < r.epochs[1]:
            found.append(Finding("fail", f"{r.name} trained {r.epochs[0]} of its {r.epochs[1]} epochs: its numbers are "
                                         f"those of an unfinished run (resume it with --resume)."))
        if r.collapsed:
            entropy, recall, diversity = (_value(r, k) for k in ("class_entropy", "recall", "diversity"))
            numbers = ", ".join(f"{k} {v:.3g}" for k, v in (("class entropy", entropy), ("recall", recall),
                                                            ("diversity", diversity)) if v is not None)
            found.append(Finding("fail", f"{r.name} collapsed: its samples cover few classes or little of the data "
                                         f"({numbers}); look at its samples below."))
    found += _versus(runs, "sharpness", "GAN samples are sharper than VAE samples", "gan", "vae",
                     "sharpness: Laplacian variance over the test images', 1 = as sharp as the data")
    found += _versus(runs, "recall", "VAE samples cover more of the data than GAN samples (GANs drop modes)",
                     "vae", "gan", "recall: share of test images the samples cover")
    found += _each(runs, "reconstruction_sse", "pca_reconstruction_sse", "lower",
                   "Autoencoders reconstruct better than PCA with the same code size (Hinton & Salakhutdinov 2006)",
                   "reconstruction error against PCA's")
    found += _each(runs, "linear_probe_accuracy", "linear_probe_accuracy_pixels", "higher",
                   "Learned codes separate the classes more linearly than the raw pixels",
                   "linear probe accuracy against the pixels'")
    probes = [(r, _value(r, "linear_probe_accuracy")) for r in runs if _value(r, "linear_probe_accuracy") is not None]
    if len(probes) > 1:
        best, acc = max(probes, key=lambda rv: rv[1])
        knn = _value(best, "knn_accuracy")
        found.append(Finding("note", f"The codes of {best.name} probe best: linear probe {acc:.3f}"
                                     + (f", 5-NN {knn:.3f}" if knn is not None else "") + "."))
    fids = [(r, _value(r, "fid")) for r in runs if _value(r, "fid") is not None and not r.collapsed]
    if len(fids) > 1:
        best, fid = min(fids, key=lambda rv: rv[1])
        others = ", ".join(f"{r.name} {v:.3g}" for r, v in fids if r is not best)
        found.append(Finding("note", f"The samples of {best.name} are closest to the data in feature space: FID "
                                     f"{fid:.3g} (lower is better; {others})."))
    return found
