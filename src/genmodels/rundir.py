"""The run directory: the contract between training and every other command (docs/ARCHITECTURE.md,
"The run directory").

`RunDir` owns the directory's layout. It is the one place that spells a run file's name; every other
module asks it for a path or has it read or write the file. Three jobs sit beside it, each in its own
module: the logs (runlog), the writer's lock (runlock) and the data the run was trained on (provenance).

  config.json              the RunConfig: rebuilds the model alone
  model.safetensors        the latest weights (inference)
  checkpoint.safetensors   weights + optimizer states + RNG states, training position in its metadata
  metrics.jsonl            one JSON record per logged interval and per evaluation
  metrics.csv, tensorboard/  the same records as a table and as TensorBoard event files (train.log asks)
  loss.png, images/        the loss curve and the pictures of the last epoch and of later commands
  progress.npz             (vector runs that sample) the fixed noise's samples at a few epochs: images/progress.png
  eval.json                the test metrics of `genmodels evaluate`
  features.json            (feature networks only) the data's fingerprint and test accuracy
  .genmodels               the marker: this folder was made by genmodels (written before anything else)
  .genmodels.lock          the writer's lock (flock): one training or evaluation at a time

Every file but the metrics log (appended a flushed line at a time) is written to a temporary name and
renamed into place, so a crash at any moment leaves the previous complete file. Only a folder with the
marker (or a run written before markers existed: a genmodels config beside a genmodels checkpoint) is
a run directory; genmodels deletes nothing anywhere else, and inside one only the files it names, never
through a symbolic link (check_links, fileio.check_target).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import checkpoint as ckpt
from .config import shown
from .errors import CheckpointError, ConfigError, GenmodelsError
from .fileio import (
    JSON_LIMIT,
    RUN_MARKER,
    FileError,
    MiB,
    atomic_write,
    check_length,
    check_target,
    read_bounded,
    write_error,
)
from .models import Model, RunConfig, build_model, build_run_config
from .runlock import RunLock

# The run directory format this genmodels reads and writes: config.json's "version", the marker's "format".
FORMAT = RunConfig.model_fields["version"].default
MARKER_TEXT = f'{{"genmodels": "run directory", "format": {FORMAT}}}\n'.encode()
# Bytes the longest path genmodels writes in a run adds to the folder's (images/.samples_n10000.png.tmp<pid>, a
# TensorBoard event file), so a folder whose files could not be named is refused before anything is written.
INSIDE = 64
# Pictures genmodels writes under images/ (RunDir.image): the only files --overwrite removes there.
_OUR_PICTURES = re.compile(r"(samples|samples_n\d+|reconstructions|interpolation|latent|progress)\.png")
_OUR_CODES = re.compile(r"codes_(train|test)\.npz")
# TensorBoard's event files (SummaryWriter: events.out.tfevents.<time>.<host>.<pid>.<n>): all --overwrite removes there.
_OUR_EVENTS = re.compile(r"events\.out\.tfevents\.[^/]+")


def _json_object(path: Path, what: str) -> dict | None:
    """A small JSON file holding one object; None when absent; ValueError when it holds anything else (not
    JSON, not UTF-8, nested too deep, an integer of thousands of digits, a list ...)."""
    try:
        values = json.loads(read_bounded(path, what, JSON_LIMIT))
    except FileNotFoundError:
        return None
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if not isinstance(values, dict):
        raise ValueError("not a JSON object")
    return values


def _our_temp(name: str, names: tuple[str, ...], pattern: re.Pattern | None = None) -> int | None:
    """The writer's process id where `name` is a temporary file (fileio.temp_name: `.NAME.tmpPID`) of one of
    `names` or of a name `pattern` matches, as a process killed while writing leaves it; None otherwise."""
    temp = re.fullmatch(r"\.(.+)\.tmp(\d+)", name)
    if temp and (temp[1] in names or bool(pattern and pattern.fullmatch(temp[1]))):
        return int(temp[2])
    return None


def _running(pid: int) -> bool:
    """Whether a process with this id exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # none; an id too large for any process
        return False
    except PermissionError:  # another user's
        return True
    return True


def check_resume_or_overwrite(resume: bool, overwrite: bool) -> None:
    """A one-sentence ConfigError where both are asked: one continues the run, the other replaces it."""
    if resume and overwrite:
        raise ConfigError("--resume (resume=True) continues the run in --out and --overwrite (overwrite=True) "
                          "replaces it, so they cannot be given together; pass one of them.")


