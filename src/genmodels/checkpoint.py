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
from .fileio import atomic_write, read_bounded

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
    try:  # a regular file, read once: its own size bounds the read (never a FIFO or /dev/zero)
        raw = read_bounded(path, "weights file", limit=None)
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
        raise CheckpointError(f"{path} is truncated or not a safetensors file; "
                              "retrain or restore it from a copy.") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} was not written by genmodels (format {meta.get('format')!r}); "
                              "use a genmodels run.")
    return tensors, meta


def load_state_into(module: torch.nn.Module, weights: dict[str, torch.Tensor], path: Path) -> None:
    """Load weights whose names and shapes must match the module the config builds."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    bad = [k for k in expected if k in weights and weights[k].shape != expected[k].shape]
    if missing or extra or bad:
        what = (f"missing {missing[:3]}" if missing else f"unexpected {extra[:3]}" if extra
                else f"{bad[0]} has shape {tuple(weights[bad[0]].shape)}, "
                     f"the config needs {tuple(expected[bad[0]].shape)}")
        raise CheckpointError(f"Weights in {path} do not match config.json ({what}); "
                              "the run directory is inconsistent.")
    _check_finite(weights, list(expected), path)
    module.load_state_dict(weights)


def _check_finite(weights: dict[str, torch.Tensor], order: list[str], path: Path) -> None:
    """Refuse weights holding NaN or infinity, naming the first such tensor in the module's order: every
    sample, code and picture drawn from them would be NaN, and training from them could only diverge."""
    for name in order:
        value = weights[name]
        if value.is_floating_point() and not torch.isfinite(value).all():
            count = int((~torch.isfinite(value)).sum())
            values = "1 value that is" if count == 1 else f"{count:,} values that are"
            raise CheckpointError(f"{path} is damaged or from a diverged run: {name} holds {values} not finite "
                                  "(NaN or infinite); retrain the run (with a lower --lr if it diverged) or restore "
                                  "the file from a copy.")


def _count(value: Any) -> bool:
    return type(value) is int and 0 <= value < 2**53


def _seconds(value: Any) -> bool:
    return type(value) in (int, float) and 0 <= value < 1e12  # NaN fails both comparisons


def training_state(meta: dict[str, str], path: Path) -> dict[str, int]:
    """The checkpoint's training position (epoch, step and batch: non-negative integers) and the seconds
    of training it took (absent in checkpoints written before it was recorded), checked."""
    try:
        state = json.loads(meta["state"])
    except (KeyError, ValueError, RecursionError):
        state = None
    if not (isinstance(state, dict) and "epoch" in state and "step" in state
            and all(_count(state.get(k, 0)) for k in ("epoch", "step", "batch"))  # batch: absent at an epoch's end
            and _seconds(state.get("seconds", 0.0))):
        raise CheckpointError(f"{path} holds no valid training position (epoch, step); it is damaged, retrain the run.")
    return state


# How the update runs on this machine, not what it computes: `fused` follows the device, which a resumed run may
# change, and a checkpoint's differentiable=True would stop the fused step. The optimizer built here keeps its own.
_EXECUTION = frozenset({"foreach", "fused", "capturable", "differentiable"})


def _optimizer_state(opt: torch.optim.Optimizer, name: str, saved_groups: Any, tensors: dict[str, torch.Tensor],
                     path: Path, lr_scheduled: bool) -> dict:
    """The optimizer's state dict from the checkpoint, every entry checked against `opt` before it can reach
    a kernel: the same groups and parameter indices, the hyper-parameters `opt` was built with (_hyperparameters),
    per-parameter tensors of each parameter's shape (a fused Adam step writes through them unchecked), a scalar
    step. The execution flags (_EXECUTION) are `opt`'s own."""
    def damaged(what: str) -> CheckpointError:
        return CheckpointError(f"{path} does not fit this model's {name!r} optimizer ({what}); the checkpoint is "
                               "damaged or from other settings, retrain the run or restore it from a copy.")

    current = opt.state_dict()["param_groups"]
    if not isinstance(saved_groups, list) or len(saved_groups) != len(current):
        raise damaged("another number of parameter groups")
    for saved, now in zip(saved_groups, current):
        # initial_lr: the base of the cosine schedule (optim.set_epoch_lr), there from the first epoch on
        keys_fit = isinstance(saved, dict) and set(saved) == {*now, *(["initial_lr"] if lr_scheduled else [])}
        if not keys_fit or saved["params"] != now["params"]:
            raise damaged("other parameter groups")
        for key, value in saved.items():
            if key not in ("params", *_EXECUTION) and not _same_kind(value, now.get(key, 0.0)):
                raise damaged(f"{key} is {str(value)[:40]}")
        wrong = _hyperparameters(saved, now, lr_scheduled)
        if wrong:
            raise CheckpointError(f"In {path} the {name!r} optimizer's {wrong}; the checkpoint was changed or is from "
                                  "other settings, retrain the run or restore it from a copy.")
    groups = [{**saved, **{k: now[k] for k in _EXECUTION & set(now)}} for saved, now in zip(saved_groups, current)]
    params = {i: p for group, now in zip(opt.param_groups, current) for i, p in zip(now["params"], group["params"])}
    state: dict[int, dict[str, torch.Tensor]] = {}
    prefix = f"optim.{name}."
    for key, value in tensors.items():
        if key.startswith(prefix):
            idx, _, field = key[len(prefix):].partition(".")
            if not idx.isdigit() or int(idx) not in params or not field:
                raise damaged(f"unexpected entry {key[:60]}")
            state.setdefault(int(idx), {})[field] = value
    fields = {frozenset(s) for s in state.values()}
    if len(fields) > 1 or (isinstance(opt, torch.optim.Adam) and state and fields != {_adam_fields(opt)}):
        raise damaged("missing or unexpected per-parameter entries")
    for index, entries in state.items():
        for field, value in entries.items():
            shape = () if field == "step" else tuple(params[index].shape)
            if tuple(value.shape) != shape:
                raise damaged(f"{field} of parameter {index} has shape {tuple(value.shape)}, it needs {shape}")
            if field != "step" and not value.is_floating_point():
                raise damaged(f"{field} of parameter {index} holds {value.dtype}, not floating-point numbers")
            if not torch.isfinite(value).all() or (field == "step" and value.item() < 0):
                kind = "a finite count" if field == "step" else "finite"
                raise damaged(f"{field} of parameter {index} is not {kind}")
    return {"state": state, "param_groups": groups}


