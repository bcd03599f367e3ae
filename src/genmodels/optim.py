"""The optimisation step every family shares: Adam, the learning-rate schedule and `StepContext.step`.

A model's `train_step` receives a StepContext, computes each optimizer's loss through `ctx.forward` or
`ctx.run` (under torchrun, inside that optimizer's DistributedDataParallel wrapper) and calls
`ctx.step(loss, name)` once per optimizer it updates; gradient averaging under torchrun and clipping
happen there, so a family with two optimisers (the GAN) or several phases (the stacked autoencoder)
writes no trainer of its own (docs/ARCHITECTURE.md, "One training step", "Many processes").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from .precision import autocast, full_precision, grad_scaler

if TYPE_CHECKING:
    from .config import TrainConfig


def make_adam(params, train: TrainConfig, device: torch.device) -> torch.optim.Adam:
    # The fused kernel does the whole update in one pass: on 2 CPU cores it is the
    # largest single saving in a small model's step (benchmarks/vae_throughput.py).
    return torch.optim.Adam(params, lr=train.lr, betas=train.betas, fused=device.type in ("cpu", "cuda"))


def set_epoch_lr(optimizers: dict[str, torch.optim.Optimizer], schedule: str, epoch: int, epochs: int) -> None:
    """The epoch's learning rate: a function of the epoch alone, so a resumed run gets the same.
    cosine: annealing (Loshchilov & Hutter 2017) over the whole schedule, from each group's own lr, kept as its
    initial_lr: a factor in [0, 1] of it, as checkpoint.restore_checkpoint expects of a resumed run's groups."""
    if schedule == "constant":
        return
    factor = 0.5 * (1 + math.cos(math.pi * epoch / epochs))
    for opt in optimizers.values():
        for group in opt.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = group["initial_lr"] * factor


@dataclass
class StepContext:
    """What a model's train_step may use: its (possibly compiled) forward and the optimisers.

    precision (train.precision): the engine runs each train_step inside `autocast()`; `step` takes the
    backward and the optimizer step out of it again, and for fp16-mixed scales the loss (docs/ARCHITECTURE.md,
    "Precision"). steps_to_log: the steps after this one until the engine logs a record (0: it logs this one),
    so a model computes diagnostics that cost a pass over its gradients (the GAN's gradient norms) only on the
    steps a record will show."""

    module: torch.nn.Module
    optimizers: dict[str, torch.optim.Optimizer]
    grad_clip: float | None = None  # max L2 norm of each optimizer's gradients (train.grad_clip)
    precision: str = "fp32"
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    steps_to_log: int = 0
    # Under torchrun: each optimizer's DistributedDataParallel wrapper (distributed.replicate), and this rank's
    # loss weight, world size x its share of the global batch, so the averaged gradient is the global batch's
    # mean even where the last batch does not split evenly.
    replicas: dict[str, torch.nn.Module] = field(default_factory=dict)
    share: float = 1.0
    _ran: set[str] = field(default_factory=set)  # optimizers whose loss went through their wrapper since their step
    scaler: torch.amp.GradScaler | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.scaler = grad_scaler(self.precision, self.device)

    @property
    def logged(self) -> bool:
        """Whether the engine logs a record after this step."""
        return self.steps_to_log == 0

    def autocast(self):
        """The context a training step's forward runs in (nothing for fp32; bf16-mixed on the CPU for a model
        without convolutions: float32 with bf16 products, precision.bf16_products)."""
        return autocast(self.precision, self.device, self.module)

    def forward(self, *inputs: torch.Tensor | None, name: str = "main"):
        """The model's forward on inputs, as the computation of optimizer `name`'s loss."""
        return self.run(name, self.module, *inputs)

    def run(self, name: str, fn, *args):
        """fn(*args), the computation of optimizer `name`'s loss: under torchrun, inside that optimizer's
        DistributedDataParallel wrapper, so backward averages its gradients over the ranks."""
        replica = self.replicas.get(name)
        if replica is None:
            return fn(*args)
        self._ran.add(name)
        return replica(fn, *args)

    def step(self, loss: torch.Tensor, name: str = "main") -> None:
        opt, scaler = self.optimizers[name], self.scaler
        opt.zero_grad(set_to_none=True)
        if self.replicas:
            if name not in self._ran:  # a family's bug: its gradients would silently differ between ranks
                raise RuntimeError(f"the loss of optimizer {name!r} was not computed through ctx.forward or "
                                   f"ctx.run(name={name!r}, ...), so torchrun could not average its gradients.")
            self._ran.discard(name)
            loss = loss * self.share
        with full_precision(self.precision, self.device):
            # under torchrun, DDP's hooks all-reduce gradient buckets while backward runs
            (loss if scaler is None else scaler.scale(loss)).backward()
            if self.grad_clip is not None:  # no host sync: the norm and the scaling stay on the device
                params = [p for group in opt.param_groups for p in group["params"]]
                # clip the true gradients, not the scaled ones (AMP examples, "Gradient clipping")
                if scaler is not None:
                    scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(params, self.grad_clip, foreach=True)
            if scaler is None:
                opt.step()
            else:  # skips the step if a gradient overflowed; the fused Adam reads the scale on the device and
                scaler.step(opt)  # leaves the gradients unscaled, so a norm logged after the step is the true one
                scaler.update()  # after each optimizer's step: one scale shared by the GAN's D and G steps
        if self.precision != "fp32":
            # Autocast caches each weight's bf16 copy for the rest of its region, and a GAN's train_step is one
            # region with two steps in it: the weights just changed, so the next forward must cast them afresh.
            torch.clear_autocast_cache()
