"""What a training run keeps and shows of its progress (docs/ARCHITECTURE.md, "One training step"): its records
(the history in memory; on rank 0 metrics.jsonl and the other logs of train.log), the progress bar or a line per
epoch, the training curves (loss.png), and the background writer of each epoch's files (`Writer`).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tqdm.auto import tqdm

from . import distributed as ddp
from .plots import plot_curves
from .rundir import RunDir
from .runlog import MetricsLog, open_history

# What training prints: True, a progress bar on a terminal and elsewhere (a file, a pipe) a line per epoch;
# "lines", a line per epoch and never a bar; False, nothing.
Progress = bool | Literal["lines"]


@dataclass(eq=False)
class Records:
    """A run's records and what it prints: every record goes to the history and (rank 0) the metrics log; the
    bar counts steps where a person watches a terminal (it exists, disabled, everywhere else); `lines`: no bar,
    print every epoch's line."""

    history: list[dict]
    metrics: MetricsLog | None  # metrics.jsonl and the other logs, open on rank 0 alone
    bar: tqdm  # disabled where it is not shown
    lines: bool
    stdout: bool = True  # False once stdout's reader has gone (`| head -1`): training goes on without its lines
    last_plot: float = field(default_factory=time.perf_counter)  # when loss.png was last drawn

    @classmethod
    def open(cls, run: RunDir, history: list[dict], *, logs: Sequence[str], resumed_at: int | None,
             dist: ddp.Dist, progress: Progress, steps: int, step: int, name: str) -> Records:
        """Rewrite the metrics log with `history` (dropping records past the checkpoint's step `resumed_at`) and
        open it on rank 0; the bar of `steps` steps in all, at `step` now, named `name`."""
        metrics = open_history(run, history, logs, resumed_at=resumed_at) if dist.main else None
        shown = progress is not False and dist.main
        bar = shown and progress is True and _terminal(sys.stderr)  # tqdm draws on stderr
        return cls(history, metrics, tqdm(total=steps, initial=step, disable=not bar, unit="step", desc=name,
                                          dynamic_ncols=True), lines=shown and not bar)

    def log(self, record: dict) -> None:
        self.history.append(record)
        if self.metrics is not None:
            self.metrics.write(record)

    def stepped(self) -> None:
        """One training step done."""
        self.bar.update(1)

    def show_rate(self, loss: float, images_per_second: float) -> None:
        """The last logged loss and the training speed, beside the bar."""
        self.bar.set_postfix(loss=f"{loss:.3f}", img_s=f"{images_per_second:.0f}", refresh=False)

    def epoch_line(self, epoch: int, epochs: int, values: dict[str, float], seconds: float) -> None:
        """The line of epoch `epoch` (0-based) of `epochs`: its values and the seconds its steps took; printed every
        epoch without a bar, every tenth of the run (and the last epoch) under the bar, never without either."""
        last = epoch + 1 == epochs
        if not self.stdout or not (
                self.lines or (not self.bar.disable and ((epoch + 1) % max(1, epochs // 10) == 0 or last))):
            return
        line = (f"epoch {epoch + 1}/{epochs}  " + "  ".join(f"{k} {v:.3f}" for k, v in values.items())
                + f"  {seconds:.1f} s")
        try:
            if self.lines:
                print(line, flush=True)
            else:
                self.bar.write(line)  # to sys.stdout
                sys.stdout.flush()  # a closed pipe shows here, not in a later write outside this guard
        except BrokenPipeError:  # the reader has gone: the run matters more than its lines
            self.stdout = False
            silence_stdout()

    def plot(self, path: Path, curves: dict[str, tuple[str, ...]], last: bool, writer: Writer | None = None) -> None:
        """Redraw the training curves at `path` at the last epoch, else at most every 10 seconds (a plot costs
        ~0.25 s: not every short epoch); by `writer` where given, from the records as they are now."""
        if last or time.perf_counter() - self.last_plot > 10:
            if writer is None:
                plot_curves(self.history, path, curves)
            else:
                writer.submit(plot_curves, list(self.history), path, curves)
            self.last_plot = time.perf_counter()

    def close(self) -> None:
        self.bar.close()
        if self.metrics is not None:
            self.metrics.close()


class Writer:
    """One background thread that writes an epoch's files (pictures, curves, checkpoint) in the order they were
    submitted, while the next epoch trains. What it is given must not change afterwards (a snapshot, not the live
    model). The first write that fails stops it: nothing submitted after it is written (so a checkpoint never
    lands after a failed write before it), and `wait` raises that error in the caller's thread, with the epoch
    (0-based) whose file it was in `failed_epoch`. A process killed at any moment leaves what atomic writes
    leave: every file complete, the previous one or the new one."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None  # started by the first submit
        self._pending: list[Future] = []
        self.error: BaseException | None = None
        self.failed_epoch: int | None = None
        self.epoch = 0  # the epoch whose files are being submitted: what failed_epoch reports

    def submit(self, write: Callable[..., object], *args: object) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genmodels-writer")
        self._pending.append(self._pool.submit(self._run, self.epoch, write, args))

    def _run(self, epoch: int, write: Callable[..., object], args: tuple) -> None:
        if self.error is not None:  # an earlier write failed: nothing after it is written
            return
        try:
            write(*args)
        except BaseException as err:  # a full disk, or any other failure: the caller's thread raises it
            self.error, self.failed_epoch = err, epoch

    def wait(self, *, quiet: bool = False) -> None:
        """Block until everything submitted is written; then raise the first write's error unless quiet."""
        for pending in self._pending:
            pending.result()  # _run catches every error, so this only waits
        self._pending = []
        if self.error is not None and not quiet:
            raise self.error

    def close(self) -> None:
        """Wait for what was submitted (errors are left to `wait`) and stop the thread."""
        self.wait(quiet=True)
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


def say(line: str) -> None:
    """Print a line of progress at once (a pipe's reader sees it live); once stdout's reader has gone, nothing
    (silence_stdout), and the work goes on."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        silence_stdout()


def silence_stdout() -> None:
    """Point stdout at the null device once its reader has gone (a BrokenPipeError), so that neither a later
    write nor the flush at exit fails again (Python's documented recipe; see the signal module's "Note on
    SIGPIPE"). A stdout without a file descriptor (a notebook's) is left as it is."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # no such method, closed, or io.UnsupportedOperation
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _terminal(stream) -> bool:
    """Whether a person watches `stream` live: a terminal, or a Jupyter kernel (where tqdm draws a widget)."""
    if "ipykernel" in sys.modules:
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no such method, or a closed stream
        return False
