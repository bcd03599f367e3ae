"""What a lesson is (`Lesson`), what running one leaves (`Outcome`), and what a lesson runs with (`Context`):
the data, its folder, the budget's scale on epochs, and `Context.train`, which trains every model of a lesson as
a real run (`build_run_config`, `engine.train`) into a run directory that every other command reads."""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..dataset import DataSplits
from ..engine import TrainResult, train
from ..flags import typed_flag
from ..models import build_run_config

HOLDS, FAILS = "holds", "does not hold"


@dataclass(frozen=True)
class Outcome:
    """What a lesson measured: its numbers, whether the criterion held, the measured reason in one sentence, and
    its pictures (caption, PNG path)."""

    numbers: dict[str, Any]
    holds: bool
    reason: str
    pictures: list[tuple[str, Path]] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return HOLDS if self.holds else FAILS


@dataclass(frozen=True)
class Lesson:
    """One statement of the lecture as an experiment. `criterion` is fixed here, before any number is measured;
    `run` measures and judges. `seconds`: its time on digits at the full budget, measured on the project's shared
    2-core machine (docs/lessons.md), which `--budget` scales. `waits_for`: the work it needs that has not landed
    (the lesson is listed, not run)."""

    name: str
    statement: str
    paper: str
    criterion: str
    experiment: str
    run: Callable[[Context], Outcome] | None
    seconds: float = 30.0
    waits_for: str | None = None


@dataclass
class Context:
    """What one lesson runs with. `scale` (0, 1] multiplies every run's epochs (at least one), so a short
    --budget shortens training rather than skipping lessons; `runs` collects the run directories it trained."""

    out: Path
    lesson: str
    data: DataSplits
    scale: float = 1.0
    seed: int = 0
    runs: list[Path] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    log: Callable[[str], None] = print

    @property
    def folder(self) -> Path:
        """Where this lesson's runs and pictures go."""
        return self.out / self.lesson

    def picture(self, name: str) -> Path:
        return self.folder / f"{name}.png"

    def epochs(self, full: int) -> int:
        return max(1, round(full * self.scale))

    def train(self, name: str, family: str, model: dict[str, Any], settings: dict[str, Any]) -> TrainResult:
        """Train one model of the lesson into FOLDER/NAME (replacing a run there), seeded, on one thread;
        `settings` are the training settings at the full budget (their epochs scaled here)."""
        train_settings = {"threads": 1, "seed": self.seed, **settings}
        train_settings["epochs"] = self.epochs(settings.get("epochs", 20))
        config = build_run_config({"family": family, "model": model, "data": {"source": self.data.source},
                                   "train": train_settings}, where=f"the lesson {self.lesson}")
        run_dir = self.folder / name
        began = time.perf_counter()
        result = train(config, run_dir, overwrite=True, progress=False, data=self.data)
        self.log(f"[{self.lesson}] trained {name} ({family}, {config.train.epochs} epochs) in "
                 f"{time.perf_counter() - began:.1f} s")
        self.runs.append(run_dir)
        self.commands.append(train_command(family, model, train_settings, self.data.source, run_dir))
        return result


def train_command(family: str, model: dict[str, Any], settings: dict[str, Any], source: str, run_dir: Path) -> str:
    """`genmodels train` with the flags that give these settings, as one types them."""
    config = build_run_config({"family": family, "model": model, "data": {"source": source}, "train": settings})
    words = ["genmodels", "train", family, "--out", shlex.quote(str(run_dir))]
    if source != "digits":
        words += ["--data", shlex.quote(source)]
    for section, given in (("model", model), ("train", settings)):
        for key, value in given.items():
            value = getattr(getattr(config, section), key)
            flag = typed_flag(getattr(config, section), key, value).split(" ", 1)
            if isinstance(value, list) and not value:  # an empty list is typed as an empty word
                flag = [flag[0], ""]
            words.append(" ".join(shlex.quote(w) for w in flag))
    return " ".join(words)
