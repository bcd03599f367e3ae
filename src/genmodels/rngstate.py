"""The random-number states a training checkpoint keeps, and their restoring (docs/ARCHITECTURE.md, "One
training step"): the global CPU generator ("torch"), the batch order's generator ("data"), on a GPU its
generator ("cuda"), and under torchrun every other rank's CPU generator ("torch.rank<r>",
distributed.rank_rng_states), so a resumed run draws exactly what an uninterrupted one would have.
"""

from __future__ import annotations

from pathlib import Path

import torch

from . import distributed as ddp
from .errors import CheckpointError


def rng_state(order: torch.Generator) -> dict[str, torch.Tensor]:
    """This process's states: the global CPU generator, the batch order's and (on a GPU) the device's."""
    rng = {"torch": torch.get_rng_state(), "data": order.get_state()}
    if order.device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(order.device)
    return rng


def set_rng_state(rng: dict[str, torch.Tensor], order: torch.Generator, device: torch.device, path: Path) -> None:
    """Restore the RNG states, each first checked against the generator it goes to (a wrong-sized state
    would be read out of bounds)."""
    now = rng_state(order)
    for key in ("torch", "data", *(["cuda"] if "cuda" in now and "cuda" in rng else [])):
        value = rng.get(key)
        if value is None or value.dtype != torch.uint8 or value.shape != now[key].shape:
            raise CheckpointError(f"{path} holds no valid {key} random-number state; it is damaged, retrain the run.")
    torch.set_rng_state(rng["torch"])
    order.set_state(rng["data"])
    if device.type == "cuda" and "cuda" in rng:
        torch.cuda.set_rng_state(rng["cuda"], device)


def set_rank_rng_state(rng: dict[str, torch.Tensor], dist: ddp.Dist, path: Path) -> bool:
    """Under torchrun, each rank's own CPU random-number state from a checkpoint saved by as many processes
    (rank 0's is "torch", already set; the others' "torch.rank<r>"); False, and nothing set, for a checkpoint
    from one process, another number of them, or before they were kept."""
    if any(f"torch.rank{r}" not in rng for r in range(1, dist.world)) or f"torch.rank{dist.world}" in rng:
        return False
    if dist.rank > 0:
        value, now = rng[f"torch.rank{dist.rank}"], torch.get_rng_state()
        if value.dtype != torch.uint8 or value.shape != now.shape:
            raise CheckpointError(f"{path} holds no valid random-number state for rank {dist.rank}; it is damaged, "
                                  "retrain the run.")
        torch.set_rng_state(value)
    return True
