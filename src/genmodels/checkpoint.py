"""Weights and training checkpoints as safetensors files: plain modules and tensors in, no pickle.

This module knows nothing of families or run directories: `save_weights` stores any module's
state_dict, `save_checkpoint` a module, its optimizers, the RNG states and a small JSON state,
and the readers refuse (in one sentence) files genmodels did not write. The run directory
(genmodels.rundir) decides where these files live and what they are called.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .errors import CheckpointError
from .fileio import atomic_write

FORMAT = "genmodels-1"


def _cpu(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}


def save_weights(module: torch.nn.Module, path: Path, meta: dict[str, str] | None = None) -> None:
    """The module's state_dict, written atomically, with `meta` (the family, say) in the header."""
    atomic_write(path, st_save(_cpu(module.state_dict()), metadata={"format": FORMAT, **(meta or {})}))


def save_checkpoint(path: Path, module: torch.nn.Module, optimizers: dict[str, torch.optim.Optimizer],
                    state: dict[str, Any], rng: dict[str, torch.Tensor], meta: dict[str, str] | None = None) -> None:
    """Everything needed to continue training exactly, in one file written atomically."""
    tensors = {f"model.{k}": v for k, v in module.state_dict().items()}
    groups = {}
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        groups[name] = sd["param_groups"]
        for idx, st in sd["state"].items():
            for key, value in st.items():
                tensors[f"optim.{name}.{idx}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    tensors.update({f"rng.{k}": v for k, v in rng.items()})
    header = {"format": FORMAT, **(meta or {}), "state": json.dumps(state), "param_groups": json.dumps(groups)}
    atomic_write(path, st_save(_cpu(tensors), metadata=header))


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


def load_state_into(module: torch.nn.Module, weights: dict[str, torch.Tensor], path: Path) -> None:
    """Load weights whose names and shapes must match the module the config builds."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    bad = [k for k in expected if k in weights and weights[k].shape != expected[k].shape]
    if missing or extra or bad:
        what = (f"missing {missing[:3]}" if missing else f"unexpected {extra[:3]}" if extra
                else f"{bad[0]} has shape {tuple(weights[bad[0]].shape)}, the config needs {tuple(expected[bad[0]].shape)}")
        raise CheckpointError(f"Weights in {path} do not match config.json ({what}); the run directory is inconsistent.")
    module.load_state_dict(weights)


def restore_checkpoint(path: Path, module: torch.nn.Module, optimizers: dict[str, torch.optim.Optimizer]
                       ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Load weights and optimizer states in place; return the saved training state and RNG states."""
    tensors, meta = read_safetensors(path)
    load_state_into(module, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, path)
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
