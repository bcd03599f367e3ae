"""The training loop every family shares (docs/ARCHITECTURE.md, "One training step").

`Training.start` builds the model and its optimizers and restores the checkpoint when resuming; `Training.fit`
goes through the epochs: each epoch's steps (`run_epoch`: a seeded permutation of the training split, batches as
index slices, `model.train_step` on each, metrics accumulated as tensors and read back once per logging
interval) and its artefacts (`end_epoch`: a picture, the held-out evaluation, a record, the curves, and last an
atomic checkpoint; the files written by a background thread, progress.Writer, while the next epoch trains). Where
training stands (position.Position), what it records and prints (progress.Records)
and the collapse watch (collapse.CollapseWatch) are parts of their own.
"""

from __future__ import annotations

import contextlib
import copy
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import cast

import torch
from torch import nn

from . import distributed as ddp
from .collapse import CollapseWatch
from .data import Batch, Dataset, DataSplits
from .errors import TrainingError, TrainingInterrupted
from .fileio import FileError
from .images import save_grid, save_pairs
from .metrics import diversity
from .models import GenerativeModel, Model, RunConfig, build_model
from .optim import StepContext, set_epoch_lr
from .position import Position
from .precision import restore_scaler, scaler_state
from .progress import Progress, Records, Writer
from .rngstate import rng_state, set_rank_rng_state, set_rng_state
from .rundir import RunDir
from .runlog import read_history
from .vectordata import record_progress, save_points

VECTOR_POINTS = 1000  # model samples (or test points reconstructed) in a vector run's picture


