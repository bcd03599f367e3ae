"""Training a run, new or resumed (docs/ARCHITECTURE.md, "One training step").

`train` and `resume_run` read top to bottom: the checks that refuse bad settings or data before the run directory
is touched, the run directory prepared under its writer's lock, then the loop (training.Training: the model, its
optimizers and the checkpoint to continue from; per epoch the steps and the epoch's artefacts). `resume_run` is the
one way to continue a run; `train(..., resume=True)` calls it with the settings the config gives.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import distributed as ddp
from .config import merge, shown
from .data import DataSplits
from .errors import ConfigError, GenmodelsError
from .flags import typed_flag, typed_value
from .models import Model, RunConfig, build_model, build_run_config, model_for_data
from .precision import resolve_precision
from .progress import Progress, say
from .provenance import training_data
from .rundir import RunDir, check_resume_or_overwrite
from .runlog import check_logs, read_history
from .runtime import keep_freed_memory, resolve_device, set_threads
from .training import Training, evaluate_parts

__all__ = ["Progress", "TrainResult", "evaluate_parts", "resume_run", "train"]


@dataclass
class TrainResult:
    model: Model
    run_dir: Path
    history: list[dict] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)  # wall time of each epoch's training steps


def train(config: RunConfig, run_dir: str | Path, *, resume: bool = False, overwrite: bool = False,
          progress: Progress = True, data: DataSplits | None = None) -> TrainResult:
    """Train a model as `config` describes, writing everything into `run_dir`.

    resume: continue from run_dir's checkpoint with its saved config, trained for config.train.epochs
    in all (see `resume_run`; any other setting of `config` that differs from the saved one is refused).
    progress: see `Progress`. data: already loaded data (tests, benchmarks; their `source` is recorded as
    data.source); otherwise config.data is loaded."""
    check_resume_or_overwrite(resume, overwrite)
    if resume:
        settings = config.resume_settings()
        if data is not None:  # the data's own name, not the config's, is what the run recorded
            settings["data"]["source"] = data.source
        return resume_run(run_dir, config.train.epochs, progress=progress, data=data, settings=settings)
    check_logs(config.train.log)
    run = RunDir(run_dir)
    dist, device = ddp.setup(resolve_device(config.train.device))
    config = _resolved_precision(config, device, progress is not False and dist.main)
    config, data = _checked_data(config, data, run)  # bad data or settings: refused before the run directory is touched
    _check_shards(config, len(data.train), dist)
    with _writer(run, dist):
        if dist.main:  # under torchrun, rank 0 alone writes files
            run.prepare(resume=False, overwrite=overwrite)
        ddp.barrier(dist)
        return _train(config, run, dist, device, progress, data, resume=False)


def resume_run(run_dir: str | Path, epochs: int | None = None, *, progress: Progress = True,
               data: DataSplits | None = None, settings: dict[str, Any] | None = None) -> TrainResult:
    """Continue the run in `run_dir` from its last checkpoint, with the config saved there (read here,
    once); epochs: the new total (None keeps the saved number), the one setting a resumed run may change.
    settings: {"family", "model", "train", "data"} as given for the resumed run (None values: not given); one
    that differs from the saved config is refused, so no setting is silently ignored. A run that stopped before its
    first checkpoint (RunDir.stopped_early: a full disk in its first epoch, say) is trained again from the start."""
    run = RunDir(run_dir)
    run.prepare(resume=True, overwrite=False)  # only checks there is a checkpoint to resume, or a run to start over
    saved = run.read_config()
    runtime = _check_unchanged(run, saved, settings or {})
    config = saved.with_epochs(epochs or saved.train.epochs)
    config = config.model_copy(update={"train": config.train.model_copy(update=runtime["train"]),
                                       "data": config.data.model_copy(update=runtime["data"])})
    dist, device = ddp.setup(resolve_device(config.train.device))
    config = _resolved_precision(config, device, progress is not False and dist.main)
    if _finished(run, saved, config, epochs):  # nothing to train, so nothing is rewritten
        model, _ = run.load_model(device)
        return TrainResult(model, run.path, read_history(run))
    check_logs(config.train.log)
    config, data = _checked_data(config, data, run, resume=True)
    _check_shards(config, len(data.train), dist)
    again = run.stopped_early()
    if again:
        warnings.warn(f"The run in {run} stopped before its first checkpoint, so it trains again from the start with "
                      "its saved settings.", RuntimeWarning, stacklevel=2)
        ddp.barrier(dist)  # every rank has seen the run as it was before rank 0 clears it
    with _writer(run, dist):
        if dist.main and again:  # the records and pictures of the lost epoch go; Training.start rewrites the config
            run.clear()
        elif dist.main:  # a kill between a temporary file's write and its rename left it: nobody renames it now
            run.remove_dead_temps()
        if again:
            ddp.barrier(dist)
        return _train(config, run, dist, device, progress, data, resume=not again)


def _resolved_precision(config: RunConfig, device: torch.device, tell: bool) -> RunConfig:
    """config with train.precision as `device` runs it: "auto" decided here (its reason printed once where `tell`),
    so config.json records the precision used and a resume keeps it; a one-sentence GenmodelsError where the device
    cannot run a precision given by name."""
    precision, reason = resolve_precision(config.train.precision, device)
    if reason and tell:
        say(reason)
    return config.model_copy(update={"train": config.train.model_copy(update={"precision": precision})})


# Settings of how a run is carried out, not of what it computes: a resumed run may take new ones.
# The precision among them: weights, optimizer state and checkpoints are float32 whatever it is, so a run
# trained in fp32 may continue in bf16-mixed (say) and config.json then records the precision it trains in now.
RUNTIME = ("device", "threads", "log", "log_every", "eval_batch_size", "compile", "precision", "channels_last")
DATA_RUNTIME = ("max_data_gb",)  # how much of the data may be read into memory: the data stay the same


def _check_unchanged(run: RunDir, saved: RunConfig, settings: dict[str, Any]) -> dict[str, Any]:
    """A one-sentence ConfigError naming every setting in `settings` (but train.epochs and the RUNTIME ones)
    that differs from the saved config's, as its flag and its config key; the RUNTIME (train) and DATA_RUNTIME
    (data) settings given, by section."""
    family = settings.get("family")
    if family is not None and family != saved.family:
        raise ConfigError(f"The run in {run} is a {saved.family} run, not {shown(family)}; resume it with "
                          f"`genmodels train {saved.family} --out {run} --resume` (family {saved.family!r}).")
    given = {section: {k: v for k, v in (settings.get(section) or {}).items() if v is not None}
             for section in ("model", "train", "data")}
    if not any(given.values()):
        return {"train": {}, "data": {}}
    asked = build_run_config(merge(json.loads(saved.to_json()), given), "the settings given to resume")  # valid?
    adjusted = _vector_defaults(saved)
    differ = []
    for section, values in given.items():
        for key in values:
            if key in {"train": ("epochs", *RUNTIME), "data": DATA_RUNTIME}.get(section, ()):  # may change
                continue
            was, now = getattr(getattr(saved, section), key), getattr(getattr(asked, section), key)
            if section == "model" and adjusted.get(key) == (now, was):  # a default that vectors change, as they did
                continue
            if was != now:
                differ.append(f"{typed_flag(getattr(asked, section), key, now)} ({section}.{key}) differs from the "
                              f"run's {typed_value(was)}")
    if differ:
        raise ConfigError(f"The run in {run} resumes with its saved settings, but {', and '.join(differ)}; resume "
                          f"without {'it' if len(differ) == 1 else 'them'} (--epochs may extend the run) or train "
                          "a new run into another folder.")
    return {"train": {key: getattr(asked.train, key) for key in given["train"] if key in RUNTIME},
            "data": {key: getattr(asked.data, key) for key in given["data"] if key in DATA_RUNTIME}}


def _vector_defaults(saved: RunConfig) -> dict[str, tuple[Any, Any]]:
    """For a run on vector data: each model setting whose default Model.for_vectors changes (a VAE's likelihood),
    as (the default, what vectors take). A config given to resume it with that default (a Python caller's whole
    config) asks for what the run did: the run was trained with the setting vectors take."""
    if saved.shape is None or len(saved.shape) != 1:
        return {}
    plain = type(saved.model)()
    try:
        vector = model_for_data(saved.family, plain, saved.shape)
    except ConfigError:  # a family that cannot take vectors cannot have recorded a vector run
        return {}
    return {k: (getattr(plain, k), getattr(vector, k)) for k in type(plain).model_fields
            if getattr(plain, k) != getattr(vector, k)}


def _checked_data(config: RunConfig, data: DataSplits | None, run: RunDir,
                  resume: bool = False) -> tuple[RunConfig, DataSplits]:
    """The data, loaded, of the shape and fingerprint the run recorded (when resuming), accepted by the model the
    config builds; and the config with the data's shape, source name, fingerprint and standardiser (vectors) to
    record (provenance), and with the model settings vectors take (models.model_for_data: a family or a setting
    that cannot take vectors is refused here, before the run directory is touched)."""
    data, recorded = training_data(config, run, data, resume=resume)
    config = config.model_copy(update={"model": model_for_data(config.family, config.model, data.shape, data)})
    if data.standardiser is not None:
        recorded = recorded.model_copy(update={"standardiser": data.standardiser.to_config()})
    config.check_memory(data)  # sizes that cannot fit are refused before any model is built
    model = build_model(config.family, config.model, data.shape)
    model.check_data(data.train)
    model.check_data(data.test)
    return config.model_copy(update={"shape": data.shape, "data": recorded}), data


def _check_shards(config: RunConfig, images: int, dist: ddp.Dist) -> None:
    """Under torchrun every rank needs at least one image of every global batch (a rank with none would average
    in the loss of an empty batch, NaN): a one-sentence ConfigError where a batch, or the epoch's last, is smaller
    than the number of processes."""
    size, tail = config.train.batch_size, images % config.train.batch_size
    if not dist.active or min(size, tail or size) >= dist.world:
        return
    found = f"--batch-size is {size}" if size < dist.world else \
        f"the last batch of each epoch holds {tail} of the {images} training images"
    raise ConfigError(f"With {dist.world} processes every batch needs at least {dist.world} images, but {found}; "
                      f"choose a --batch-size (train.batch_size) of at least {dist.world} that leaves no smaller last "
                      "batch, or fewer processes.")


@contextlib.contextmanager
def _writer(run: RunDir, dist: ddp.Dist):
    """The run directory's writer lock (created with its marker if new), held by rank 0 while it trains."""
    if not dist.main:
        yield
        return
    with run.lock("training", create=True):
        yield


def _finished(run: RunDir, saved: RunConfig, config: RunConfig, epochs: int | None) -> bool:
    """Whether the run has trained all it is asked to (a warning says so); fewer epochs than it has trained
    are refused, so config.json is never rewritten to a shorter schedule."""
    done = run.trained_epochs()
    if done is None or done < config.total_epochs():  # None: no checkpoint (prepare found one; gone since)
        return False
    if epochs is None or epochs == saved.train.epochs:
        warnings.warn(f"The run in {run} has already trained all its {saved.train.epochs} epochs, so there is nothing "
                      "to resume; pass a larger total of --epochs (epochs=) to train it longer.", RuntimeWarning,
                      stacklevel=3)
        return True
    raise GenmodelsError(f"The run in {run} has trained {done} epochs, so --epochs {epochs} would not extend it; "
                         "pass a larger total (epochs=) or drop --resume (resume=True).")


def _train(config: RunConfig, run: RunDir, dist: ddp.Dist, device: torch.device, progress: Progress,
           data: DataSplits, resume: bool) -> TrainResult:
    set_threads(config.train.threads)
    keep_freed_memory()
    torch.manual_seed(config.train.seed)
    t = Training.start(config, run, data, dist, device, resume, progress)
    t.fit()
    ddp.barrier(dist)  # rank 0 finishes its last evaluation and checkpoint before any rank moves on
    return TrainResult(t.model.eval(), run.path, t.records.history, t.position.seconds)
