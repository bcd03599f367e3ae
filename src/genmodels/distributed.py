"""Many processes, one code path (docs/ARCHITECTURE.md, "Many processes"):
`torchrun --nproc_per_node=N -m genmodels train ...`.

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous address; `setup` joins the
process group (gloo on CPU, nccl on GPUs). The engine then gives each rank its own share of every
global batch and trains through PyTorch's DistributedDataParallel (DDP): `replicate` wraps the
parameters of each optimizer (a GAN's D and G apart, each phase of the stacked autoencoder apart) in
its own DDP, whose hooks average the gradients bucket by bucket while backward still runs and which
gives every rank rank 0's buffers (BatchNorm's running statistics, spectral norm's vectors) at the
start of each forward. The engine averages the logged parts once per logging interval, gives every rank
rank 0's buffers again before each epoch's end, and does all file I/O, evaluation and checkpoints on
rank 0 alone. The weights it saves are the plain model's, so they load without torchrun. With one
process every function here is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import nn


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

        for t in module.parameters():
            dist.broadcast(t.data, 0)
    broadcast_buffers(module, d)


class _Updated(nn.Module):
    """What one optimizer updates, as a module DDP can wrap: the largest submodules of the model whose
    parameters that optimizer alone updates (with their buffers), plus any of its parameters held loose
    beside others'. Its forward calls the function it is given, so a loss computed through modules it does
    not hold (G's loss runs through a frozen D) still averages exactly these parameters' gradients."""

    def __init__(self, model: nn.Module, updated: set[int]):
        super().__init__()
        owners: list[nn.Module] = []
        loose: list[nn.Parameter] = []

        def visit(module: nn.Module) -> None:
            params = list(module.parameters())
            if params and all(id(p) in updated for p in params):
                owners.append(module)
                return
            loose.extend(p for p in module.parameters(recurse=False) if id(p) in updated)
            for child in module.children():
                visit(child)

        visit(model)
        self.owners = nn.ModuleList(owners)
        self.loose = nn.ParameterList(loose)

    def forward(self, fn, *args):
        return fn(*args)


def replicate(model: nn.Module, optimizers: dict[str, torch.optim.Optimizer], d: Dist) -> dict[str, nn.Module]:
    """Under torchrun, one DistributedDataParallel wrapper per optimizer (nothing with one process).

    A model computes optimizer `name`'s loss inside `wrapper(fn, *args)` (`optim.StepContext.run`), so DDP
    prepares that optimizer's gradient buckets; the loss's backward then all-reduces each bucket as soon as
    its gradients are ready, overlapping communication with the rest of backward (Li et al. 2020, "PyTorch
    Distributed", section 3.2.3), and leaves the ranks' mean gradient. A wrapper whose forward did not run
    ignores a backward: a parameter shared by two optimizers (a stacked autoencoder's layer, in its pretraining
    phase and in fine-tuning) is reduced only by the wrapper whose forward ran. broadcast_buffers (DDP's default)
    gives every rank rank 0's buffers before each forward; SyncBatchNorm would instead take batch statistics
    over the whole global batch, but torch implements it for GPUs only, and the gloo runs on CPUs need the
    same path (docs/ARCHITECTURE.md, "Many processes")."""
    if not d.active:
        return {}
    from torch.nn.parallel import DistributedDataParallel

    return {name: DistributedDataParallel(_Updated(model, {id(p) for g in opt.param_groups for p in g["params"]}))
            for name, opt in optimizers.items()}


def broadcast_buffers(module: nn.Module, d: Dist) -> None:
    """Rank 0's buffers on every rank: each rank updates BatchNorm's running statistics from its own shard
    between DDP's broadcasts, so before an epoch's evaluation and checkpoint every rank takes rank 0's."""
    if d.active:
        import torch.distributed as dist

        for t in module.buffers():
            dist.broadcast(t.data, 0)


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


def rank_rng_states(d: Dist, device: torch.device) -> dict[str, torch.Tensor]:
    """Every other rank's CPU random-number state, as the "torch.rank<r>" entries of rank 0's checkpoint, so a
    resumed run draws each rank's noise on where it stopped. A collective: every rank calls it. Nothing with
    one process."""
    if not d.active:
        return {}
    import torch.distributed as dist

    state = torch.get_rng_state()
    if device.type == "cuda":  # nccl gathers GPU tensors only
        state = state.to(device)
    states = [torch.empty_like(state) for _ in range(d.world)]
    dist.all_gather(states, state)
    return {f"torch.rank{r}": s.cpu() for r, s in enumerate(states) if r > 0}


def main_process() -> bool:
    """Whether this process prints a command's results: rank 0 of torchrun's group, or the only process."""
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


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
