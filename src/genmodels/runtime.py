"""Where and how a process computes: the device a config names, the memory free there, torch's thread count,
glibc's allocator.

Kept apart from the training loop, which calls these once at its start (docs/ARCHITECTURE.md, "Layers")."""

from __future__ import annotations

import ctypes
import os
import sys
import warnings

import torch

from .errors import GenmodelsError
from .fileio import available_memory


def resolve_device(name: str) -> torch.device:
    """cpu | cuda | cuda:N | auto (cuda where a GPU is visible, else cpu), or a one-sentence error.
    mps is taken where this torch has it; any other device type (meta, xla, ...) is refused."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise GenmodelsError(f"Unknown device {str(name)[:40]!r}; use cpu, cuda, cuda:N or auto.")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GenmodelsError(f"Device {name!r} was asked for but no CUDA GPU is visible; use --device cpu.")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise GenmodelsError(f"Device {name!r} was asked for but only {torch.cuda.device_count()} CUDA GPU(s) "
                             f"are visible; use cuda:0 to cuda:{torch.cuda.device_count() - 1}.")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise GenmodelsError(f"Device {name!r} was asked for but this machine has no Apple GPU (MPS); "
                             "use --device cpu.")
    return device


# More threads than this many per core only add switching; far more fail to start at all (100000 threads end
# in "OSError: Cannot allocate memory"), so a larger --threads is capped, with a warning, to one per core.
THREADS_PER_CORE = 4


def cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def set_threads(threads: int | None) -> None:
    """torch's intra-op threads; None keeps torch's default (one per core). More than THREADS_PER_CORE per core
    is capped to one per core, with a warning that says so (never a refusal, so a run resumed on a smaller
    machine than it started on goes on)."""
    if not threads:
        return
    n, limit = cores(), THREADS_PER_CORE * cores()
    if threads > limit:
        warnings.warn(f"--threads {threads} (train.threads) is more than {limit}, {THREADS_PER_CORE} for each of the "
                      f"{n} CPU cores here, so genmodels uses {n} threads; give --threads {limit} or fewer to choose.",
                      RuntimeWarning, stacklevel=2)
        threads = n
    torch.set_num_threads(threads)


def free_memory(device: torch.device) -> int | None:
    """Bytes that may still be allocated on `device`: a CUDA GPU's free memory, or the host's available memory
    (within its cgroup's limit where one is set); None where it cannot be told (mps, a system without
    /proc/meminfo or sysconf)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    return available_memory()


def keep_freed_memory() -> bool:
    """Stop glibc returning freed memory to the OS between steps (Linux only).

    Every step frees and reallocates the same activation buffers; with glibc's defaults the
    heap top is trimmed and large blocks are mmap'd afresh, so each step pays page faults.
    Fixed thresholds keep that memory in the process, at the cost of the process keeping its
    peak heap. Measured with benchmarks/vae_throughput.py (GENMODELS_MALLOC_TUNING=0 against =1,
    README "Performance"): the MLP VAE's epoch about 1.15x faster with it.
    Set GENMODELS_MALLOC_TUNING=0 to leave malloc alone."""
    if not sys.platform.startswith("linux") or os.environ.get("GENMODELS_MALLOC_TUNING", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl, say)
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 1 << 30) and libc.mallopt(m_trim_threshold, 1 << 30))
