"""The one training loop for every family (DESIGN.md rule 2).

Per epoch: a seeded permutation of the in-memory training tensor, batches as
index slices, `model.train_step` on each, metrics accumulated as tensors and
read back once per logging interval; then evaluation on the held-out split,
an atomic checkpoint, the loss curve and a sample grid.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import checkpoint as ckpt
from . import distributed as ddp
from .config import RunConfig
from .data import DataSplits, Dataset, load_data
from .errors import GenmodelsError, TrainingInterrupted
from .models import GenerativeModel, build_model
from .report.images import save_grid, save_pairs
from .report.plots import plot_loss_curve


class TrainingError(GenmodelsError):
    """Training cannot go on (a loss became NaN or infinite)."""


@contextlib.contextmanager
def _stop_on_signals(loop: "_Loop"):
    """While training, SIGINT (Ctrl-C) and SIGTERM ask the loop to stop after the current step,
    save where it is and raise TrainingInterrupted; a second Ctrl-C stops at once, as usual.
    Only the main thread can install signal handlers; elsewhere training cannot be interrupted this way."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def ask_to_stop(signum, frame):
        if loop.stop_signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        loop.stop_signal = signal.Signals(signum).name

    previous = {sig: signal.signal(sig, ask_to_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclass
class StepContext:
    """What a model's train_step may use: its (possibly wrapped) forward and the optimisers."""

    module: torch.nn.Module
    optimizers: dict[str, torch.optim.Optimizer]
    labels: torch.Tensor | None = None  # the batch's labels (B,), for models with needs_labels
    grad_clip: float | None = None  # max L2 norm of each optimizer's gradients (train.grad_clip)
    dist: ddp.Dist = field(default_factory=ddp.Dist)  # under torchrun: gradients are averaged over ranks

    def forward(self, *inputs: torch.Tensor):
        return self.module(*inputs)

    def step(self, loss: torch.Tensor, name: str = "main") -> None:
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.dist.active or self.grad_clip is not None:  # one process, no clipping: nothing to gather
            params = [p for group in opt.param_groups for p in group["params"]]
            ddp.average_gradients(params, self.dist)
            if self.grad_clip is not None:  # no host sync: the norm and the scaling stay on the device
                torch.nn.utils.clip_grad_norm_(params, self.grad_clip, foreach=True)
        opt.step()


@dataclass
class TrainResult:
    model: GenerativeModel
    run_dir: Path
    history: list[dict] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)  # wall time of each epoch's training steps


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GenmodelsError(f"Device {name!r} was asked for but no CUDA GPU is visible; use --device cpu.")
    try:
        return torch.device(name)
    except RuntimeError:
        raise GenmodelsError(f"Unknown device {name!r}; use cpu, cuda, cuda:N or auto.") from None


def keep_freed_memory() -> bool:
    """Stop glibc returning freed memory to the OS between steps (Linux only).

    Every step frees and reallocates the same activation buffers; with glibc's defaults the
    heap top is trimmed and large blocks are mmap'd afresh, so each step pays page faults.
    Fixed thresholds keep that memory in the process, at the cost of the process keeping its
    peak heap. Measured with benchmarks/vae_throughput.py (GENMODELS_MALLOC_TUNING=0 against =1,
    README "Performance"): the MLP VAE's epoch about 1.15x faster with it.
    Set GENMODELS_MALLOC_TUNING=0 to leave malloc alone."""
    if not sys.platform.startswith("linux") or os.environ.get("GENMODELS_MALLOC_TUNING", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl, say)
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(m_trim_threshold, 1 << 30))


