"""The logs of a run (docs/ARCHITECTURE.md, "The run directory"): metrics.jsonl, one JSON record a line,
and the copies train.log asks for: metrics.csv (`CsvLog`) and TensorBoard event files (`TensorBoardLog`).
`RunDir` names the files; this module reads and writes them."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from .errors import ConfigError
from .fileio import TEXT_LIMIT, atomic_write, read_bounded, write_error
from .rundir import RunDir

TENSORBOARD_MISSING = ("--log tensorboard needs the tensorboard package, which is not installed; install it with "
                       "pip install 'genmodels[tensorboard]' (or pip install tensorboard), or drop tensorboard "
                       "from --log.")


def read_history(run: RunDir, upto_step: int | None = None) -> list[dict]:
    """The run's logged records, up to the checkpoint's step if given (later ones were written before a crash).
    A line that is not a record (torn by a crash or a full disk) is dropped with a warning."""
    try:
        text = read_bounded(run.metrics, "metrics log", TEXT_LIMIT).decode("utf-8", "replace")
    except FileNotFoundError:
        return []
    records, torn = [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            record = None
        if isinstance(record, dict) and isinstance(record.get("step"), int) and isinstance(record.get("split"), str):
            records.append(record)
        else:
            torn += 1
    if torn:
        warnings.warn(f"{run.metrics} had {torn} damaged line(s), most likely cut by a crash or a full disk; "
                      "they were dropped and the rest of the log is kept.", RuntimeWarning, stacklevel=2)
    return records if upto_step is None else [r for r in records if r["step"] <= upto_step]


def open_history(run: RunDir, records: list[dict], logs: Sequence[str] = (),
                 resumed_at: int | None = None) -> MetricsLog:
    """Rewrite the run's log with `records` (dropping any past the checkpoint) and open it to append to; logs:
    the other logs of each record (train.log: "csv", "tensorboard"); resumed_at: the checkpoint's step when
    resuming, past which TensorBoard hides what a stopped process logged."""
    atomic_write(run.metrics, "".join(json.dumps(r) + "\n" for r in records).encode())
    others: list[CsvLog | TensorBoardLog] = []
    try:
        if "csv" in logs:
            others.append(CsvLog(run.metrics_csv, records))
        if "tensorboard" in logs:
            others.append(TensorBoardLog(run.tensorboard, None if resumed_at is None else resumed_at + 1))
        return MetricsLog(open(run.metrics, "a"), run.metrics, others)
    except OSError as err:
        for log in others:
            log.close()
        raise write_error(run.metrics, err, "open") from None


def check_logs(logs: Sequence[str]) -> None:
    """Refuse, in one sentence and before a run starts, a log whose package is not installed."""
    if "tensorboard" in logs:
        try:
            from torch.utils.tensorboard import SummaryWriter  # noqa: F401
        except ImportError:
            raise ConfigError(TENSORBOARD_MISSING) from None


class MetricsLog:
    """metrics.jsonl open for appending: one JSON record a line, flushed as written, so a crash loses
    at most the line being written (and the next resume drops that torn line); each record also goes to
    the other logs train.log asks for (CsvLog, TensorBoardLog)."""

    def __init__(self, file: IO[str], path: Path, others: list[CsvLog | TensorBoardLog] | None = None):
        self.file, self.path, self.others = file, path, others or []

    def write(self, record: dict) -> None:
        try:
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()
        except OSError as err:
            raise write_error(self.path, err, "append to") from None
        for log in self.others:
            log.write(record)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # a full disk at the last flush: the torn line is dropped on resume
            self.file.close()
        for log in self.others:
            log.close()


class CsvLog:
    """metrics.csv: the records as a table, one row each, its columns the union of their keys in the order
    first seen (a train record has the training terms, a test record the held-out ones: a cell a record lacks
    is empty). A row is appended and flushed as written; a record with a new key rewrites the whole file
    atomically under the wider header, which happens in the first epoch or two. Rebuilt from metrics.jsonl
    when a run resumes, so a row torn by a crash is gone then."""

    def __init__(self, path: Path, records: list[dict]):
        self.path = path
        self.rows: list[dict] = []
        self.columns: list[str] = []
        self.file: IO[str] | None = None
        for record in records:
            self._add(record)
        self._rewrite()

    def _add(self, record: dict) -> bool:
        """Keep the record; whether it brought a new column."""
        self.rows.append(record)
        new = [k for k in record if k not in self.columns]
        self.columns += new
        return bool(new)

    def _line(self, *rows: list) -> str:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows)
        return text.getvalue()

    def _cells(self, record: dict) -> list[Any]:
        return [json.dumps(v) if isinstance(v, (list, dict)) else v for v in (record.get(k, "") for k in self.columns)]

    def _rewrite(self) -> None:
        self.close()
        atomic_write(self.path, self._line(self.columns, *(self._cells(r) for r in self.rows)).encode())
        try:
            self.file = open(self.path, "a", newline="")
        except OSError as err:
            raise write_error(self.path, err, "open") from None

    def write(self, record: dict) -> None:
        if self._add(record) or self.file is None:  # a new column (or the file closed): the whole table again
            self._rewrite()
            return
        try:
            self.file.write(self._line(self._cells(record)))
            self.file.flush()
        except OSError as err:
            raise write_error(self.path, err, "append to") from None

    def close(self) -> None:
        if self.file is not None:
            with contextlib.suppress(OSError):
                self.file.close()
            self.file = None


class TensorBoardLog:
    """RUN/tensorboard/: each record's numbers as scalars named <split>/<key> at its step (TensorBoard's
    own event files, appended by its writer; flushed at each held-out record, once an epoch). purge_step:
    on resuming, the first new step; TensorBoard hides what a stopped process logged from there on."""

    def __init__(self, folder: Path, purge_step: int | None):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(TENSORBOARD_MISSING) from None
        self.writer = SummaryWriter(str(folder), purge_step=purge_step)

    def write(self, record: dict) -> None:
        split = record.get("split", "train")
        for key, value in record.items():
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if key not in ("step", "epoch", "split") and number:
                self.writer.add_scalar(f"{split}/{key}", value, record["step"])
        if split == "test":
            self.writer.flush()

    def close(self) -> None:
        self.writer.close()