@dataclass(eq=False)
class Training:
    """One training run in progress: the model, its optimizers and the data on the device, the generators of
    the batch order and the pictures' noise, and its parts (position, records, watch)."""

    config: RunConfig
    run: RunDir
    model: Model
    optimizers: dict[str, torch.optim.Optimizer]
    ctx: StepContext  # what model.train_step gets: the (compiled) forward and the optimizer step
    train_set: Dataset
    test_set: Dataset
    dist: ddp.Dist
    order: torch.Generator  # the batch order: the same on every rank
    noise: torch.Generator  # the same noise every epoch: sample grids show progress, not luck
    epochs: int  # the model's whole schedule, pretraining phases included
    position: Position
    records: Records
    watch: CollapseWatch
    stop_signal: str | None = None  # set by SIGINT/SIGTERM: stop after the current step
    writer: Writer = field(default_factory=Writer)  # the epochs' files, in order, beside the next epoch's steps

    @classmethod
    def start(cls, config: RunConfig, run: RunDir, data: DataSplits, dist: ddp.Dist, device: torch.device,
              resume: bool, progress: Progress) -> Training:
        """Build the model and its optimizers, restore the checkpoint when resuming, write config.json and open
        the records."""
        tc = config.train
        model, optimizers, ctx, train_set, test_set = _build(config, data, dist, device)
        order = torch.Generator(device=device).manual_seed(tc.seed)
        noise = torch.Generator(device=device).manual_seed(tc.seed + 1)
        position, history = Position(), []
        rng: dict[str, torch.Tensor] = {}
        if resume:
            state, rng = run.restore(model, optimizers, config)
            set_rng_state(rng, order, device, run.checkpoint)
            # batch > 0: an interrupted epoch; `order` holds its start state, so the same permutation comes back.
            position = Position.restored(state)
            restore_scaler(ctx.scaler, state, run.checkpoint)  # fp16-mixed: the scale it had reached
            history = read_history(run, position.step)
        ctx.replicas = ddp.replicate(model, optimizers, dist)  # under torchrun: one DDP per optimizer
        # Each rank its own noise (corruption, reparameterisation): seeded by rank, or where the checkpoint holds
        # every rank's state (saved by as many processes), each rank's own, so it continues where it stopped.
        if dist.active and not (resume and set_rank_rng_state(rng, dist, run.checkpoint)):
            torch.manual_seed(tc.seed + 7919 * (dist.rank + 1) + position.step)
        if dist.main:
            run.write_config(config)
        epochs = config.total_epochs()
        records = Records.open(run, history, logs=tc.log, resumed_at=position.step if resume else None,
                               dist=dist, progress=progress, steps=epochs * math.ceil(len(train_set) / tc.batch_size),
                               step=position.step, name=f"{config.family} {run.name}")
        watch = CollapseWatch.resumed(model.family, model.collapse_advice, history)
        return cls(config, run, model, optimizers, ctx, train_set, test_set, dist, order, noise, epochs, position,
                   records, watch)

    def fit(self) -> None:
        """Train the epochs left, stopping on a signal (_stop_on_signals); every file of the epochs trained is
        written before it returns or raises, and the records close, however it ends."""
        try:
            try:
                with _stop_on_signals(self):
                    for epoch in range(self.position.epoch, self.epochs):
                        self.position.epoch = epoch
                        self.model.start_epoch(epoch)
                        self.run_epoch()
                        start = time.perf_counter()
                        self.model.finish_epoch()  # PCA's eigendecomposition, say: part of the training time
                        self.position.seconds[-1] += time.perf_counter() - start
                        ddp.broadcast_buffers(self.model, self.dist)  # every rank holds what rank 0 evaluates, saves
                        self.end_epoch()
                    self.writer.wait()  # the last epoch's files are on disk before training returns
            finally:
                self.writer.close()  # on any error too: what was submitted is written (a failed write stops it)
        except FileError as err:  # a full disk, say: the last complete checkpoint stands
            failed = self.writer.failed_epoch if err is self.writer.error else None  # a background write's epoch
            raise TrainingError(f"Training stopped in epoch {(self.position.epoch if failed is None else failed) + 1} "
                                f"because {err.cause or err}; {self.kept()}, "
                                f"{'free some space and ' if err.cause else ''}{self.resume_hint()}.") from None
        finally:
            self.records.close()

    # -- the steps of one epoch ------------------------------------------------------------------------
    def run_epoch(self) -> None:
        """The present epoch's steps from batch `position.batch` on (above 0 when resuming an interrupted epoch)."""
        model, tc, data, at = self.model, self.config.train, self.train_set, self.position
        model.train()
        set_epoch_lr(self.optimizers, tc.lr_schedule, at.epoch, self.epochs)
        start = at.epoch_start = time.perf_counter()
        epoch_start_rng = self.order.get_state()  # an interrupted epoch resumes from the same permutation
        perm = torch.randperm(len(data), generator=self.order, device=self.order.device)
        # Each part is averaged over the steps that returned it: a GAN's generator terms come every k-th step.
        sums: dict[str, torch.Tensor] = {}
        seen: dict[str, int] = {}
        count, t0 = 0, time.perf_counter()
        for i in range(at.batch * tc.batch_size, len(data), tc.batch_size):
            chosen = perm[i : i + tc.batch_size]
            idx = ddp.shard(chosen, self.dist)  # this rank's share of the global batch
            self.ctx.share = len(idx) * self.dist.world / len(chosen)  # its loss weight (StepContext.share)
            batch = data.take(idx, labels=model.needs_labels)
            if tc.channels_last and batch.x.dim() == 4:
                batch = Batch(batch.x.contiguous(memory_format=torch.channels_last), batch.labels)
            # Steps after this one until the next record: at each log_every-th step and the epoch's last.
            left = math.ceil((len(data) - i) / tc.batch_size) - 1  # batches after this one in the epoch
            self.ctx.steps_to_log = min(-(at.step + 1) % tc.log_every, left)
            logged = self.ctx.logged
            with self.ctx.autocast():  # fp32: nothing; else the forward in bf16/fp16, ctx.step leaves it
                parts = model.train_step(batch, self.ctx)
            for k, v in parts.items():
                sums[k] = sums[k] + v if k in sums else v.clone()
                seen[k] = seen.get(k, 0) + 1
            count += 1
            at.step += 1
            self.records.stepped()
            if logged:
                means = {k: v.item() / seen[k] for k, v in ddp.average_parts(sums, self.dist).items()}
                self._check_finite(means)
                model.check_logged(means)
                rate = count * tc.batch_size / (time.perf_counter() - t0)
                self.records.log({"step": at.step, "epoch": at.epoch + 1, "split": "train", **means})
                self.records.show_rate(means.get("loss", float("nan")), rate)
                sums, seen, count, t0 = {}, {}, 0, time.perf_counter()
            if ddp.any_rank(self.stop_signal is not None, self.dist, batch.x.device):
                self.stop_signal = self.stop_signal or "a signal to another process"
                self._save_interrupted(i // tc.batch_size + 1, epoch_start_rng)
        at.batch = 0
        at.seconds.append(time.perf_counter() - start)

    def _check_finite(self, means: dict[str, float], where: str = "") -> None:
        """Stop on a non-finite logged loss (every epoch's last step is logged, before its checkpoint): the last
        good checkpoint stays as it was."""
        bad = [k for k, v in means.items() if not math.isfinite(v)]
        if bad:
            raise TrainingError(
                f"The {where}{bad[0]} term became {means[bad[0]]} by step {self.position.step}; {self.kept()}, "
                "lower --lr (or check the data for extreme values) and train again."
            )

    def kept(self) -> str:
        """What a stopped run leaves, in words (after the background writes under way: what is on disk)."""
        self.writer.wait(quiet=True)
        done = self.run.trained_epochs() if self.dist.main else None
        if done is None:
            return "nothing was saved yet"
        return f"the last good checkpoint (epoch {done}) is kept in {self.run.checkpoint}"

    def resume_hint(self) -> str:
        return f"resume with `genmodels train {self.model.family} --out {self.run} --resume`"

    def _save_interrupted(self, batch: int, epoch_start_rng: torch.Tensor) -> None:
        """Checkpoint the position inside the epoch (the batch order's generator as it was at the
        epoch's start, the global RNG as it is now), then raise TrainingInterrupted. The record of the
        unfinished logging interval is lost; the weights of a resumed run equal an uninterrupted run's."""
        run, at = self.run, self.position
        how = self.resume_hint()
        self.writer.wait()  # the last epoch's checkpoint first: this one must land after it, and it may have failed
        if not self.model.resumes_mid_epoch:  # in-epoch state that is not in the checkpoint (PCA's sums)
            raise TrainingInterrupted(f"{self.stop_signal} stopped training in epoch {at.epoch + 1}; {self.kept()}, "
                                      f"and {how} repeats that epoch.")
        bad = next((name for name, p in self.model.named_parameters() if not torch.isfinite(p).all()), None)
        if bad is not None:  # diverged since the last logged step: the last good checkpoint stays
            raise TrainingError(f"{self.stop_signal} stopped training at step {at.step}, but {bad} is no longer "
                                f"finite; {self.kept()}, lower --lr and train again.")
        rng = {**rng_state(self.order), **ddp.rank_rng_states(self.dist, self.order.device)}  # every rank's noise
        rng["data"] = epoch_start_rng
        if self.dist.main:
            run.save(self.model, self.optimizers, {**at.inside_epoch(batch), **scaler_state(self.ctx.scaler)}, rng)
        raise TrainingInterrupted(f"{self.stop_signal} stopped training at step {at.step} (epoch {at.epoch + 1}), "
                                  f"saved in {run.checkpoint}; {how}.")

    # -- what each epoch leaves behind -----------------------------------------------------------------
    def end_epoch(self) -> None:
        """Draw the present epoch's picture, evaluate, log, redraw the curves and checkpoint (atomically, last): on
        rank 0 alone under torchrun. The files are written by the background writer, in that order, from copies
        made now; the previous epoch's are all written first (one epoch's copies at a time), and a write of
        theirs that failed is raised here."""
        others = ddp.rank_rng_states(self.dist, self.order.device)  # a collective, before rank 0 goes on alone
        if not self.dist.main:
            return
        epoch, tc = self.position.epoch, self.config.train
        self.writer.wait()
        self.writer.epoch = epoch
        last = epoch + 1 == self.epochs
        picture = self._epoch_picture()
        with self.ctx.autocast():  # the model's held-out terms in the precision it trains in (losses in float32)
            test = evaluate_parts(self.model, self.test_set, tc.eval_batch_size, tc.seed)
        self._check_finite(test, "held-out ")  # before the record and the checkpoint
        self.records.log({"step": self.position.step, "epoch": epoch + 1, "split": "test", **test, **picture})
        self.watch.check(epoch, picture.get("diversity"), last)
        self.records.epoch_line(epoch, self.epochs, {**{f"test {k}": v for k, v in test.items()}, **picture},
                                self.position.seconds[-1])
        self.records.plot(self.run.loss_plot, self.model.curves, last, self.writer)
        # Last, so a crash in any write before it leaves the checkpoint an epoch behind: --resume redoes it all.
        self.writer.submit(self.run.save, *snapshot(self.model, self.optimizers),
                           {**self.position.at_epoch_end(), **scaler_state(self.ctx.scaler)},
                           {**rng_state(self.order), **others})

    def _epoch_picture(self) -> dict[str, float]:
        """A sample grid from the fixed noise, or for a model that cannot sample the reconstructions of
        the same 16 test images, so progress is visible epoch by epoch. Returns the samples' diversity
        against the first 64 test images (metrics.diversity): a collapse shows in the log, not only the picture."""
        # A model that samples or encodes is a GenerativeModel (models/base.py), which has these methods.
        model = cast(GenerativeModel, self.model)
        model.eval()
        found: dict[str, float] = {}
        with torch.inference_mode():
            if self.test_set.kind == "vectors":
                found = self._vector_picture(model)
            elif model.samples:
                self.noise.manual_seed(self.config.train.seed + 1)
                with self.ctx.autocast():  # the model in its precision; the diversity's distances in float32
                    samples = model.sample(64, generator=self.noise).float()
                self.writer.submit(save_grid, samples, self.run.samples_png())
                real = self.test_set.batch(slice(0, 64))
                if (spread := diversity(samples, real)) is not None:  # None: under 2 test images, or all alike
                    found["diversity"] = spread
            elif model.encodes:
                x = model.eval_input(self.test_set.batch(slice(0, 16)))
                with self.ctx.autocast():
                    reconstructions = model.reconstruct(x).float()
                self.writer.submit(save_pairs, x, reconstructions, self.run.reconstructions_png)
        model.train()
        return found

    def _vector_picture(self, model: GenerativeModel) -> dict[str, float]:
        """For vector data: VECTOR_POINTS samples from the fixed noise (or reconstructions of as many test points),
        in data units, over the toy's true density or the test points (vectordata.save_points); the diversity of
        the first 64 samples as for images."""
        unit = self.test_set.standardiser
        assert unit is not None, "DataSplits standardises every vector split"
        real = self.test_set.batch(slice(0, VECTOR_POINTS))
        found = {}
        if model.samples:
            self.noise.manual_seed(self.config.train.seed + 1)
            with self.ctx.autocast():
                points = model.sample(VECTOR_POINTS, generator=self.noise).float()
            if (spread := diversity(points[:64], real[:64])) is not None:
                found["diversity"] = spread
            path, what = self.run.samples_png(), "samples"
            # The same noise's samples at a few epochs, side by side: images/progress.png (vectordata), written by
            # the background writer ahead of this epoch's checkpoint, as the other pictures are.
            self.writer.submit(record_progress, self.run, self.position.epoch, self.epochs, unit.inverse(points),
                               self.config.data.source, unit.inverse(real), self.config.family)
        else:
            with self.ctx.autocast():
                points = model.reconstruct(model.eval_input(real)).float()
            path, what = self.run.reconstructions_png, "test points reconstructed"
        self.writer.submit(save_points, unit.inverse(points), path, self.config.data.source, unit.inverse(real),
                           f"{self.config.family}: {what}, epoch {self.position.epoch + 1}")
        return found


def _build(config: RunConfig, data: DataSplits, dist: ddp.Dist, device: torch.device
           ) -> tuple[Model, dict[str, torch.optim.Optimizer], StepContext, Dataset, Dataset]:
    """The data on the device, the model the config describes (the same weights on every rank), its optimizers
    and the StepContext its steps get."""
    tc = config.train
    train_set, test_set = data.train.to(device), data.test.to(device)
    model = build_model(config.family, config.model, data.shape).to(device)
    if tc.channels_last:  # before the optimizers, so Adam's state takes the weights' layout
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs omit memory_format
    model.check_data(train_set)
    model.check_data(test_set)
    ddp.broadcast_module(model, dist)
    optimizers = model.make_optimizers(tc, device)
    # train.compile: the steps call a compiled forward that shares the model's parameters (a module, untyped).
    forward = cast(nn.Module, torch.compile(model)) if tc.compile else model
    ctx = StepContext(forward, optimizers, tc.grad_clip, precision=tc.precision, device=device)
    return model, optimizers, ctx, train_set, test_set


@dataclass(frozen=True)
class _Frozen:
    """A copy of a model's or an optimizer's state_dict, read as the live one is (`family`, `state_dict()`)."""

    family: str
    state: dict

    def state_dict(self) -> dict:
        return self.state


def snapshot(model: Model, optimizers: dict[str, torch.optim.Optimizer]
             ) -> tuple[Model, dict[str, torch.optim.Optimizer]]:
    """Copies in host memory (where the checkpoint is written from) of the weights and the optimizers' states as
    they are now, for `RunDir.save` in the background writer while the next epoch changes the live ones (a few
    copies of the weights: milliseconds). The stand-ins have what `save` reads of a model and an optimizer
    (family, state_dict()), hence the casts."""
    frozen = {name: cast(torch.optim.Optimizer, _Frozen(model.family, _host_copy(opt.state_dict())))
              for name, opt in optimizers.items()}
    return cast(Model, _Frozen(model.family, _host_copy(model.state_dict()))), frozen


def _host_copy(value):
    """`value` (a state_dict: tensors in dicts and lists) with every tensor copied to host memory."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: _host_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_host_copy(v) for v in value]
    return copy.deepcopy(value)


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