def _check_format(found: object, where: Path) -> None:
    """A one-sentence CheckpointError unless `found` (config.json's version, the marker's format) is FORMAT."""
    if str(found) == FORMAT:
        return
    try:
        newer = int(str(found)) > int(FORMAT)
    except ValueError:  # not a number, or one of thousands of digits
        newer = False
    raise CheckpointError(f"{where} says the run was written by {'a newer' if newer else 'another'} "
                          f"genmodels, in run directory format {shown(found)}, but this genmodels reads format "
                          f"{FORMAT}; use the genmodels that wrote it (pip install --upgrade genmodels), or train a "
                          "new run into another folder.")


@dataclass(frozen=True, init=False)
class RunDir:
    """One run directory: its file names, and every read and write of its files."""

    CONFIG, WEIGHTS, CHECKPOINT, METRICS = "config.json", "model.safetensors", "checkpoint.safetensors", "metrics.jsonl"
    LOSS_PLOT, IMAGES, EVAL, FEATURES = "loss.png", "images", "eval.json", "features.json"
    METRICS_CSV, TENSORBOARD = "metrics.csv", "tensorboard"
    PROGRESS = "progress.npz"
    MARKER, LOCK = RUN_MARKER, ".genmodels.lock"
    # What --overwrite removes: these, the pictures, codes and event files genmodels wrote (_OUR_PICTURES,
    # _OUR_CODES, _OUR_EVENTS), and the temporary files of all of them.
    FILES = (CONFIG, WEIGHTS, CHECKPOINT, METRICS, LOSS_PLOT, EVAL, FEATURES, METRICS_CSV, PROGRESS)

    path: Path

    def __init__(self, path: str | os.PathLike[str]) -> None:
        check_length(path, "The run directory")  # a name the file system cannot hold: one sentence, here
        object.__setattr__(self, "path", Path(path))

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    # -- where things are ------------------------------------------------------------------------------
    config_file = property(lambda self: self.path / self.CONFIG)
    weights = property(lambda self: self.path / self.WEIGHTS)
    checkpoint = property(lambda self: self.path / self.CHECKPOINT)
    metrics = property(lambda self: self.path / self.METRICS)
    metrics_csv = property(lambda self: self.path / self.METRICS_CSV)
    tensorboard = property(lambda self: self.path / self.TENSORBOARD)
    loss_plot = property(lambda self: self.path / self.LOSS_PLOT)
    eval_file = property(lambda self: self.path / self.EVAL)
    features_file = property(lambda self: self.path / self.FEATURES)
    marker = property(lambda self: self.path / self.MARKER)

    def image(self, name: str) -> Path:
        """images/<name>.png: a picture of this run."""
        return self.path / self.IMAGES / f"{name}.png"

    def samples_png(self, n: int | str | None = None) -> Path:
        """The epoch's sample grid (n None), or the grid of n samples that `genmodels sample` writes."""
        return self.image("samples" if n is None else f"samples_n{n}")

    reconstructions_png = property(lambda self: self.image("reconstructions"))
    interpolation_png = property(lambda self: self.image("interpolation"))
    latent_png = property(lambda self: self.image("latent"))
    progress_file = property(lambda self: self.path / self.PROGRESS)
    progress_png = property(lambda self: self.image("progress"))

    def codes(self, split: str) -> Path:
        """codes_<split>.npz: the codes `genmodels encode` writes by default."""
        return self.path / f"codes_{split}.npz"

    # -- what the folder is ----------------------------------------------------------------------------
    def has_marker(self) -> bool:
        try:
            return (_json_object(self.marker, "marker") or {}).get("genmodels") == "run directory"
        except (OSError, GenmodelsError, ValueError):
            return False

    def check_format(self) -> None:
        """A one-sentence CheckpointError where the marker says another (a newer) genmodels wrote this folder."""
        try:
            marker = _json_object(self.marker, "marker") or {}
        except (OSError, GenmodelsError, ValueError):  # unreadable: not a marker, as has_marker says
            return
        if marker.get("genmodels") == "run directory":
            _check_format(marker.get("format", FORMAT), self.marker)

    def check_links(self) -> None:
        """A one-sentence FileError where a run file or folder genmodels writes is a symbolic link (what it points
        at is someone's), a FIFO or a device (fileio.check_target, which every atomic write asks too): checked
        before a run starts or resumes and before a clear, so nothing is trained, written or deleted first."""
        entries = [self.path / name for name in (*self.FILES, self.MARKER, self.IMAGES, self.TENSORBOARD)]
        for folder, pattern in ((self.path, _OUR_CODES), (self.path / self.IMAGES, _OUR_PICTURES)):
            try:
                if folder.is_dir() and not folder.is_symlink():
                    entries += [folder / name for name in os.listdir(folder) if pattern.fullmatch(name)]
            except OSError as err:
                raise write_error(folder, err, "read the folder") from None
        for entry in entries:
            check_target(entry)

    def _legacy_run(self) -> bool:
        """A run written before markers existed: a genmodels config.json beside a genmodels checkpoint."""
        try:
            self.read_config()
            ckpt.read_safetensors(self.checkpoint)
            return True
        except GenmodelsError:
            return False

    def is_ours(self) -> bool:
        """Whether genmodels made this folder (the marker, or a run from before markers)."""
        return self.path.is_dir() and (self.has_marker() or self._legacy_run())

    def holds_run(self) -> bool:
        """A run of ours that got as far as writing its config."""
        return self.is_ours() and self.config_file.exists()

    def _refuse_foreign(self) -> None:
        path = self.path
        if path.exists() and not path.is_dir():
            raise CheckpointError(f"{path} is a file, not a directory; choose another --out.")
        try:  # temporary files of ours alone: a process killed while writing its first file
            names = os.listdir(path) if path.exists() else []
        except OSError as err:
            raise write_error(path, err, "open the folder") from None
        if any(_our_temp(name, (*self.FILES, self.MARKER)) is None for name in names) and not self.is_ours():
            raise CheckpointError(f"{path} is not a genmodels run directory (it holds files but no {self.MARKER} "
                                  "marker), and genmodels never deletes or mixes with files it did not write; choose "
                                  "an empty or new folder.")

    # -- one writer at a time --------------------------------------------------------------------------
    def lock(self, what: str, *, create: bool = False, required: bool = True) -> RunLock:
        """Take the run directory's writer lock, or say in one sentence who holds it. create: make the
        folder (and its marker) when it is new or empty; a folder of someone else's files is refused.
        required=False: a folder where no lock can be made (read-only) is used unlocked: no one writes there."""
        self._refuse_foreign()
        if create:
            check_length(self.path, "The run directory", room=INSIDE)
            try:
                self.path.mkdir(parents=True, exist_ok=True)
                if not self.has_marker():
                    atomic_write(self.marker, MARKER_TEXT)
            except OSError as err:
                raise write_error(self.path, err, "create the run directory") from None
        elif not self.path.is_dir():
            raise CheckpointError(f"Run directory {self.path} does not exist; pass the --out folder of a training run.")
        self.check_format()
        self.check_links()
        try:
            return RunLock.take(self.path / self.LOCK, what)
        except FileError:
            if required:
                raise
            return RunLock(None, self.path / self.LOCK)

    # -- making one ------------------------------------------------------------------------------------
    def prepare(self, *, resume: bool, overwrite: bool) -> None:
        """Check the (locked) run directory can be trained into, and clear it when asked to overwrite. A run
        that stopped before its first checkpoint (stopped_early) can be resumed: it starts over."""
        check_resume_or_overwrite(resume, overwrite)
        self.check_links()
        path = self.path
        kept = [name for name in self.FILES if (path / name).exists()]
        if resume:
            if not self.checkpoint.exists() and not self.stopped_early():
                has = self.WEIGHTS if self.weights.exists() else kept[0] if kept else None
                how = (f"it has {has} but no {self.CHECKPOINT} to continue from; train it again with --overwrite "
                       "(overwrite=True)") if has else "it holds no run; train one there without --resume (resume=True)"
                raise CheckpointError(f"Nothing to resume in {path}: {how}.")
            return
        if kept and not overwrite:  # a run, or part of one (its config lost): never cleared unasked
            if self.checkpoint.exists():
                how = "pass --resume (resume=True) to continue it or --overwrite (overwrite=True) to replace it"
            elif self.stopped_early():
                how = ("it stopped before its first checkpoint; pass --resume (resume=True) to train it again from "
                       "the start with its saved settings, or --overwrite (overwrite=True) to replace it")
            else:
                how = "it has no checkpoint to resume; pass --overwrite (overwrite=True) to replace it"
            raise CheckpointError(f"{path} already holds a run ({kept[0]}); {how}.")
        self.clear()  # with no run file there: only temporary files and pictures of a run killed at its start

    def stopped_early(self) -> bool:
        """A run that wrote its config but stopped (a full disk, a kill) before its first checkpoint and weights:
        --resume trains it again from the start with that config."""
        return self.config_file.exists() and not self.checkpoint.exists() and not self.weights.exists()

    def ours(self) -> list[Path]:
        """Every file in this run directory that genmodels wrote (by name) and --overwrite would remove."""
        found = []
        images, events = self.path / self.IMAGES, self.tensorboard
        self.check_links()  # a link among them: its target is someone's, never removed or written through
        folders = [(self.path, self.FILES, _OUR_CODES), (images, (), _OUR_PICTURES)]
        if "tensorboard" in self._logs():  # event files are ours only where this run wrote them
            folders.append((events, (), _OUR_EVENTS))
        for folder, names, pattern in folders:
            if not folder.is_dir():
                continue
            for entry in folder.iterdir():
                name = entry.name
                temp = _our_temp(name, (*names, self.MARKER), pattern)
                if name in names or pattern.fullmatch(name) or temp is not None:
                    if entry.is_dir() and not entry.is_symlink():
                        raise CheckpointError(f"{entry} is a folder where genmodels writes a file; move it away "
                                              "or choose another --out.")
                    found.append(entry)
        return found

    def remove_dead_temps(self) -> None:
        """Remove the temporary files of ours (fileio.temp_name: `.NAME.tmpPID`) whose writer is no longer running:
        left by a process killed between writing one and renaming it. A live writer's (`genmodels sample` writes
        pictures here without the lock) is kept; a pid reused since only keeps a dead one a while longer."""
        for folder, names, pattern in ((self.path, (*self.FILES, self.MARKER), _OUR_CODES),
                                       (self.path / self.IMAGES, (), _OUR_PICTURES)):
            if not folder.is_dir() or folder.is_symlink():
                continue
            for entry in folder.iterdir():
                writer = _our_temp(entry.name, names, pattern)
                if writer is not None and entry.is_file() and not _running(writer):
                    with contextlib.suppress(FileNotFoundError):
                        entry.unlink()

    def _logs(self) -> tuple[str, ...]:
        """The logs the run's config asks for (train.log); none where there is no readable config."""
        try:
            return tuple(self.read_config().train.log)
        except GenmodelsError:
            return ()

    def clear(self) -> None:
        """Remove what `ours` lists (nothing else, and nothing if any of it cannot be told apart), then
        images/ and tensorboard/ if that leaves them empty."""
        try:
            for p in self.ours():
                p.unlink()
            for folder in (self.path / self.IMAGES, self.tensorboard):
                with contextlib.suppress(OSError):  # not empty: it holds files that are not ours
                    folder.rmdir()
        except OSError as err:
            raise write_error(self.path, err, "clear the run in") from None

    # -- the config ------------------------------------------------------------------------------------
    def write_config(self, cfg: RunConfig) -> None:
        atomic_write(self.config_file, cfg.to_json().encode())

    def read_config(self) -> RunConfig:
        path = self.config_file
        try:
            values = _json_object(path, "run config")
        except ValueError:
            raise ConfigError(f"{path} is not valid JSON holding one object; the run directory is damaged, "
                              "retrain it.") from None
        if values is None:
            raise ConfigError(f"{path} does not exist; is {self.path} a genmodels run directory?")
        self.check_format()
        _check_format(values.get("version", FORMAT), path)
        return build_run_config(values, where=str(path))

    # -- weights and checkpoints -----------------------------------------------------------------------
    def save(self, model: Model, optimizers: dict[str, torch.optim.Optimizer], state: dict[str, Any],
             rng: dict[str, torch.Tensor]) -> None:
        """The weights (to use) and the checkpoint (to resume), each written atomically, in that order: a crash
        between the two leaves the checkpoint one epoch behind, so --resume repeats that epoch and rewrites
        both, where the other order would leave a finished run with the weights of its last epoch but one
        (tests/test_crash_safety.py). Where the first checkpoint cannot be written (a full disk), the weights
        written just before go too, so the run is one that stopped before its first checkpoint (stopped_early),
        which --resume trains again from the start, as the error says."""
        meta = {"family": model.family}
        first = not self.checkpoint.exists()
        ckpt.save_weights(model, self.weights, meta)
        try:
            ckpt.save_checkpoint(self.checkpoint, model, optimizers, state, rng, meta)
        except BaseException:
            if first:
                with contextlib.suppress(OSError):
                    self.weights.unlink()
            raise

    def restore(self, model: Model, optimizers: dict[str, torch.optim.Optimizer], config: RunConfig
                ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """Load the checkpoint's weights and optimizer states in place (the optimizers freshly built from the
        run's `config`, whose hyper-parameters the checkpoint's must equal); its training state and RNG states."""
        scheduled = config.train.lr_schedule != "constant"  # a resumed run keeps its schedule
        return ckpt.restore_checkpoint(self.checkpoint, model, optimizers, lr_scheduled=scheduled)

    def trained_epochs(self) -> int | None:
        """Epochs the checkpoint has finished, or None without one."""
        if not self.checkpoint.exists():
            return None
        _, meta = ckpt.read_safetensors(self.checkpoint)
        return ckpt.training_state(meta, self.checkpoint)["epoch"]

    def train_seconds(self) -> float | None:
        """Seconds of training steps the checkpoint took, or None without one (or from before they were kept)."""
        if not self.checkpoint.exists():
            return None
        _, meta = ckpt.read_safetensors(self.checkpoint)
        seconds = ckpt.training_state(meta, self.checkpoint).get("seconds")
        return None if seconds is None else float(seconds)

    def load_model(self, device: str | torch.device = "cpu") -> tuple[Model, RunConfig]:
        """Rebuild the trained model from this directory alone, in eval mode."""
        if not self.path.is_dir():
            raise CheckpointError(f"Run directory {self.path} does not exist; pass the --out folder of a training run.")
        cfg = self.read_config()
        if cfg.shape is None:
            raise CheckpointError(f"{self.config_file} lacks the data shape; the run directory is damaged, retrain it.")
        model = build_model(cfg.family, cfg.model, cfg.shape)
        weights, meta = ckpt.read_safetensors(self.weights)
        if meta.get("family") != cfg.family:
            raise CheckpointError(f"{self.weights} holds a {str(meta.get('family'))[:40]} model but config.json says "
                                  f"{cfg.family}; the run directory is inconsistent, retrain it.")
        ckpt.load_state_into(model, weights, self.weights)
        return model.to(device).eval(), cfg

    # -- JSON records of later commands ----------------------------------------------------------------
    def write_eval(self, results: dict) -> Path:
        atomic_write(self.eval_file, json.dumps(results, indent=2).encode())
        return self.eval_file

    def read_eval(self) -> dict | None:
        """eval.json, or None if the run was never evaluated."""
        try:
            return _json_object(self.eval_file, "evaluation record")
        except ValueError:
            raise GenmodelsError(f"{self.eval_file} is not valid JSON; run genmodels evaluate {self.path} "
                                 "again.") from None

    # -- the samples of the fixed noise at a few epochs (vectordata.record_progress) ---------------------
    def write_progress(self, snapshots: dict[int, np.ndarray]) -> None:
        """progress.npz: epoch (0-based) -> the points (n, d) float32 drawn at its end, under "epoch_<epoch + 1>"."""
        out = io.BytesIO()
        arrays: dict[str, Any] = {f"epoch_{e + 1}": p for e, p in sorted(snapshots.items())}
        np.savez(out, **arrays)  # Any: numpy's stubs type **kwds as its allow_pickle flag
        atomic_write(self.progress_file, out.getvalue())

    def read_progress(self) -> dict[int, np.ndarray]:
        """What write_progress wrote ({} without the file); a one-sentence GenmodelsError for anything else."""
        try:
            raw = read_bounded(self.progress_file, "progress record", 64 * MiB)
        except FileNotFoundError:
            return {}
        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
                found = {int(k[6:]) - 1: npz[k] for k in npz.files if re.fullmatch(r"epoch_[1-9]\d{0,8}", k)}
                if len(found) != len(npz.files) or any(p.ndim != 2 or p.dtype != np.float32 for p in found.values()):
                    raise ValueError("not the arrays genmodels writes")
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            raise GenmodelsError(f"{self.progress_file} is damaged ({str(err)[:80]}); the next epoch that records "
                                 "progress rewrites it.") from None
        return found

    def write_features_record(self, record: dict) -> None:
        atomic_write(self.features_file, json.dumps(record, indent=2).encode())

    def read_features_record(self) -> dict | None:
        """features.json as a dict; None if absent; a ValueError if it is not a JSON object."""
        return _json_object(self.features_file, "features record")

