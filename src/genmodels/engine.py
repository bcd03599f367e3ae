"""The one training loop for every family (docs/ARCHITECTURE.md, "One training step").

`train` (and `resume_run`) read top to bottom: set up the run (device, run directory, data, model,
optimizers, and the checkpoint to continue from), then per epoch the steps (`Training.run_epoch`:
a seeded permutation of the in-memory training tensor, batches as index slices, `model.train_step`
on each, metrics accumulated as tensors and read back once per logging interval) and the epoch's
artefacts (`Training.end_epoch`: held-out evaluation, a metrics record, an atomic checkpoint, the loss
curve and a picture).
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from tqdm.auto import tqdm

from . import distributed as ddp
from .config import merge, shown
from .data import Batch, Dataset, DataSplits
from .errors import CheckpointError, ConfigError, GenmodelsError, TrainingError, TrainingInterrupted
from .fileio import FileError
from .flags import typed_flag, typed_value
from .images import save_grid, save_pairs
from .metrics import LOW_DIVERSITY, diversity
from .models import Model, RunConfig, build_model, build_run_config
from .optim import StepContext, set_epoch_lr
from .plots import plot_curves
from .precision import check_precision, restore_scaler, scaler_state
from .provenance import training_data
from .rundir import RunDir
from .runlog import MetricsLog, check_logs, open_history, read_history
from .runtime import keep_freed_memory, resolve_device, set_threads

# What training prints: True, a progress bar on a terminal and elsewhere (a file, a pipe) a line per epoch;
# "lines", a line per epoch and never a bar; False, nothing.
Progress = bool | Literal["lines"]


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
    if resume:
        settings = json.loads(config.to_json())
        del settings["train"]["epochs"], settings["shape"], settings["version"]
        if data is not None:  # the data's own name, not the config's, is what the run recorded
            settings["data"]["source"] = data.source
        return resume_run(run_dir, config.train.epochs, progress=progress, data=data, settings=settings)
    check_logs(config.train.log)
    run = RunDir(run_dir)
    dist, device = ddp.setup(resolve_device(config.train.device))
    check_precision(config.train.precision, device)
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
    that differs from the saved config is refused, so no setting is silently ignored."""
    run = RunDir(run_dir)
    run.prepare(resume=True, overwrite=False)  # only checks there is a checkpoint to resume
    saved = run.read_config()
    runtime = _check_unchanged(run, saved, settings or {})
    config = saved.with_epochs(epochs or saved.train.epochs)
    config = config.model_copy(update={"train": config.train.model_copy(update=runtime)})
    dist, device = ddp.setup(resolve_device(config.train.device))
    check_precision(config.train.precision, device)
    if _finished(run, saved, config, epochs):  # nothing to train, so nothing is rewritten
        model, _ = run.load_model(device)
        return TrainResult(model, run.path, read_history(run))
    check_logs(config.train.log)
    config, data = _checked_data(config, data, run, resume=True)
    _check_shards(config, len(data.train), dist)
    with _writer(run, dist):
        if dist.main:  # a kill between a temporary file's write and its rename left it: nobody renames it now
            run.remove_dead_temps()
        return _train(config, run, dist, device, progress, data, resume=True)


# Settings of how a run is carried out, not of what it computes: a resumed run may take new ones.
# The precision among them: weights, optimizer state and checkpoints are float32 whatever it is, so a run
# trained in fp32 may continue in bf16-mixed (say) and config.json then records the precision it trains in now.
RUNTIME = ("device", "threads", "log", "log_every", "eval_batch_size", "compile", "precision", "channels_last")


