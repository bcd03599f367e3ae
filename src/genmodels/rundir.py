"""The run directory: the contract between training and every other command (docs/ARCHITECTURE.md,
"The run directory").

`RunDir` owns the directory's layout. It is the one place that spells a run file's name; every other
module asks it for a path or has it read or write the file:

  config.json              the RunConfig: rebuilds the model alone
  model.safetensors        the latest weights (inference)
  checkpoint.safetensors   weights + optimizer states + RNG states, training position in its metadata
  metrics.jsonl            one JSON record per logged interval and per evaluation
  loss.png, images/        the loss curve and the pictures of the last epoch and of later commands
  eval.json                the test metrics of `genmodels evaluate`
  features.json            (feature networks only) the data's fingerprint and test accuracy

Every file but the metrics log (appended a flushed line at a time) is written to a temporary name and
renamed into place, so a crash at any moment leaves the previous complete file.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import torch

from . import checkpoint as ckpt
from .errors import CheckpointError, ConfigError, GenmodelsError
from .fileio import atomic_write
from .models import Model, RunConfig, build_model, build_run_config


@dataclass(frozen=True)
class RunDir:
    """One run directory: its file names, and every read and write of its files."""

    CONFIG, WEIGHTS, CHECKPOINT, METRICS = "config.json", "model.safetensors", "checkpoint.safetensors", "metrics.jsonl"
    LOSS_PLOT, IMAGES, EVAL, FEATURES = "loss.png", "images", "eval.json", "features.json"
    OURS = (CONFIG, WEIGHTS, CHECKPOINT, METRICS, LOSS_PLOT, EVAL, FEATURES, IMAGES)  # what --overwrite removes

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

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
    loss_plot = property(lambda self: self.path / self.LOSS_PLOT)
    eval_file = property(lambda self: self.path / self.EVAL)
    features_file = property(lambda self: self.path / self.FEATURES)

    def image(self, name: str) -> Path:
        """images/<name>.png: a picture of this run."""
        return self.path / self.IMAGES / f"{name}.png"

    def samples_png(self, n: int | str | None = None) -> Path:
        """The epoch's sample grid (n None), or the grid of n samples that `genmodels sample` writes."""
        return self.image("samples" if n is None else f"samples_n{n}")

    reconstructions_png = property(lambda self: self.image("reconstructions"))
    interpolation_png = property(lambda self: self.image("interpolation"))
    latent_png = property(lambda self: self.image("latent"))

    def codes(self, split: str) -> Path:
        """codes_<split>.npz: the codes `genmodels encode` writes by default."""
        return self.path / f"codes_{split}.npz"

    def holds_run(self) -> bool:
        return self.config_file.exists()

    # -- making one ------------------------------------------------------------------------------------
    def prepare(self, *, resume: bool, overwrite: bool) -> None:
        """Create the run directory, refusing to clobber another run unless asked."""
        path = self.path
        if path.exists() and not path.is_dir():
            raise CheckpointError(f"{path} is a file, not a directory; choose another --out.")
        if resume:
            if not self.checkpoint.exists():
                raise CheckpointError(f"Nothing to resume in {path}: it has no {self.CHECKPOINT}; "
                                      "drop --resume to start afresh.")
            return
        is_run = self.holds_run()
        if is_run and not overwrite:
            raise CheckpointError(f"{path} already holds a run; pass --resume to continue it or --overwrite to replace it.")
        if path.exists() and any(path.iterdir()) and not is_run:
            raise CheckpointError(f"{path} exists and is not a genmodels run directory; choose an empty or new --out.")
        if is_run and overwrite:
            for name in self.OURS:  # only our own files: never delete what we did not write
                p = path / name
                shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
        path.mkdir(parents=True, exist_ok=True)

    # -- the config ------------------------------------------------------------------------------------
    def write_config(self, cfg: RunConfig) -> None:
        atomic_write(self.config_file, cfg.to_json().encode())

    def read_config(self) -> RunConfig:
        path = self.config_file
        try:
            values = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path} does not exist; is {self.path} a genmodels run directory?") from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ConfigError(f"{path} is not valid JSON; the run directory is damaged, retrain it.") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path} does not hold a JSON object; the run directory is damaged, retrain it.")
        return build_run_config(values, where=str(path))

    # -- weights and checkpoints -----------------------------------------------------------------------
    def save(self, model: Model, optimizers: dict[str, torch.optim.Optimizer], state: dict[str, Any],
             rng: dict[str, torch.Tensor]) -> None:
        """The checkpoint (to resume) and the weights (to use), each written atomically."""
        meta = {"family": model.family}
        ckpt.save_checkpoint(self.checkpoint, model, optimizers, state, rng, meta)
        ckpt.save_weights(model, self.weights, meta)

    def restore(self, model: Model, optimizers: dict[str, torch.optim.Optimizer]
                ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """Load the checkpoint's weights and optimizer states in place; its training state and RNG states."""
        return ckpt.restore_checkpoint(self.checkpoint, model, optimizers)

    def trained_epochs(self) -> int | None:
        """Epochs the checkpoint has finished, or None without one."""
        if not self.checkpoint.exists():
            return None
        _, meta = ckpt.read_safetensors(self.checkpoint)
        return json.loads(meta["state"])["epoch"]

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
            raise CheckpointError(f"{self.weights} holds a {meta.get('family')} model but config.json says {cfg.family}.")
        ckpt.load_state_into(model, weights, self.weights)
        return model.to(device).eval(), cfg

    # -- the metrics log -------------------------------------------------------------------------------
    def read_history(self, upto_step: int | None = None) -> list[dict]:
        """The logged records, up to the checkpoint's step if given (later ones were written before a crash)."""
        if not self.metrics.is_file():
            return []
        records = [json.loads(line) for line in self.metrics.read_text().splitlines() if line.strip()]
        return records if upto_step is None else [r for r in records if r["step"] <= upto_step]

    def open_history(self, records: list[dict]) -> "MetricsLog":
        """Rewrite the log with `records` (dropping any past the checkpoint) and open it to append to."""
        with open(self.metrics, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)
        return MetricsLog(open(self.metrics, "a"))

    # -- JSON records of later commands ----------------------------------------------------------------
    def write_eval(self, results: dict) -> Path:
        atomic_write(self.eval_file, json.dumps(results, indent=2).encode())
        return self.eval_file

    def read_eval(self) -> dict | None:
        """eval.json, or None if the run was never evaluated."""
        if not self.eval_file.exists():
            return None
        try:
            values = json.loads(self.eval_file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise GenmodelsError(f"{self.eval_file} is not valid JSON; run genmodels evaluate {self.path} again.") from None
        return values if isinstance(values, dict) else None

    def write_features_record(self, record: dict) -> None:
        atomic_write(self.features_file, json.dumps(record, indent=2).encode())

    def read_features_record(self) -> dict | None:
        """features.json as a dict; None if absent; a ValueError if it is not a JSON object."""
        if not self.features_file.is_file():
            return None
        values = json.loads(self.features_file.read_text())
        if not isinstance(values, dict):
            raise ValueError("not a JSON object")
        return values


class MetricsLog:
    """metrics.jsonl open for appending: one JSON record a line, flushed as written, so a crash loses
    at most the line being written."""

    def __init__(self, file: IO[str]):
        self.file = file

    def write(self, record: dict) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()
