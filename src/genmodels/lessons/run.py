"""`run_lessons`: the chosen lessons run in the catalogue's order into one folder, with lessons.html and
lessons.json; `choose` reads --only; `listing` is --list."""

from __future__ import annotations

import difflib
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..data import load_data
from ..errors import ConfigError, GenmodelsError
from ..fileio import atomic_write
from ..progress import say
from ..provenance import canonical_source
from . import adversarial, classes, pretraining, regularised, samples, subspaces, variational
from .lesson import Context, Lesson, Outcome
from .page import record, render, section, write_json

DEFAULT_BUDGET = 15.0  # minutes
NOT_YET = "its experiment, not written yet"


def _waiting(name: str, waits_for: str) -> Lesson:
    return Lesson(name, "", "", "", "", None, waits_for=waits_for)


_BUILT = {lesson.name: lesson for lesson in (*subspaces.LESSONS, *regularised.LESSONS, *variational.LESSONS,
                                             *adversarial.LESSONS, *samples.LESSONS, *pretraining.LESSONS,
                                             *classes.LESSONS)}
# The lecture's order (issue 31); a lesson not built here is listed with what it waits for.
ORDER = ("linear-ae-spans-pca", "nonlinear-beats-pca", "overcomplete-copies", "denoising-projects",
         "contractive-flattens", "sparse-codes", "greedy-pretraining", "elbo-is-a-bound", "reparameterisation",
         "vae-latent-is-smooth", "gans-need-no-labels", "minimax-saturates", "k-steps", "modes-vs-blur",
         "gans-are-sharper", "bayes-rule")
LESSONS: dict[str, Lesson] = {name: _BUILT.get(name) or _waiting(name, NOT_YET) for name in ORDER}


def choose(only: str | None) -> list[Lesson]:
    """The lessons --only names (comma-separated, in the catalogue's order), or every lesson that runs."""
    if only is None:
        return [lesson for lesson in LESSONS.values() if lesson.run is not None]
    names = [n.strip() for n in only.split(",") if n.strip()]
    if not names:
        raise ConfigError("--only names no lesson; give lesson names separated by commas (see --list).")
    for name in names:
        if name not in LESSONS:
            close = difflib.get_close_matches(name, list(LESSONS), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ConfigError(f"--only: there is no lesson {name!r}; {hint}genmodels lessons --list lists them.")
        if LESSONS[name].run is None:
            raise ConfigError(f"--only: the lesson {name} waits for {LESSONS[name].waits_for}; it cannot run yet.")
    return [lesson for lesson in LESSONS.values() if lesson.name in names]


def listing() -> str:
    """One line per lesson: its name and statement, or what it waits for."""
    width = max(map(len, LESSONS))
    lines = []
    for lesson in LESSONS.values():
        about = (f"{lesson.statement} (~{lesson.seconds:.0f} s)" if lesson.run is not None
                 else f"waits for {lesson.waits_for}")
        lines.append(f"{lesson.name:<{width}}  {about}")
    return "\n".join(lines)


def check_budget(budget: Any) -> float:
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 < budget < float("inf"):
        raise ConfigError(f"--budget must be a positive number of minutes, not {budget!r}.")
    return float(budget)


def _command(lesson: Lesson, out: Path, data: str, budget: float | None) -> str:
    words = ["genmodels", "lessons", "--out", shlex.quote(str(out)), "--only", lesson.name]
    if data != "digits":
        words += ["--data", shlex.quote(data)]
    if budget is not None:
        words += ["--budget", repr(budget)]
    return " ".join(words)


def run_lessons(out: str | Path, only: str | None = None, budget: float = DEFAULT_BUDGET, data: str = "digits",
                log: Callable[[str], None] = say) -> tuple[Path, dict[str, dict[str, Any]]]:
    """Run the chosen lessons into `out` (a folder per lesson, a run directory per trained model), then write
    OUT/lessons.html and OUT/lessons.json; returns the page's path and the records.
    budget: minutes for the whole set; when the lessons' measured times add up to more, every run's epochs are
    scaled down by the same factor (the verdicts are then those of shorter training, reported as measured)."""
    chosen = choose(only)
    budget = check_budget(budget)
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise GenmodelsError(f"{folder} is a file, not a directory; choose another --out for the lessons.")
    source = canonical_source(data)
    splits = load_data(source)
    scale = min(1.0, budget * 60 / sum(lesson.seconds for lesson in chosen))
    records: dict[str, dict[str, Any]] = {}
    rows: list[tuple[Lesson, Outcome | None]] = []
    sections = []
    shared: dict[str, Any] = {}
    for lesson in LESSONS.values():
        if lesson not in chosen:
            if lesson.run is None and only is None:
                rows.append((lesson, None))
            continue
        assert lesson.run is not None  # choose() returns runnable lessons only
        ctx = Context(folder, lesson.name, splits, scale=scale, log=log, shared=shared)
        began = time.perf_counter()
        outcome = lesson.run(ctx)
        log(f"[{lesson.name}] {outcome.verdict}: {outcome.reason} ({time.perf_counter() - began:.0f} s)")
        alone = None if scale == 1.0 else lesson.seconds * scale / 60  # the budget that gives this scale alone
        command = _command(lesson, folder, source, alone)
        records[lesson.name] = record(lesson, outcome, ctx.runs, command)
        rows.append((lesson, outcome))
        sections.append(section(lesson, outcome, ctx.commands, command))
    page = folder / "lessons.html"
    atomic_write(folder / "lessons.json", write_json(records), parents=True)
    subtitle = f"{len(records)} lesson{'s' if len(records) != 1 else ''} on {source}" + (
        f", training scaled to {scale:.2f} of its length to fit {budget:g} minutes" if scale < 1 else "")
    atomic_write(page, render(sections, rows, subtitle).encode(), parents=True)
    return page, records
