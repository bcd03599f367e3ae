"""The optimisation step every family shares: Adam, the learning-rate schedule and `StepContext.step`.

A model's `train_step` receives a StepContext and calls `ctx.step(loss, name)` once per optimizer
it updates; gradient averaging under torchrun and clipping happen there, so a family with two
optimisers (the GAN) or several phases (the stacked autoencoder) writes no trainer of its own
(docs/ARCHITECTURE.md, "One training step").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from . import distributed as ddp

if TYPE_CHECKING:
    from .config import TrainConfig


def make_adam(params, train: "TrainConfig", device: torch.device) -> torch.optim.Adam:
    # The fused kernel does the whole update in one pass: on 2 CPU cores it is the
    # largest single saving in a small model's step (benchmarks/vae_throughput.py).
    return torch.optim.Adam(params, lr=train.lr, betas=train.betas, fused=device.type in ("cpu", "cuda"))


def set_epoch_lr(optimizers: dict[str, torch.optim.Optimizer], schedule: str, epoch: int, epochs: int) -> None:
    """The epoch's learning rate: a function of the epoch alone, so a resumed run gets the same.
    cosine: annealing (Loshchilov & Hutter 2017) over the whole schedule, from each group's own lr."""
    if schedule == "constant":
        return
    factor = 0.5 * (1 + math.cos(math.pi * epoch / epochs))
    for opt in optimizers.values():
        for group in opt.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = group["initial_lr"] * factor


@dataclass
class StepContext:
    """What a model's train_step may use: its (possibly compiled) forward and the optimisers."""

    module: torch.nn.Module
    optimizers: dict[str, torch.optim.Optimizer]
    grad_clip: float | None = None  # max L2 norm of each optimizer's gradients (train.grad_clip)
    dist: ddp.Dist = field(default_factory=ddp.Dist)  # under torchrun: gradients are averaged over ranks

    def forward(self, *inputs: torch.Tensor | None):
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
