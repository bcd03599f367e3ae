"""Findings in words: what the compared runs show, each sentence generated from their numbers, with the
numbers beside it. The lecture's claims are checks that pass or fail on the data at hand; a claim whose
runs are not in the report is not mentioned. Which value is better comes from the metrics' declarations
(catalog.py); which families a claim compares, from what the registered families' models declare."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..models import FAMILIES
from .catalog import metric
from .summary import RunSummary


@dataclass(frozen=True)
class Finding:
    verdict: str  # "pass", "fail" (a claim checked on these runs), "warn" (a run to read with care) or "note"
    text: str


def _value(run: RunSummary, key: str) -> float | None:
    v = (run.metrics or {}).get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _values(runs: list[RunSummary], key: str) -> list[tuple[RunSummary, float]]:
    """Each run that has a number for `key`, with it."""
    return [(r, v) for r in runs if (v := _value(r, key)) is not None]


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-3, abs_tol=1e-9)  # as the sentences print them, 3 figures


def _samplers(encodes: bool) -> list[str]:
    """The registered families whose models sample, with an encoder (a VAE's) or without one (a GAN's)."""
    return [name for name, f in FAMILIES.items() if f.model.samples and f.model.encodes == encodes]


def _best_of(runs: list[RunSummary], family: str, key: str, collapsed: bool) -> tuple[RunSummary, float] | None:
    """The run of `family` whose `key` is best, and that value; collapsed runs only if `collapsed`."""
    have = _values([r for r in runs if r.family == family and (collapsed or not r.collapsed)], key)
    return max(have, key=lambda rv: metric(key).score(rv[1])) if have else None


def _versus(runs: list[RunSummary], key: str, claim: str, winner: str, loser: str, what: str,
            collapsed: bool = True) -> list[Finding]:
    """The claim "winner's `key` is better than loser's", on the best run of each family."""
    a, b = _best_of(runs, winner, key, collapsed), _best_of(runs, loser, key, collapsed)
    if a is None or b is None:
        return []
    score = metric(key).score
    tie = _same(score(a[1]), score(b[1]))
    holds = score(a[1]) > score(b[1])
    return [Finding("note" if tie else "pass" if holds else "fail",
                    f"{claim}: {'a tie' if tie else 'yes' if holds else 'not here'}, {a[0].name} {a[1]:.3g} against "
                    f"{b[0].name} {b[1]:.3g} ({what}).")]


def _modes(run: RunSummary) -> str:
    covered, total = _value(run, "modes_covered"), _value(run, "modes_total")
    if covered is None:
        return f"{run.name} not counted"
    return f"{run.name} {covered:g}" + (f" of {total:g}" if total is not None else "")


def _on_the_modes(runs: list[RunSummary], gan: str, vae: str) -> list[Finding]:
    """The lecture's picture on a toy mixture (Metz et al. 2017; Srivastava et al. 2017): the GAN's samples sit on
    the modes, the VAE puts mass between them; judged on the share of samples within 3 std of a mode, on the best
    run of each family (a collapsed GAN included: where its samples sit is the question), the modes covered beside."""
    a, b = _best_of(runs, gan, "high_quality_share", True), _best_of(runs, vae, "high_quality_share", True)
    if a is None or b is None:
        return []
    tie, holds = _same(a[1], b[1]), a[1] > b[1]
    return [Finding("note" if tie else "pass" if holds else "fail",
                    f"{gan.upper()} samples sit on the modes; the {vae.upper()} puts mass between them: "
                    f"{'a tie' if tie else 'yes' if holds else 'not here'}, {a[0].name} {a[1]:.3g} against "
                    f"{b[0].name} {b[1]:.3g} (high-quality share: samples within 3 std of a mode; modes covered: "
                    f"{_modes(a[0])}, {_modes(b[0])}).")]


def _pca_exact(runs: list[RunSummary]) -> tuple[list[RunSummary], list[Finding]]:
    """The runs whose PCA baseline loses something, and a note on the rest: where the code is as large as the data
    (a 2-D toy's 2-D code) PCA reconstructs exactly, so no autoencoder can beat it and the claim says nothing."""
    exact = [r for r, v in _values(runs, "reconstruction_sse")
             if (b := _value(r, "pca_reconstruction_sse")) is not None and b <= 1e-9 * max(v, 1e-30)]
    if not exact:
        return runs, []
    names = ", ".join(r.name for r in exact)
    left = [r for r in runs if all(r is not e for e in exact)]
    return left, [Finding("note", f"PCA with the code size of {names} reconstructs exactly (the code is as large as "
                                  "the data), so those runs are not compared with it.")]


def _each(runs: list[RunSummary], key: str, baseline: str, claim: str, what: str) -> list[Finding]:
    """The claim "every run's `key` beats its `baseline`", with each run's pair of numbers."""
    pairs = [(r, v, b) for r, v in _values(runs, key) if (b := _value(r, baseline)) is not None]
    if not pairs:
        return []
    score = metric(key).score
    beats = [score(v) > score(b) for _, v, b in pairs]
    listed = ", ".join(f"{r.name} {v:.3g} vs {b:.3g}" for r, v, b in pairs)
    if all(_same(score(v), score(b)) for _, v, b in pairs):  # the baseline does as well (a 2-D toy's raw points)
        return [Finding("note", f"{claim}: a tie in all {len(pairs)} ({what}: {listed}).")]
    verdict = f"{'yes' if all(beats) else 'not all'}: {sum(beats)} of {len(pairs)}"
    return [Finding("pass" if all(beats) else "fail", f"{claim}: {verdict} ({what}: {listed}).")]


def _learned_code(run: RunSummary) -> bool:
    """A code other than the PCA baseline's own: the run's family declares it has a PCA baseline to beat
    (models.Model.has_pca_baseline); a family no longer registered counts as learned."""
    entry = FAMILIES.get(run.family)
    return entry is None or entry.model.has_pca_baseline


# The bars of the conditional claims. A conditional model makes the class asked for where the share of its samples
# in which the feature classifier finds the class asked for is at least CONSISTENT times its accuracy on real test
# images (the most the samples can be expected to reach). Bayes' rule makes a classifier of the conditional model
# where its accuracy is at least twice chance and at most BAYES_WITHIN below the linear probe's on the same pixels
# (the criterion of the bayes-rule lesson).
CONSISTENT, BAYES_WITHIN = 0.9, 0.05


def _asks_for_class(runs: list[RunSummary], name: str) -> list[Finding]:
    """"The conditional model of family `name` makes the class asked for", on its best run's class_consistency."""
    best = _best_of([r for r in runs if _value(r, "class_consistency_real") is not None], name, "class_consistency",
                    True)
    if best is None:
        return []
    run, made = best
    real = _value(run, "class_consistency_real") or 0.0
    histogram = (run.metrics or {}).get("class_histogram")
    classes = len(histogram) if isinstance(histogram, list) and histogram else None
    if classes and real < 2 / classes:  # a classifier near chance on real images cannot judge the samples
        return [Finding("note", f"The conditional {name.upper()} makes the class asked for: not judged, the feature "
                                f"classifier is right on only {real:.3g} of the real test images ({classes} classes); "
                                f"{run.name}'s class_consistency {made:.3g}.")]
    holds = made >= CONSISTENT * real
    return [Finding("pass" if holds else "fail",
                    f"The conditional {name.upper()} makes the class asked for: {'yes' if holds else 'not here'}, the "
                    f"feature classifier finds the class asked for in {made:.3g} of {run.name}'s samples, against "
                    f"{real:.3g} of the real test images (class_consistency against the classifier's accuracy; the "
                    f"bar: {CONSISTENT:.0%} of it, {CONSISTENT * real:.3g}).")]


def _bayes_classifier(runs: list[RunSummary], name: str) -> list[Finding]:
    """"Bayes' rule turns the generative model into a classifier", on the best bayes_accuracy of family `name`, with
    the linear probe on the pixels (the discriminative classifier of the same images) beside it."""
    best = _best_of(runs, name, "bayes_accuracy", True)
    if best is None:
        return []
    run, accuracy = best
    confusion = (run.metrics or {}).get("bayes_confusion")
    classes = len(confusion) if isinstance(confusion, list) and confusion else None
    probe = _value(run, "linear_probe_accuracy_pixels")
    k = _value(run, "bayes_samples")
    how = (f"{run.name} labels {accuracy:.3g} of the test images right by argmax over y of log p(x|y) + log p(y)"
           + (f" (K = {k:g})" if k is not None else ""))
    if probe is None:
        return [Finding("note", f"Bayes' rule turns the generative model into a classifier: {how}; no linear probe "
                                "to set it beside (evaluate with --probe-train above 0).")]
    chance = 2 / classes if classes else 0.0
    holds = accuracy >= chance and accuracy >= probe - BAYES_WITHIN
    bar = f"at most {BAYES_WITHIN:g} below it" + (f" and at least twice chance, {chance:.2g}" if classes else "")
    return [Finding("pass" if holds else "fail",
                    f"Bayes' rule turns the generative model into a classifier: {'yes' if holds else 'not here'}, "
                    f"{how}, against {probe:.3g} for the linear probe on the pixels (the bar: {bar}); its confusion "
                    "matrix is below.")]


def _warnings(runs: list[RunSummary]) -> list[Finding]:
    found = []
    for r in runs:
        if r.metrics is None:
            found.append(Finding("warn", f"{r.name} has not been evaluated: `genmodels evaluate {r.name}` "
                                         "measures it."))
        if r.epochs is not None and r.epochs[0] < r.epochs[1]:
            found.append(Finding("warn", f"{r.name} trained {r.epochs[0]} of its {r.epochs[1]} epochs: its numbers "
                                         "are those of an unfinished run (resume it with --resume)."))
        if r.collapsed:
            numbers = ", ".join(f"{name} {v:.3g}" for name, v in (
                ("class entropy", _value(r, "class_entropy")), ("recall", _value(r, "recall")),
                ("diversity", _value(r, "diversity"))) if v is not None)
            found.append(Finding("warn", f"{r.name} collapsed: its samples cover few classes or little of the data"
                                         + (f" ({numbers})" if numbers else "") + "; look at its samples below."))
    return found


Note = Callable[[RunSummary, float, list[tuple[RunSummary, float]]], str]


def _best_note(runs: list[RunSummary], key: str, text: Note) -> list[Finding]:
    """A note naming the one run with the best `key` (none on a tie); collapsed runs left out."""
    have = _values([r for r in runs if not r.collapsed], key)
    if len(have) < 2:
        return []
    have.sort(key=lambda rv: -metric(key).score(rv[1]))
    if _same(have[0][1], have[1][1]):
        return []
    return [Finding("note", text(have[0][0], have[0][1], have[1:]))]


def _probe(run: RunSummary, acc: float, others: list[tuple[RunSummary, float]]) -> str:
    knn = _value(run, "knn_accuracy")
    size = f" ({run.code}-dimensional)" if run.code else ""
    return (f"The codes of {run.name}{size} probe best: linear probe {acc:.3f}"
            + (f", 5-NN {knn:.3f}" if knn is not None else "") + f"; next {others[0][0].name} {others[0][1]:.3f}.")


def _closest(run: RunSummary, fid: float, others: list[tuple[RunSummary, float]]) -> str:
    rest = ", ".join(f"{r.name} {v:.3g}" for r, v in others)
    return (f"The samples of {run.name} are closest to the data in feature space: FID {fid:.3g} "
            f"({metric('fid').better} is better; {rest}).")


def _given_the_label(runs: list[RunSummary]) -> list[Finding]:
    """A note on each conditional run's code: its decoder is given the label, so the code need not carry the class."""
    return [Finding("note", f"The code of {r.name} probes at {v:.3g}: its decoder is given the class, so the code is "
                            "free to hold the rest (style, not class); the claims about models of p(x) leave it out.")
            for r, v in _values(runs, "linear_probe_accuracy")]


def findings(runs: list[RunSummary]) -> list[Finding]:
    """The warnings, then the lecture's claims: those about models of p(x) on the runs that are not conditional (a
    conditional run is given the label: its code, reconstructions and samples would compare unlike with like), those
    about conditional models on the conditional runs; then the notes, on every run."""
    found = _warnings(runs)
    plain = [r for r in runs if not r.conditional]
    adversarial, encoding = _samplers(encodes=False), _samplers(encodes=True)
    # Sharpness: closest to the data's (1) is sharpest; above 1 is noise, not detail.
    found += [f for gan in adversarial for vae in encoding for f in _versus(
        plain, "sharpness", f"{gan.upper()} samples are sharper than {vae.upper()} samples", gan, vae,
        "sharpness, 1 = as sharp as the test images, above 1 noise", collapsed=False)]
    # Recall: a collapsed GAN is the very case the claim is about, so it stays in.
    found += [f for gan in adversarial for vae in encoding for f in _versus(
        plain, "recall", f"{vae.upper()} samples cover more of the data than {gan.upper()} samples "
        f"({gan.upper()}s drop modes)", vae, gan, "recall, the share of test images the samples cover")]
    # On a toy mixture: where the samples sit.
    found += [f for gan in adversarial for vae in encoding for f in _on_the_modes(plain, gan, vae)]
    lossy, exact = _pca_exact(plain)
    found += exact
    found += _each(lossy, "reconstruction_sse", "pca_reconstruction_sse",
                   "Autoencoders reconstruct better than PCA with the same code size (Hinton & Salakhutdinov 2006)",
                   "reconstruction error against PCA's")
    raw = "vectors" if plain and all(r.vectors for r in plain) else "pixels"
    found += _each([r for r in plain if _learned_code(r)], "linear_probe_accuracy",
                   "linear_probe_accuracy_pixels", f"Learned codes separate the classes more linearly than the raw "
                   f"{raw}", f"linear probe accuracy against the {raw}'")
    # Conditional models: the class asked for, and p(y|x) from p(x|y) by Bayes' rule.
    conditional = [r for r in runs if r.conditional]
    found += [f for name in [*adversarial, *encoding] for f in _asks_for_class(conditional, name)]
    found += [f for vae in encoding for f in _bayes_classifier(conditional, vae)]
    found += _given_the_label(conditional)
    found += _best_note(runs, "linear_probe_accuracy", _probe)
    found += _best_note(runs, "fid", _closest)
    return found
