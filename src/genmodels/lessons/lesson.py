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

import torch

from ..dataset import DataSplits
from ..engine import TrainResult, train
from ..errors import GenmodelsError
from ..features import FeatureNetwork, load_features, train_features
from ..flags import typed_flag
from ..models import build_run_config
from ..rundir import RunDir

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
    --budget shortens training rather than skipping lessons; `runs` collects the run directories it trained or
    reused. `shared` is the same dict for every lesson of one call: a model trained with the same settings by an
    earlier lesson is reused, not trained again, and the feature network is trained once."""

    out: Path
    lesson: str
    data: DataSplits
    scale: float = 1.0
    seed: int = 0
    runs: list[Path] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    log: Callable[[str], None] = print
    shared: dict[str, Any] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        """Where this lesson's runs and pictures go."""
        return self.out / self.lesson

    def images(self, split: str = "test") -> torch.Tensor:
        """A split's images as float32 in [0, 1], (N, C, H, W), whatever their storage (uint8, memory-mapped)."""
        data = self.data.test if split == "test" else self.data.train
        return data.batch(slice(0, len(data)))

    def picture(self, name: str) -> Path:
        return self.folder / f"{name}.png"

    def epochs(self, full: int) -> int:
        return max(1, round(full * self.scale))

    def train(self, name: str, family: str, model: dict[str, Any], settings: dict[str, Any],
              data: DataSplits | None = None, toy_size: int | None = None) -> TrainResult:
        """Train one model of the lesson into FOLDER/NAME (replacing a run there), seeded, on one thread;
        `settings` are the training settings at the full budget (their epochs scaled here). data: other data
        than the lesson's (loaded by name, so the run records where they are); toy_size: the points of a 2-D toy they
        were loaded with (recorded, so the run loads the same)."""
        data = data or self.data
        train_settings = {"threads": 1, "seed": self.seed, **settings}
        train_settings["epochs"] = self.epochs(settings.get("epochs", 20))
        source = {"source": data.source, **({} if toy_size is None else {"toy_size": toy_size})}
        config = build_run_config({"family": family, "model": model, "data": source,
                                   "train": train_settings}, where=f"the lesson {self.lesson}")
        key = config.to_json()
        if key in self.shared:  # the same model, trained by an earlier lesson of this call
            result = self.shared[key]
            self.log(f"[{self.lesson}] {name}: the same model as {result.run_dir}, reused")
        else:
            began = time.perf_counter()
            result = train(config, self.folder / name, overwrite=True, progress=False, data=data)
            self.log(f"[{self.lesson}] trained {name} ({family}, {config.train.epochs} epochs) in "
                     f"{time.perf_counter() - began:.1f} s")
            self.shared[key] = result
        self.runs.append(result.run_dir)
        self.commands.append(train_command(family, model, train_settings, data.source, result.run_dir, toy_size))
        return result

    def features(self) -> FeatureNetwork:
        """The feature classifier of the data (OUT/features): reused when it was trained on these data, else
        trained there once per call."""
        if "features" not in self.shared:
            where = self.out / "features"
            try:
                net = load_features(where, self.data)
            except GenmodelsError:  # absent, unfinished or for other data: trained afresh
                self.log(f"[{self.lesson}] training the feature classifier into {where}")
                net = train_features(self.data, where, progress=False, overwrite=RunDir(where).holds_run(),
                                     train={"threads": 1, "seed": self.seed})
            self.shared["features"] = net
        net = self.shared["features"]
        self.runs.append(net.dir)
        data = [] if self.data.source == "digits" else ["--data", shlex.quote(self.data.source)]
        self.commands.append(" ".join(["genmodels", "features", "train", "--out", shlex.quote(str(net.dir)), *data,
                                       "--threads", "1", "--seed", str(self.seed)]))
        return net


def train_command(family: str, model: dict[str, Any], settings: dict[str, Any], source: str, run_dir: Path,
                  toy_size: int | None = None) -> str:
    """`genmodels train` with the flags that give these settings, as one types them."""
    config = build_run_config({"family": family, "model": model, "data": {"source": source}, "train": settings})
    words = ["genmodels", "train", family, "--out", shlex.quote(str(run_dir))]
    if source != "digits":
        words += ["--data", shlex.quote(source)]
    if toy_size is not None:
        words += ["--toy-size", str(toy_size)]
    for section, given in (("model", model), ("train", settings)):
        part = getattr(config, section)
        for key in given:
            value = getattr(part, key)
            flag = typed_flag(part, key, value).split(" ", 1)[0]  # the flag's name; a switch: --x or --no-x
            if isinstance(value, bool):
                words.append(flag)
            elif isinstance(value, (list, tuple)):
                words += [flag, shlex.quote(",".join(str(v) for v in value))]  # an empty list: ''
            else:
                words += [flag, shlex.quote("none" if value is None else str(value))]
    return " ".join(words)