def _hyperparameters(saved: dict, now: dict, lr_scheduled: bool) -> str | None:
    """What differs between a saved parameter group's hyper-parameters and those of `now`, built from the run's
    config (lr, betas, eps, weight_decay, maximize, amsgrad ...: every key but the parameters and the execution
    flags), in words; None when nothing does. A scheduled lr changes every epoch and is set afresh from
    initial_lr before the next step, so initial_lr must be the config's and lr only within the schedule's range."""
    def shown(value: Any) -> str:
        return json.dumps(value)[:40]

    for key, expected in now.items():
        if key in ("params", *_EXECUTION) or (lr_scheduled and key == "lr"):
            continue
        if not _equal(saved[key], expected):
            return f"{key} is {shown(saved[key])}, but the run's config builds {shown(expected)}"
    if lr_scheduled:
        base, lr = saved["initial_lr"], saved["lr"]
        if not _equal(base, now["lr"]):
            return f"initial_lr is {shown(base)}, but the run's config builds {shown(now['lr'])}"
        if not (_number(lr) and 0 <= lr <= base):  # the cosine factor is in [0, 1]; NaN fails both comparisons
            return f"lr is {shown(lr)}, outside [0, {shown(base)}], the range its schedule keeps it in"
    return None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _equal(value: Any, expected: Any) -> bool:
    """A value read from JSON equals the optimizer's own: numbers by value (a bool is no number), a list
    element by element where the optimizer holds a tuple (JSON has none), anything else of the same type."""
    if isinstance(expected, (tuple, list)):
        return (isinstance(value, list) and len(value) == len(expected)
                and all(_equal(v, e) for v, e in zip(value, expected)))
    if _number(expected):
        return _number(value) and value == expected
    return type(value) is type(expected) and value == expected


def _same_kind(value: Any, expected: Any) -> bool:
    """Whether a saved hyperparameter may stand in for the optimizer's own: the same type, any two numbers
    (bools apart), or a list as long as its tuple (JSON has no tuples)."""
    return (type(value) is type(expected) or (_number(value) and _number(expected))
            or (isinstance(expected, tuple) and isinstance(value, list) and len(value) == len(expected)))


def _adam_fields(opt: torch.optim.Optimizer) -> frozenset[str]:
    amsgrad = any(g.get("amsgrad") for g in opt.param_groups)
    return frozenset({"step", "exp_avg", "exp_avg_sq", *(["max_exp_avg_sq"] if amsgrad else [])})


def restore_checkpoint(path: Path, module: torch.nn.Module, optimizers: dict[str, torch.optim.Optimizer],
                       lr_scheduled: bool = False) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Load weights and optimizer states in place, each checked first (`optimizers` freshly built from the run's
    config, whose hyper-parameters the saved ones must equal; lr_scheduled: the config's lr schedule anneals lr);
    return the saved training state and RNG states (the caller checks those against its generators)."""
    tensors, meta = read_safetensors(path)
    state = training_state(meta, path)
    try:
        groups = json.loads(meta["param_groups"])
    except (KeyError, ValueError, RecursionError):
        groups = None
    if not isinstance(groups, dict) or set(groups) != set(optimizers):
        raise CheckpointError(f"{path} holds no optimizer settings for {sorted(optimizers)}; it is damaged or from "
                              "other settings, retrain the run.")
    known = ("model.", "rng.", *(f"optim.{name}." for name in optimizers))
    stray = next((k for k in tensors if not k.startswith(known)), None)
    if stray is not None:
        raise CheckpointError(f"{path} holds an unexpected entry {stray[:60]!r}; it was not written by this run, "
                              "retrain the run.")
    load_state_into(module, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, path)
    checked = {name: _optimizer_state(opt, name, groups[name], tensors, path, lr_scheduled)
               for name, opt in optimizers.items()}
    for name, opt in optimizers.items():
        opt.load_state_dict(checked[name])
    rng = {k[4:]: v for k, v in tensors.items() if k.startswith("rng.")}
    return state, rng
