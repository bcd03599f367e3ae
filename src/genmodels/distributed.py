"""Many processes, one code path (docs/ARCHITECTURE.md, "Many processes"): `torchrun --nproc_per_node=N -m genmodels train ...`.

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous address; `setup` joins the
process group (gloo on CPU, nccl on GPUs). The engine then gives each rank its own share of every
global batch, averages the gradients of every optimizer step across ranks (after backward, so any
model works as it is: a GAN's two optimisers, the stacked AE's phases, the contractive penalty's
torch.func Jacobian), averages the logged parts once per logging interval, and does all file I/O,
evaluation and checkpoints on rank 0 alone. The weights it saves are the plain model's, so they load
without torchrun. With one process every function here is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes files, evaluates and shows progress."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def setup(device: torch.device) -> tuple[Dist, torch.device]:
    """Join torchrun's process group if this is one of several processes; the device of this rank."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), device
    import torch.distributed as dist

    if device.type == "cuda":  # one GPU per process
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size()), device


def shard(index: torch.Tensor, d: Dist) -> torch.Tensor:
    """This rank's share of a global batch's indices: every world-th one, from its rank on."""
    return index[d.rank :: d.world] if d.active else index


def broadcast_module(module: torch.nn.Module, d: Dist) -> None:
    """Rank 0's parameters and buffers on every rank, so all start from the same weights."""
    if d.active:
        import torch.distributed as dist

        for t in [*module.parameters(), *module.buffers()]:
            dist.broadcast(t.data, 0)


def average_gradients(params: list[torch.Tensor], d: Dist) -> None:
    """Replace each gradient by its mean over ranks: one all-reduce over a flat buffer."""
    if not d.active:
        return
    import torch.distributed as dist

    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= d.world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def average_parts(sums: dict[str, torch.Tensor], d: Dist) -> dict[str, torch.Tensor]:
    """Logged sums averaged over ranks (names and order are the same on every rank)."""
    if not d.active or not sums:
        return sums
    import torch.distributed as dist

    keys = sorted(sums)
    stacked = torch.stack([sums[k].float().reshape(()) for k in keys])
    dist.all_reduce(stacked)
    return {k: v / d.world for k, v in zip(keys, stacked)}


def sum_over_ranks(tensors: list[torch.Tensor]) -> bool:
    """Sum each tensor in place over the ranks of torchrun's process group, if one was joined;
    False (and nothing done) in a single process."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return False
    for t in tensors:
        dist.all_reduce(t)
    return True


def any_rank(flag: bool, d: Dist, device: torch.device) -> bool:
    """True on every rank if it is True on any (a stop asked for by a signal on one rank)."""
    if not d.active:
        return flag
    import torch.distributed as dist

    t = torch.tensor(float(flag), device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def barrier(d: Dist) -> None:
    if d.active:
        import torch.distributed as dist

        dist.barrier()
