"""Run directory I/O: safetensors weights, JSON config and state, atomic writes, no pickle.

A run directory holds:
  config.json              the RunConfig: rebuilds the model alone
  model.safetensors        the latest weights (inference)
  checkpoint.safetensors   weights + optimizer state + RNG states, training position in its metadata
  metrics.jsonl            one JSON record per logged interval and per evaluation
  images/, loss.png, eval.json
Every file is written to a temporary name and renamed into place, so a crash
at any moment leaves the previous complete file.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .config import RunConfig, load_run_config
from .errors import CheckpointError
from .models import GenerativeModel, build_model

CONFIG, WEIGHTS, CHECKPOINT, METRICS = "config.json", "model.safetensors", "checkpoint.safetensors", "metrics.jsonl"
FORMAT = "genmodels-1"
_OURS = [CONFIG, WEIGHTS, CHECKPOINT, METRICS, "loss.png", "eval.json", "images"]


def atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _cpu(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}


def save_weights(model: GenerativeModel, path: Path) -> None:
    meta = {"format": FORMAT, "family": model.family}
    atomic_write(path, st_save(_cpu(model.state_dict()), metadata=meta))


def save_checkpoint(path: Path, model: GenerativeModel, optimizers: dict[str, torch.optim.Optimizer],
                    state: dict[str, Any], rng: dict[str, torch.Tensor]) -> None:
    """Everything needed to continue training exactly, in one file written atomically."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    groups = {}
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        groups[name] = sd["param_groups"]
        for idx, st in sd["state"].items():
            for key, value in st.items():
                tensors[f"optim.{name}.{idx}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    tensors.update({f"rng.{k}": v for k, v in rng.items()})
    meta = {"format": FORMAT, "family": model.family, "state": json.dumps(state), "param_groups": json.dumps(groups)}
    atomic_write(path, st_save(_cpu(tensors), metadata=meta))


def read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a genmodels safetensors file, or a CheckpointError saying what is wrong."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist; train the run first (or check the run directory).") from None
    pickle_msg = f"{path} is a pickle/torch.save file, which genmodels never loads (unsafe); use a genmodels run."
    if path.suffix in (".pt", ".pth", ".pkl", ".pickle"):
        raise CheckpointError(pickle_msg)
    try:  # parse only: safetensors never executes anything it reads
        tensors = st_load(raw)
        header_len = int.from_bytes(raw[:8], "little")
        meta = json.loads(raw[8 : 8 + header_len]).get("__metadata__", {}) or {}
    except (SafetensorError, ValueError, UnicodeDecodeError, OverflowError):
        if raw[:1] == b"\x80" or raw[:2] == b"PK":  # pickle protocol >= 2, or torch.save's zip
            raise CheckpointError(pickle_msg) from None
        raise CheckpointError(f"{path} is truncated or not a safetensors file; retrain or restore it from a copy.") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} was not written by genmodels (format {meta.get('format')!r}); use a genmodels run.")
    return tensors, meta


def load_state_into(model: GenerativeModel, weights: dict[str, torch.Tensor], path: Path) -> None:
    """Load weights whose names and shapes must match the model the config builds."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    bad = [k for k in expected if k in weights and weights[k].shape != expected[k].shape]
    if missing or extra or bad:
        what = (f"missing {missing[:3]}" if missing else f"unexpected {extra[:3]}" if extra
                else f"{bad[0]} has shape {tuple(weights[bad[0]].shape)}, the config needs {tuple(expected[bad[0]].shape)}")
        raise CheckpointError(f"Weights in {path} do not match config.json ({what}); the run directory is inconsistent.")
    model.load_state_dict(weights)


def restore_checkpoint(path: Path, model: GenerativeModel, optimizers: dict[str, torch.optim.Optimizer]
                       ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Load weights and optimizer states in place; return the saved training state and RNG states."""
    tensors, meta = read_safetensors(path)
    load_state_into(model, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, path)
    groups = json.loads(meta["param_groups"])
    for name, opt in optimizers.items():
        state: dict[int, dict[str, torch.Tensor]] = {}
        prefix = f"optim.{name}."
        for key, value in tensors.items():
            if key.startswith(prefix):
                idx, field = key[len(prefix):].split(".", 1)
                state.setdefault(int(idx), {})[field] = value
        opt.load_state_dict({"state": state, "param_groups": groups[name]})
    rng = {k[4:]: v for k, v in tensors.items() if k.startswith("rng.")}
    return json.loads(meta["state"]), rng


def load_model(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[GenerativeModel, RunConfig]:
    """Rebuild a trained model from its run directory alone, in eval mode."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"Run directory {run_dir} does not exist; pass the --out folder of a training run.")
    cfg = load_run_config(run_dir / CONFIG)
    if cfg.shape is None:
        raise CheckpointError(f"{run_dir / CONFIG} lacks the data shape; the run directory is damaged, retrain it.")
    model = build_model(cfg.family, cfg.model, cfg.shape)
    weights, meta = read_safetensors(run_dir / WEIGHTS)
    if meta.get("family") != cfg.family:
        raise CheckpointError(f"{run_dir / WEIGHTS} holds a {meta.get('family')} model but config.json says {cfg.family}.")
    load_state_into(model, weights, run_dir / WEIGHTS)
    return model.to(device).eval(), cfg


def write_config(run_dir: Path, cfg: RunConfig) -> None:
    atomic_write(run_dir / CONFIG, cfg.to_json().encode())


def prepare_run_dir(run_dir: Path, *, resume: bool, overwrite: bool) -> None:
    """Create the run directory, refusing to clobber another run unless asked."""
    if run_dir.exists() and not run_dir.is_dir():
        raise CheckpointError(f"{run_dir} is a file, not a directory; choose another --out.")
    is_run = (run_dir / CONFIG).exists()
    if resume:
        if not (run_dir / CHECKPOINT).exists():
            raise CheckpointError(f"Nothing to resume in {run_dir}: it has no {CHECKPOINT}; drop --resume to start afresh.")
        return
    if is_run and not overwrite:
        raise CheckpointError(f"{run_dir} already holds a run; pass --resume to continue it or --overwrite to replace it.")
    if run_dir.exists() and any(run_dir.iterdir()) and not is_run:
        raise CheckpointError(f"{run_dir} exists and is not a genmodels run directory; choose an empty or new --out.")
    if is_run and overwrite:
        for name in _OURS:  # only our own files: never delete what we did not write
            p = run_dir / name
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
