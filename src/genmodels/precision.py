"""Mixed precision as a setting, not a fork (docs/ARCHITECTURE.md, "Precision").

`train.precision` (the flag `--precision`) takes Lightning's names:

- fp32: everything in float32, as before this setting existed (the default);
- bf16-mixed: the forward under torch.autocast with bfloat16, so matrix products and convolutions run in
  bf16 while the weights, their gradients and the optimizer state stay float32 (the "master weights").
  On the CPU a model without convolutions (the MLPs) runs instead in float32 throughout, with oneDNN doing
  each float32 matrix product, forward and backward, in bf16 arithmetic (`bf16_products`: its inputs rounded
  to bf16, sums and outputs float32). Autocast's casts are separate passes over every weight and its gradient
  in every step, as costly as the bf16 products themselves on the MLP VAE; oneDNN rounds while it packs the
  operands, which it does anyway (docs/benchmarks.md, "Mixed precision (bf16) on the CPU"). oneDNN's bf16
  convolutions in this mode were slower than autocast's, so models with convolutions keep autocast;
- fp16-mixed: the same with float16, plus a gradient scaler, since fp16's narrow exponent range flushes
  small gradients to zero (Micikevicius et al. 2018, "Mixed Precision Training", section 3.2);
- auto: bf16-mixed where the device multiplies bfloat16 natively (a CPU with avx512_bf16 or amx_bf16, a GPU
  with bfloat16), fp32 elsewhere. `resolve_precision` decides it once, before training, and the run records
  the precision decided, not "auto" (docs/ARCHITECTURE.md, "Precision").

Losses and log-sum-exps are computed in float32 whatever the precision: `genmodels.losses` upcasts its
inputs, so a bf16 activation never meets a sum over 784 pixels in bf16's 8-bit mantissa. Checkpoints hold
the float32 master weights, so a run resumes, samples and evaluates in any precision.

PyTorch's recipe, which this follows: https://pytorch.org/docs/stable/amp.html (autocast on CPU and CUDA,
which ops run in the lower precision) and https://pytorch.org/docs/stable/notes/amp_examples.html (the
scaler with several optimizers, clipping unscaled gradients, backward outside autocast).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Literal

import torch

from .errors import CheckpointError, GenmodelsError

Precision = Literal["fp32", "bf16-mixed", "fp16-mixed", "auto"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16-mixed", "fp16-mixed", "auto")
_DTYPES = {"bf16-mixed": torch.bfloat16, "fp16-mixed": torch.float16}
# The x86 flags of native bf16 products (the README's `grep` names them): AVX512-BF16's dot products and AMX's
# bf16 tiles. Without either, bf16 products run no faster than float32's and bf16-mixed only adds its casts.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags as Linux lists them in /proc/cpuinfo; empty where there is no such file (macOS,
    Windows: auto then trains in fp32)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":  # every core lists the same flags: the first line is enough
            return set(value.split())
    return set()


def resolve_precision(precision: str, device: torch.device) -> tuple[str, str | None]:
    """The precision a run trains in on `device` (check_precision's refusals included), and for "auto" the reason
    for the choice in one sentence (None for a precision given by name)."""
    if check_precision(precision) != "auto":
        return check_precision(precision, device), None
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        if torch.cuda.is_bf16_supported():
            return "bf16-mixed", f"--precision auto: bf16-mixed, as this GPU ({name}) has bfloat16."
        return "fp32", f"--precision auto: fp32, as this GPU ({name}) has no bfloat16."
    if device.type != "cpu":
        return "fp32", f"--precision auto: fp32, as bf16-mixed pays only on a CPU or CUDA GPU, not on {device.type}."
    native = [flag for flag in NATIVE_BF16_FLAGS if flag in cpu_flags()]
    if native:
        flags = ", ".join(native)
        return "bf16-mixed", f"--precision auto: bf16-mixed, as this CPU multiplies bfloat16 natively ({flags})."
    return "fp32", ("--precision auto: fp32, as this CPU has no native bfloat16 products (neither avx512_bf16 nor "
                    "amx_bf16 among its flags).")


def check_precision(precision: str, device: torch.device | None = None) -> str:
    """The precision `device` runs for `precision` ("auto" decided by resolve_precision; without a device it
    stays "auto"), or a one-sentence GenmodelsError unless it is one of PRECISIONS and `device` can run it."""
    if precision not in PRECISIONS:
        raise GenmodelsError(f"Unknown precision {str(precision)[:40]!r}; use fp32, bf16-mixed, fp16-mixed or auto "
                             "(--precision).")
    if precision == "auto":
        return precision if device is None else resolve_precision(precision, device)[0]
    if device is not None and precision != "fp32":
        if not torch.amp.is_autocast_available(device.type):
            raise GenmodelsError(f"--precision {precision} needs torch.autocast, which this torch lacks on "
                                 f"{device.type}; use --precision fp32.")
        if precision == "bf16-mixed" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise GenmodelsError(f"This GPU ({torch.cuda.get_device_name(device)}) has no bfloat16; use --precision "
                                 "fp16-mixed or fp32.")
    return precision


def products_in_bf16(precision: str, device: torch.device, module: torch.nn.Module | None) -> bool:
    """Whether `module` runs bf16-mixed as float32 with bf16 products (bf16_products) rather than under autocast:
    on the CPU, with oneDNN, for a model without convolutions."""
    return (precision == "bf16-mixed" and device.type == "cpu" and module is not None
            and torch.backends.mkldnn.is_available()
            and not any(isinstance(m, torch.nn.modules.conv._ConvNd) for m in module.modules()))


@contextlib.contextmanager
def bf16_products():
    """Every float32 matrix product on the CPU (mm, addmm, linear, forward and backward) in bf16 arithmetic:
    oneDNN rounds its inputs to bf16 and sums in float32 (torch.backends.mkldnn.matmul.fp32_precision, global to
    the process, so restored on exit). Where the CPU lacks native bf16, oneDNN runs them in float32."""
    matmul = torch.backends.mkldnn.matmul
    before = matmul.fp32_precision
    matmul.fp32_precision = "bf16"
    try:
        yield
    finally:
        matmul.fp32_precision = before


def autocast(precision: str, device: torch.device, module: torch.nn.Module | None = None):
    """The context the forward runs in: torch.autocast in the precision's dtype, nothing for fp32, and for a
    `module` that products_in_bf16 picks, bf16_products."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if products_in_bf16(precision, device, module):
        return bf16_products()
    return torch.autocast(device.type, dtype=_DTYPES[precision])


def full_precision(precision: str, device: torch.device):
    """Autocast off: backward and the optimizer step run outside it (the AMP examples: "Backward passes under
    autocast are not recommended"; on the CPU the backward runs on the calling thread, whose autocast state
    would otherwise apply to it). Nothing for fp32, where autocast was never on."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, enabled=False)


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler | None:
    """A gradient scaler for fp16-mixed (loss scaling, Micikevicius et al. 2018), None otherwise: bf16 has
    float32's exponent range and needs none."""
    if precision != "fp16-mixed":
        return None
    return torch.amp.GradScaler(device.type)


def scaler_state(scaler: torch.amp.GradScaler | None) -> dict:
    """The scaler's position for the checkpoint's JSON state (its scale and growth count), {} without one, so a
    resumed fp16 run continues with the same scale."""
    if scaler is None:
        return {}
    sd = scaler.state_dict()
    return {"grad_scale": [float(sd["scale"]), int(sd["_growth_tracker"])]}


def restore_scaler(scaler: torch.amp.GradScaler | None, state: dict, path) -> bool:
    """Put a checkpoint's scale back into `scaler`; False where there is no scaler or the checkpoint holds no
    scale (a run trained in fp32 or bf16 resumed in fp16-mixed: the scaler starts afresh). A scale that is not
    a positive finite number with a non-negative count is a damaged checkpoint (CheckpointError)."""
    saved = state.get("grad_scale")
    if scaler is None or saved is None:
        return False
    if not (isinstance(saved, list) and len(saved) == 2):
        raise CheckpointError(f"{path} holds no valid gradient scale; it is damaged, retrain the run.")
    scale, tracker = saved
    if not (type(scale) in (int, float) and 0 < scale < float("inf") and type(tracker) is int and tracker >= 0):
        raise CheckpointError(f"{path} holds no valid gradient scale; it is damaged, retrain the run.")
    sd = scaler.state_dict()
    scaler.load_state_dict({**sd, "scale": float(scale), "_growth_tracker": tracker})
    return True