def _check_unchanged(run: RunDir, saved: RunConfig, settings: dict[str, Any]) -> dict[str, Any]:
    """A one-sentence ConfigError naming every setting in `settings` (but train.epochs and the RUNTIME ones)
    that differs from the saved config's, as its flag and its config key; the RUNTIME settings given."""
    family = settings.get("family")
    if family is not None and family != saved.family:
        raise ConfigError(f"The run in {run} is a {saved.family} run, not {shown(family)}; resume it with "
                          f"`genmodels train {saved.family} --out {run} --resume` (family {saved.family!r}).")
    given = {section: {k: v for k, v in (settings.get(section) or {}).items() if v is not None}
             for section in ("model", "train", "data")}
    if not any(given.values()):
        return {}
    asked = build_run_config(merge(json.loads(saved.to_json()), given), "the settings given to resume")  # valid?
    differ = []
    for section, values in given.items():
        for key in values:
            if section == "train" and (key == "epochs" or key in RUNTIME):  # what a resumed run may change
                continue
            was, now = getattr(getattr(saved, section), key), getattr(getattr(asked, section), key)
            if was != now:
                differ.append(f"{typed_flag(getattr(asked, section), key, now)} ({section}.{key}) differs from the "
                              f"run's {typed_value(was)}")
    if differ:
        raise ConfigError(f"The run in {run} resumes with its saved settings, but {', and '.join(differ)}; resume "
                          f"without {'it' if len(differ) == 1 else 'them'} (--epochs may extend the run) or train "
                          "a new run into another folder.")
    return {key: getattr(asked.train, key) for key in given["train"] if key in RUNTIME}


def _checked_data(config: RunConfig, data: DataSplits | None, run: RunDir,
                  resume: bool = False) -> tuple[RunConfig, DataSplits]:
    """The data, loaded, of the shape and fingerprint the run recorded (when resuming), accepted by the model the
    config builds; and the config with the data's shape, source name and fingerprint to record (provenance)."""
    data, recorded = training_data(config, run, data, resume=resume)
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
    model = build_model(saved.family, saved.model, saved.shape)
    if done < model.total_epochs(config.train.epochs):
        return False
    if epochs is None or epochs == saved.train.epochs:
        warnings.warn(f"The run in {run} has already trained all its {saved.train.epochs} epochs, so there is nothing "
                      "to resume; pass a larger total of --epochs (epochs=) to train it longer.", RuntimeWarning, stacklevel=3)
        return True
    raise GenmodelsError(f"The run in {run} has trained {done} epochs, so --epochs {epochs} would not extend it; "
                         "pass a larger total (epochs=) or drop --resume (resume=True).")


def _train(config: RunConfig, run: RunDir, dist: ddp.Dist, device: torch.device, progress: Progress,
           data: DataSplits, resume: bool) -> TrainResult:
    set_threads(config.train.threads)
    keep_freed_memory()
    torch.manual_seed(config.train.seed)
    t = Training.start(config, run, data, dist, device, resume, progress)
    epoch = t.epoch
    try:
        with _stop_on_signals(t):
            for epoch in range(t.epoch, t.epochs):
                t.model.start_epoch(epoch)
                t.run_epoch(epoch)
                start = time.perf_counter()
                t.model.finish_epoch()  # PCA's eigendecomposition, say: part of the training time
                t.seconds[-1] += time.perf_counter() - start
                ddp.broadcast_buffers(t.model, dist)  # every rank holds what rank 0 evaluates and saves
                t.end_epoch(epoch)
    except FileError as err:  # a full disk, say: the last complete checkpoint stands
        raise TrainingError(f"Training stopped in epoch {epoch + 1} because {err.cause or err}; {t.kept()}, "
                            f"{'free some space and ' if err.cause else ''}{t.resume_hint()}.") from None
    finally:
        t.close()
    ddp.barrier(dist)  # rank 0 finishes its last evaluation and checkpoint before any rank moves on
    return TrainResult(t.model.eval(), run.path, t.history, t.seconds)