def _rng_state(gen: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
    rng = {"torch": torch.get_rng_state(), "data": gen.get_state()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    return rng


def _set_rng_state(rng: dict[str, torch.Tensor], gen: torch.Generator, device: torch.device) -> None:
    torch.set_rng_state(rng["torch"])
    gen.set_state(rng["data"])
    if device.type == "cuda" and "cuda" in rng:
        torch.cuda.set_rng_state(rng["cuda"], device)


def _read_history(path: Path, upto_step: int) -> list[dict]:
    """Metrics records up to the checkpoint; later ones (written before a crash) are dropped."""
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if r["step"] <= upto_step]


@torch.inference_mode()
def evaluate_parts(model: GenerativeModel, test: Dataset, batch_size: int, seed: int) -> dict[str, float]:
    """Mean logged parts over the whole held-out split, with a fixed seed so epochs compare fairly.

    fork_rng keeps the training RNG stream untouched, so evaluating never changes what training does."""
    was_training = model.training
    model.eval()
    sums: dict[str, torch.Tensor] = {}
    devices = [test.images.device] if test.images.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for i in range(0, len(test), batch_size):
            x = model.eval_input(test.batch(slice(i, i + batch_size)))
            y = test.labels[i : i + batch_size] if model.needs_labels else None
            for k, v in model.eval_parts(x, y).items():
                sums[k] = sums.get(k, 0.0) + v * x.shape[0]
    model.train(was_training)
    return {k: (v / len(test)).item() for k, v in sums.items()}


def train(config: RunConfig, run_dir: str | Path, *, resume: bool = False, overwrite: bool = False,
          progress: bool = True, data: DataSplits | None = None) -> TrainResult:
    """Train a model as `config` describes, writing everything into `run_dir`.

    resume: continue from run_dir's checkpoint (its saved config wins, except the number of epochs).
    data: already loaded data (tests, benchmarks); otherwise config.data is loaded."""
    run_dir = Path(run_dir)
    dist, device = ddp.setup(resolve_device(config.train.device))
    if dist.main:  # under torchrun, rank 0 alone writes files
        ckpt.prepare_run_dir(run_dir, resume=resume, overwrite=overwrite)
    ddp.barrier(dist)
    if resume:
        config = ckpt.load_run_config(run_dir / ckpt.CONFIG).with_epochs(config.train.epochs)
    tc = config.train
    if tc.threads:
        torch.set_num_threads(tc.threads)
    keep_freed_memory()
    torch.manual_seed(tc.seed)
    data = data or load_data(config.data.source, config.data.data_dir)
    config = config.model_copy(update={"shape": data.shape})
    train_set, test_set = data.train.to(device), data.test.to(device)
    model = build_model(config.family, config.model, data.shape).to(device)
    model.check_data(train_set)
    model.check_data(test_set)
    ddp.broadcast_module(model, dist)
    optimizers = model.make_optimizers(tc, device)
    gen = torch.Generator(device=device).manual_seed(tc.seed)  # batch order: the same on every rank

    epoch, step, batch, history = 0, 0, 0, []
    if resume:
        state, rng = ckpt.restore_checkpoint(run_dir / ckpt.CHECKPOINT, model, optimizers)
        _set_rng_state(rng, gen, device)
        # batch > 0: an interrupted epoch; gen holds its start state, so the same permutation comes back.
        epoch, step, batch = state["epoch"], state["step"], state.get("batch", 0)
        history = _read_history(run_dir / ckpt.METRICS, step)
    if dist.active:  # each rank its own noise (corruption, reparameterisation), from here on
        torch.manual_seed(tc.seed + 7919 * (dist.rank + 1) + step)
    if dist.main:
        ckpt.write_config(run_dir, config)
        with open(run_dir / ckpt.METRICS, "w") as f:  # rewrite: drops records past the checkpoint
            f.writelines(json.dumps(r) + "\n" for r in history)

    epochs = model.total_epochs(tc.epochs)
    loop = _Loop(model, optimizers, train_set, test_set, tc, gen, run_dir, history, progress and dist.main, epochs,
                 dist)
    bar = tqdm(total=epochs * math.ceil(len(train_set) / tc.batch_size), initial=step, disable=not loop.progress,
               unit="step", desc=f"{config.family} {run_dir.name}", dynamic_ncols=True)
    try:
        with _stop_on_signals(loop):
            for epoch in range(epoch, epochs):
                model.start_epoch(epoch)
                step = loop.run_epoch(epoch, step, bar, start_batch=batch)
                batch = 0
                model.finish_epoch()
                loop.end_epoch(epoch, step, bar)
    finally:
        bar.close()
        loop.close()
    ddp.barrier(dist)  # rank 0 finishes its last evaluation and checkpoint before any rank moves on
    return TrainResult(model.eval(), run_dir, history, loop.seconds)


def _epoch_images(model: GenerativeModel, run_dir: Path, noise: torch.Generator, test: Dataset) -> None:
    """A sample grid from the fixed noise, or for a model that cannot sample the reconstructions of
    the same 16 test images, so progress is visible epoch by epoch."""
    model.eval()
    try:
        with torch.inference_mode():
            try:
                save_grid(model.sample(64, generator=noise), run_dir / "images" / "samples.png")
            except GenmodelsError:  # a family that cannot sample
                x = model.eval_input(test.batch(slice(0, 16)))
                save_pairs(x, model.reconstruct(x), run_dir / "images" / "reconstructions.png")
    except GenmodelsError:  # neither samples nor reconstructs
        pass
    finally:
        model.train()


class _Loop:
    """One epoch of steps with tensor-side metric accumulation (one host sync per log interval)."""

    def __init__(self, model, optimizers, train_set, test_set, tc, gen, run_dir, history, progress, epochs,
                 dist: ddp.Dist):
        self.model, self.optimizers, self.dist = model, optimizers, dist
        # train.compile: the steps call a compiled forward that shares the model's parameters.
        self.ctx = StepContext(torch.compile(model) if tc.compile else model, optimizers, grad_clip=tc.grad_clip,
                               dist=dist)
        self.train_set, self.test_set, self.tc, self.gen = train_set, test_set, tc, gen
        self.epochs = epochs  # the model's whole schedule, pretraining phases included
        self.run_dir, self.history, self.progress = run_dir, history, progress
        self.metrics = open(run_dir / ckpt.METRICS, "a") if dist.main else None
        self.seconds: list[float] = []  # wall time of each epoch's training steps
        self.last_plot = time.perf_counter()
        # The same noise every epoch, so successive sample grids show progress, not luck.
        self.noise = torch.Generator(device=gen.device).manual_seed(tc.seed + 1)
        self.noise_state = self.noise.get_state()
        self.stop_signal: str | None = None  # set by SIGINT/SIGTERM: stop after the current step

    def log(self, record: dict) -> None:
        self.history.append(record)
        if self.metrics is not None:
            self.metrics.write(json.dumps(record) + "\n")
            self.metrics.flush()

    def close(self) -> None:
        if self.metrics is not None:
            self.metrics.close()

    def set_lr(self, epoch: int) -> None:
        """The epoch's learning rate: a function of the epoch alone, so a resumed run gets the same.
        Cosine annealing (Loshchilov & Hutter 2017) over the whole schedule, from each group's own lr."""
        if self.tc.lr_schedule == "constant":
            return
        factor = 0.5 * (1 + math.cos(math.pi * epoch / self.epochs))
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group.setdefault("initial_lr", group["lr"])
                group["lr"] = group["initial_lr"] * factor

    def run_epoch(self, epoch: int, step: int, bar, start_batch: int = 0) -> int:
        """The epoch's steps from batch `start_batch` on (above 0 when resuming an interrupted epoch)."""
        model, tc, data = self.model, self.tc, self.train_set
        model.train()
        self.set_lr(epoch)
        start = time.perf_counter()
        epoch_start_rng = self.gen.get_state()  # an interrupted epoch resumes from the same permutation
        perm = torch.randperm(len(data), generator=self.gen, device=self.gen.device)
        # Each part is averaged over the steps that returned it: a GAN's generator terms come every k-th step.
        sums: dict[str, torch.Tensor] = {}
        seen: dict[str, int] = {}
        count, t0 = 0, time.perf_counter()
        for i in range(start_batch * tc.batch_size, len(data), tc.batch_size):
            idx = ddp.shard(perm[i : i + tc.batch_size], self.dist)  # this rank's share of the global batch
            x = data.batch(idx)
            if model.needs_labels:
                self.ctx.labels = data.labels.index_select(0, idx)
            parts = model.train_step(x, self.ctx)
            for k, v in parts.items():
                sums[k] = sums[k] + v if k in sums else v.clone()
                seen[k] = seen.get(k, 0) + 1
            count += 1
            step += 1
            bar.update(1)
            if step % tc.log_every == 0 or i + tc.batch_size >= len(data):
                means = {k: v.item() / seen[k] for k, v in ddp.average_parts(sums, self.dist).items()}
                self._check_finite(means, step)
                model.check_logged(means)
                rate = count * tc.batch_size / (time.perf_counter() - t0)
                self.log({"step": step, "epoch": epoch + 1, "split": "train", **means})
                bar.set_postfix(loss=f"{means.get('loss', float('nan')):.3f}", img_s=f"{rate:.0f}", refresh=False)
                sums, seen, count, t0 = {}, {}, 0, time.perf_counter()
            if ddp.any_rank(self.stop_signal is not None, self.dist, x.device):
                self.stop_signal = self.stop_signal or "a signal to another process"
                self.save_interrupted(epoch, step, i // tc.batch_size + 1, epoch_start_rng)
        self.seconds.append(time.perf_counter() - start)
        return step

    def save_interrupted(self, epoch: int, step: int, batch: int, epoch_start_rng: torch.Tensor) -> None:
        """Checkpoint the position inside the epoch (the batch order's generator as it was at the
        epoch's start, the global RNG as it is now), then raise TrainingInterrupted. The record of the
        unfinished logging interval is lost; the weights of a resumed run equal an uninterrupted run's."""
        run = self.run_dir
        how = f"resume with `genmodels train {self.model.family} --out {run} --resume`"
        if not self.model.resumes_mid_epoch:  # in-epoch state that is not in the checkpoint (PCA's sums)
            kept = "its last checkpoint is kept" if (run / ckpt.CHECKPOINT).exists() else "nothing was saved yet"
            raise TrainingInterrupted(f"{self.stop_signal} stopped training in epoch {epoch + 1}; {kept}, "
                                      f"and {how} repeats that epoch.")
        rng = _rng_state(self.gen, self.gen.device)
        rng["data"] = epoch_start_rng
        state = {"epoch": epoch, "step": step, "batch": batch}
        if self.dist.main:
            ckpt.save_checkpoint(run / ckpt.CHECKPOINT, self.model, self.optimizers, state, rng)
            ckpt.save_weights(self.model, run / ckpt.WEIGHTS)
        raise TrainingInterrupted(f"{self.stop_signal} stopped training at step {step} (epoch {epoch + 1}), "
                                  f"saved in {run / ckpt.CHECKPOINT}; {how}.")

    def end_epoch(self, epoch: int, step: int, bar) -> None:
        """Evaluate, log, checkpoint (atomically) and redraw the pictures: on rank 0 alone under torchrun."""
        tc, last = self.tc, epoch + 1 == self.epochs
        if not self.dist.main:
            return
        test = evaluate_parts(self.model, self.test_set, tc.eval_batch_size, tc.seed)
        self.log({"step": step, "epoch": epoch + 1, "split": "test", **test})
        if self.progress and ((epoch + 1) % max(1, self.epochs // 10) == 0 or last):
            bar.write(f"epoch {epoch + 1}/{self.epochs}  " + "  ".join(f"test {k} {v:.3f}" for k, v in test.items()))
        state = {"epoch": epoch + 1, "step": step}
        rng = _rng_state(self.gen, self.gen.device)
        ckpt.save_checkpoint(self.run_dir / ckpt.CHECKPOINT, self.model, self.optimizers, state, rng)
        ckpt.save_weights(self.model, self.run_dir / ckpt.WEIGHTS)
        if last or time.perf_counter() - self.last_plot > 10:  # a plot costs ~0.25 s: not every short epoch
            plot_loss_curve(self.history, self.run_dir / "loss.png")
            self.last_plot = time.perf_counter()
        self.noise.set_state(self.noise_state)
        _epoch_images(self.model, self.run_dir, self.noise, self.test_set)

    @staticmethod
    def _check_finite(means: dict[str, float], step: int) -> None:
        bad = [k for k, v in means.items() if not math.isfinite(v)]
        if bad:
            raise TrainingError(
                f"The {bad[0]} term became {means[bad[0]]} by step {step}; the last good checkpoint is kept, "
                "lower --lr (or check the data for extreme values) and train again."
            )