@dataclass(eq=False)
class Training:
    """One training run in progress: every piece of the loop reads what it needs from here, by name."""

    config: RunConfig
    run: RunDir
    model: Model
    optimizers: dict[str, torch.optim.Optimizer]
    ctx: StepContext  # what model.train_step gets: the (compiled) forward and the optimizer step
    train_set: Dataset
    test_set: Dataset
    order: torch.Generator  # the batch order: the same on every rank
    dist: ddp.Dist
    epochs: int  # the model's whole schedule, pretraining phases included
    epoch: int = 0  # where training stands: epoch, step and batch (batch > 0: inside an interrupted epoch)
    step: int = 0
    batch: int = 0
    history: list[dict] = field(default_factory=list)
    metrics: MetricsLog | None = None  # metrics.jsonl, open on rank 0
    bar: tqdm | None = None  # shown on a terminal; it writes an epoch's line every tenth of the run
    lines: bool = False  # no bar: print every epoch's line
    seconds: list[float] = field(default_factory=list)  # wall time of each epoch's training steps
    seconds_before: float | None = 0.0  # training time before this process resumed it (None: not recorded)
    epoch_start: float = 0.0
    stop_signal: str | None = None  # set by SIGINT/SIGTERM: stop after the current step
    last_plot: float = field(default_factory=time.perf_counter)
    varied: bool = False  # the samples' diversity has been at or above LOW_DIVERSITY in some epoch
    low_diversity: bool = False  # warned about the present stretch below LOW_DIVERSITY
    noise: torch.Generator | None = None  # the same noise every epoch: sample grids show progress, not luck

    @classmethod
    def start(cls, config: RunConfig, run: RunDir, data: DataSplits, dist: ddp.Dist, device: torch.device,
              resume: bool, progress: Progress) -> Training:
        """Build the model and its optimizers, restore the checkpoint when resuming, open the log."""
        tc = config.train
        train_set, test_set = data.train.to(device), data.test.to(device)
        model = build_model(config.family, config.model, data.shape).to(device)
        if tc.channels_last:  # before the optimizers, so Adam's state takes the weights' layout
            model.to(memory_format=torch.channels_last)
        model.check_data(train_set)
        model.check_data(test_set)
        ddp.broadcast_module(model, dist)
        optimizers = model.make_optimizers(tc, device)
        # train.compile: the steps call a compiled forward that shares the model's parameters.
        ctx = StepContext(torch.compile(model) if tc.compile else model, optimizers, tc.grad_clip,
                          precision=tc.precision, device=device)
        t = cls(config, run, model, optimizers, ctx, train_set, test_set,
                order=torch.Generator(device=device).manual_seed(tc.seed), dist=dist,
                epochs=model.total_epochs(tc.epochs),
                noise=torch.Generator(device=device).manual_seed(tc.seed + 1))
        rng: dict[str, torch.Tensor] = {}
        if resume:
            state, rng = run.restore(model, optimizers)
            _set_rng_state(rng, t.order, device, run.checkpoint)
            # batch > 0: an interrupted epoch; `order` holds its start state, so the same permutation comes back.
            t.epoch, t.step, t.batch = state["epoch"], state["step"], state.get("batch", 0)
            restore_scaler(ctx.scaler, state, run.checkpoint)  # fp16-mixed: the scale it had reached
            t.seconds_before = float(state["seconds"]) if "seconds" in state else None  # older checkpoints
            t.history = read_history(run, t.step)
            t.varied = any(r.get("diversity", 0.0) >= LOW_DIVERSITY for r in t.history)
        ctx.replicas = ddp.replicate(model, optimizers, dist)  # under torchrun: one DDP per optimizer
        # Each rank its own noise (corruption, reparameterisation): seeded by rank, or where the checkpoint holds
        # every rank's state (saved by as many processes), each rank's own, so it continues where it stopped.
        if dist.active and not (resume and _set_rank_rng_state(rng, dist, run.checkpoint)):
            torch.manual_seed(tc.seed + 7919 * (dist.rank + 1) + t.step)
        if dist.main:
            run.write_config(config)
            # drops records logged past the checkpoint
            t.metrics = open_history(run, t.history, tc.log, resumed_at=t.step if resume else None)
        shown = progress is not False and dist.main
        bar = shown and progress is True and _terminal(sys.stderr)  # tqdm draws on stderr
        t.bar = tqdm(total=t.epochs * math.ceil(len(train_set) / tc.batch_size), initial=t.step,
                     disable=not bar, unit="step", desc=f"{config.family} {run.name}", dynamic_ncols=True)
        t.lines = shown and not bar
        return t

    def close(self) -> None:
        self.bar.close()
        if self.metrics is not None:
            self.metrics.close()

    def log(self, record: dict) -> None:
        self.history.append(record)
        if self.metrics is not None:
            self.metrics.write(record)

    # -- the steps of one epoch ------------------------------------------------------------------------
    def run_epoch(self, epoch: int) -> None:
        """The epoch's steps from batch `self.batch` on (above 0 when resuming an interrupted epoch)."""
        model, tc, data = self.model, self.config.train, self.train_set
        model.train()
        set_epoch_lr(self.optimizers, tc.lr_schedule, epoch, self.epochs)
        start = self.epoch_start = time.perf_counter()
        epoch_start_rng = self.order.get_state()  # an interrupted epoch resumes from the same permutation
        perm = torch.randperm(len(data), generator=self.order, device=self.order.device)
        # Each part is averaged over the steps that returned it: a GAN's generator terms come every k-th step.
        sums: dict[str, torch.Tensor] = {}
        seen: dict[str, int] = {}
        count, t0 = 0, time.perf_counter()
        for i in range(self.batch * tc.batch_size, len(data), tc.batch_size):
            chosen = perm[i : i + tc.batch_size]
            idx = ddp.shard(chosen, self.dist)  # this rank's share of the global batch
            self.ctx.share = len(idx) * self.dist.world / len(chosen)  # its loss weight (StepContext.share)
            batch = data.take(idx, labels=model.needs_labels)
            if tc.channels_last and batch.x.dim() == 4:
                batch = Batch(batch.x.contiguous(memory_format=torch.channels_last), batch.labels)
            # Steps after this one until the next record: at each log_every-th step and the epoch's last.
            left = math.ceil((len(data) - i) / tc.batch_size) - 1  # batches after this one in the epoch
            self.ctx.steps_to_log = min(-(self.step + 1) % tc.log_every, left)
            logged = self.ctx.logged
            with self.ctx.autocast():  # fp32: nothing; else the forward in bf16/fp16, ctx.step leaves it
                parts = model.train_step(batch, self.ctx)
            for k, v in parts.items():
                sums[k] = sums[k] + v if k in sums else v.clone()
                seen[k] = seen.get(k, 0) + 1
            count += 1
            self.step += 1
            self.bar.update(1)
            if logged:
                means = {k: v.item() / seen[k] for k, v in ddp.average_parts(sums, self.dist).items()}
                self._check_finite(means)
                model.check_logged(means)
                rate = count * tc.batch_size / (time.perf_counter() - t0)
                self.log({"step": self.step, "epoch": epoch + 1, "split": "train", **means})
                self.bar.set_postfix(loss=f"{means.get('loss', float('nan')):.3f}", img_s=f"{rate:.0f}", refresh=False)
                sums, seen, count, t0 = {}, {}, 0, time.perf_counter()
            if ddp.any_rank(self.stop_signal is not None, self.dist, batch.x.device):
                self.stop_signal = self.stop_signal or "a signal to another process"
                self._save_interrupted(epoch, i // tc.batch_size + 1, epoch_start_rng)
        self.batch = 0
        self.seconds.append(time.perf_counter() - start)

    def _check_finite(self, means: dict[str, float], where: str = "") -> None:
        """Stop on a non-finite logged loss (every epoch's last step is logged, before its checkpoint): the last
        good checkpoint stays as it was."""
        bad = [k for k, v in means.items() if not math.isfinite(v)]
        if bad:
            raise TrainingError(
                f"The {where}{bad[0]} term became {means[bad[0]]} by step {self.step}; {self.kept()}, "
                "lower --lr (or check the data for extreme values) and train again."
            )

    def _seconds(self, unfinished: float = 0.0) -> dict[str, float]:
        """{"seconds": training time so far} for the checkpoint; nothing where an older checkpoint did not keep it."""
        if self.seconds_before is None:
            return {}
        return {"seconds": round(self.seconds_before + sum(self.seconds) + unfinished, 3)}

    def kept(self) -> str:
        """What a stopped run leaves, in words."""
        done = self.run.trained_epochs() if self.dist.main else None
        if done is None:
            return "nothing was saved yet"
        return f"the last good checkpoint (epoch {done}) is kept in {self.run.checkpoint}"

    def resume_hint(self) -> str:
        return f"resume with `genmodels train {self.model.family} --out {self.run} --resume`"

    def _save_interrupted(self, epoch: int, batch: int, epoch_start_rng: torch.Tensor) -> None:
        """Checkpoint the position inside the epoch (the batch order's generator as it was at the
        epoch's start, the global RNG as it is now), then raise TrainingInterrupted. The record of the
        unfinished logging interval is lost; the weights of a resumed run equal an uninterrupted run's."""
        run = self.run
        how = self.resume_hint()
        if not self.model.resumes_mid_epoch:  # in-epoch state that is not in the checkpoint (PCA's sums)
            raise TrainingInterrupted(f"{self.stop_signal} stopped training in epoch {epoch + 1}; {self.kept()}, "
                                      f"and {how} repeats that epoch.")
        bad = next((name for name, p in self.model.named_parameters() if not torch.isfinite(p).all()), None)
        if bad is not None:  # diverged since the last logged step: the last good checkpoint stays
            raise TrainingError(f"{self.stop_signal} stopped training at step {self.step}, but {bad} is no longer "
                                f"finite; {self.kept()}, lower --lr and train again.")
        rng = {**_rng_state(self.order), **ddp.rank_rng_states(self.dist, self.order.device)}  # every rank's noise
        rng["data"] = epoch_start_rng
        if self.dist.main:
            run.save(self.model, self.optimizers, {"epoch": epoch, "step": self.step, "batch": batch,
                                                   **self._seconds(time.perf_counter() - self.epoch_start),
                                                   **scaler_state(self.ctx.scaler)}, rng)
        raise TrainingInterrupted(f"{self.stop_signal} stopped training at step {self.step} (epoch {epoch + 1}), "
                                  f"saved in {run.checkpoint}; {how}.")

    # -- what each epoch leaves behind -----------------------------------------------------------------
    def end_epoch(self, epoch: int) -> None:
        """Draw the epoch's picture, evaluate, log, checkpoint (atomically) and redraw the curves: on rank 0
        alone under torchrun."""
        others = ddp.rank_rng_states(self.dist, self.order.device)  # a collective, before rank 0 goes on alone
        if not self.dist.main:
            return
        last = epoch + 1 == self.epochs
        picture = self._epoch_picture()
        with self.ctx.autocast():  # the model's held-out terms in the precision it trains in (losses in float32)
            test = evaluate_parts(self.model, self.test_set, self.config.train.eval_batch_size, self.config.train.seed)
        self._check_finite(test, "held-out ")  # before the record and the checkpoint
        self.log({"step": self.step, "epoch": epoch + 1, "split": "test", **test, **picture})
        self._check_diversity(epoch, picture.get("diversity"), last)
        if self.lines or (not self.bar.disable and ((epoch + 1) % max(1, self.epochs // 10) == 0 or last)):
            shown = {**{f"test {k}": v for k, v in test.items()}, **picture}
            line = (f"epoch {epoch + 1}/{self.epochs}  " + "  ".join(f"{k} {v:.3f}" for k, v in shown.items())
                    + f"  {self.seconds[-1]:.1f} s")
            if self.lines:
                print(line, flush=True)
            else:
                self.bar.write(line)
        if last or time.perf_counter() - self.last_plot > 10:  # a plot costs ~0.25 s: not every short epoch
            plot_curves(self.history, self.run.loss_plot, self.model.curves)
            self.last_plot = time.perf_counter()
        # Last, so a crash in any write before it leaves the checkpoint an epoch behind: --resume redoes it all.
        self.run.save(self.model, self.optimizers, {"epoch": epoch + 1, "step": self.step, **self._seconds(),
                                                    **scaler_state(self.ctx.scaler)}, {**_rng_state(self.order), **others})

    def _epoch_picture(self) -> dict[str, float]:
        """A sample grid from the fixed noise, or for a model that cannot sample the reconstructions of
        the same 16 test images, so progress is visible epoch by epoch. Returns the samples' diversity
        against the first 64 test images (metrics.diversity): a collapse shows in the log, not only the picture."""
        model = self.model
        model.eval()
        found = {}
        with torch.inference_mode():
            if model.samples:
                self.noise.manual_seed(self.config.train.seed + 1)
                with self.ctx.autocast():  # the model in its precision; the diversity's distances in float32
                    samples = model.sample(64, generator=self.noise).float()
                save_grid(samples, self.run.samples_png())
                real = self.test_set.batch(slice(0, 64))
                if len(real) > 1:
                    found["diversity"] = diversity(samples, real)
            elif model.encodes:
                x = model.eval_input(self.test_set.batch(slice(0, 16)))
                with self.ctx.autocast():
                    reconstructions = model.reconstruct(x).float()
                save_pairs(x, reconstructions, self.run.reconstructions_png)
        model.train()
        return found

    def _check_diversity(self, epoch: int, value: float | None, last: bool) -> None:
        """Warn when the samples' diversity falls below LOW_DIVERSITY after having been above it (a collapse),
        and when training ends below it; once per stretch below. An untrained generator's samples all look
        alike, so a low start alone is no warning."""
        if value is None:
            return
        low = value < LOW_DIVERSITY
        if low and not self.low_diversity and (self.varied or last):
            fell = "fell to" if self.varied else "ended at"
            warnings.warn(f"After epoch {epoch + 1} the {self.model.family}'s samples look alike: their diversity "
                          f"{fell} {value:.2f}, where 1 is as varied as the test images, so it is collapsing onto a few "
                          f"images; {self.model.collapse_advice}.", RuntimeWarning, stacklevel=2)
            self.low_diversity = True
        elif not low:
            self.low_diversity, self.varied = False, True


def _terminal(stream) -> bool:
    """Whether a person watches `stream` live: a terminal, or a Jupyter kernel (where tqdm draws a widget)."""
    if "ipykernel" in sys.modules:
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no such method, or a closed stream
        return False


@torch.inference_mode()
def evaluate_parts(model: Model, test: Dataset, batch_size: int, seed: int) -> dict[str, float]:
    """Mean logged parts over the whole held-out split, with a fixed seed so epochs compare fairly.

    fork_rng keeps the training RNG stream untouched, so evaluating never changes what training does."""
    was_training = model.training
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    devices = [test.images.device] if test.images.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for i in range(0, len(test), batch_size):
            batch = test.take(slice(i, i + batch_size), labels=model.needs_labels)
            batch = Batch(model.eval_input(batch.x), batch.labels)
            for k, v in model.eval_parts(batch).items():
                sums[k] = sums.get(k, 0.0) + v.float() * batch.x.shape[0]
    model.train(was_training)
    return {k: (v / len(test)).item() for k, v in sums.items()}


def _rng_state(order: torch.Generator) -> dict[str, torch.Tensor]:
    rng = {"torch": torch.get_rng_state(), "data": order.get_state()}
    if order.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(order.device)
    return rng


def _set_rng_state(rng: dict[str, torch.Tensor], order: torch.Generator, device: torch.device, path: Path) -> None:
    """Restore the RNG states, each first checked against the generator it goes to (a wrong-sized state
    would be read out of bounds)."""
    now = _rng_state(order)
    for key in ("torch", "data", *(["cuda"] if "cuda" in now and "cuda" in rng else [])):
        value = rng.get(key)
        if value is None or value.dtype != torch.uint8 or value.shape != now[key].shape:
            raise CheckpointError(f"{path} holds no valid {key} random-number state; it is damaged, retrain the run.")
    torch.set_rng_state(rng["torch"])
    order.set_state(rng["data"])
    if device.type == "cuda" and "cuda" in rng:
        torch.cuda.set_rng_state(rng["cuda"], device)


def _set_rank_rng_state(rng: dict[str, torch.Tensor], dist: ddp.Dist, path: Path) -> bool:
    """Under torchrun, each rank's own CPU random-number state from a checkpoint saved by as many processes
    (rank 0's is "torch", already set; the others' "torch.rank<r>"); False, and nothing set, for a checkpoint
    from one process, another number of them, or before they were kept."""
    if any(f"torch.rank{r}" not in rng for r in range(1, dist.world)) or f"torch.rank{dist.world}" in rng:
        return False
    if dist.rank > 0:
        value, now = rng[f"torch.rank{dist.rank}"], torch.get_rng_state()
        if value.dtype != torch.uint8 or value.shape != now.shape:
            raise CheckpointError(f"{path} holds no valid random-number state for rank {dist.rank}; it is damaged, "
                                  "retrain the run.")
        torch.set_rng_state(value)
    return True


@contextlib.contextmanager
def _stop_on_signals(training: Training):
    """While training, SIGINT (Ctrl-C) and SIGTERM ask the loop to stop after the current step,
    save where it is and raise TrainingInterrupted; a second Ctrl-C stops at once, as usual.
    Only the main thread can install signal handlers; elsewhere training cannot be interrupted this way."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def ask_to_stop(signum, frame):
        if training.stop_signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        training.stop_signal = signal.Signals(signum).name

    previous = {sig: signal.signal(sig, ask_to_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
