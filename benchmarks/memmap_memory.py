"""Memory of one training epoch over IDX data several times larger than the memory it uses.

Builds an uncompressed IDX folder of Fashion-MNIST's training images repeated --scale times
(60,000 x scale images of 28x28 bytes), the layout `genmodels data convert` writes, then trains
one epoch of a small autoencoder on it in a fresh process and reads that process's memory from
/proc/self/status:

- RssAnon, sampled every 50 ms: anonymous memory, what the process itself holds and the OS
  cannot drop; its peak growth above the process's size before loading any data is printed;
- RssFile: pages of the mapped data file that are resident, a cache the OS drops under pressure.

The same epoch with the images copied into memory is the contrast, measured in the same run.
The ratio printed is the data file's size over the peak anonymous growth (Linux only).

--vectors: the same for vector data, issue 29's target: a (--rows, 32) float32 .npy (100,000 rows by default, a
mixture of Gaussians) trains one epoch of a VAE and of a GAN at their vector defaults, each memory-mapped and copied
into memory, with the peak resident set (VmHWM) printed beside the anonymous growth and the file's size.

    .venv/bin/python benchmarks/memmap_memory.py [--scale 10] [--dir /tmp/genmodels-big]
    .venv/bin/python benchmarks/memmap_memory.py --vectors [--rows 100000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import torch

CHILD = textwrap.dedent("""
    import json, sys, threading, time, torch
    torch.set_num_threads(1)
    from genmodels import build_run_config, load_data, train
    from genmodels.data import DataSplits, Dataset

    def anon_kb():
        return int(next(l for l in open("/proc/self/status") if l.startswith("RssAnon")).split()[1])

    peak = [0]
    def watch():  # RssAnon every 50 ms: its peak over loading and the epoch
        while True:
            peak[0] = max(peak[0], anon_kb()); time.sleep(0.05)

    family, model = sys.argv[4], json.loads(sys.argv[5])
    cfg = build_run_config({"family": family, "data": {"source": sys.argv[1]}, "model": model,
                            "train": {"epochs": 1, "batch_size": 1000, "threads": 1}})
    if sys.argv[6:] == ["preload"]:  # matplotlib too (the pictures), so the growth is the data's and the steps'
        import matplotlib.figure, genmodels.plots
    base = anon_kb()  # the interpreter, torch and genmodels, before any data
    threading.Thread(target=watch, daemon=True).start()
    t0 = time.perf_counter()
    data = load_data(sys.argv[1])
    if sys.argv[3] == "in-memory":  # the contrast: the same images (or vectors) copied into the process
        train_split = Dataset(data.train.images.clone(), data.train.labels, "train", data.train.rows)
        data = DataSplits(train_split, data.test, data.source)
    train(cfg, sys.argv[2], overwrite=True, progress=False, data=data)
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    print(json.dumps({"base": base, "peak": max(peak[0], anon_kb()), "file": int(status["RssFile"].split()[0]),
                      "hwm": int(status["VmHWM"].split()[0]), "seconds": time.perf_counter() - t0}))
""")


def build(folder: Path, scale: int) -> int:
    from genmodels import load_data
    from genmodels.data import Dataset, DataSplits, write_idx

    fashion = load_data("fashion-mnist")
    big = Dataset(fashion.train.images.repeat(scale, 1, 1, 1), fashion.train.labels.repeat(scale), "big/train")
    write_idx(DataSplits(big, fashion.test, "big"), folder)
    return (folder / "train-images-idx3-ubyte").stat().st_size


def build_vectors(path: Path, rows: int, d: int = 32) -> int:
    """A (rows, d) float32 .npy of vectors: a mixture of 8 Gaussians in d dimensions, off-centre and unscaled (as
    a user's features are), written a block at a time so this process never holds it whole."""
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(8, d)) + 50.0
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, d))
    for i in range(0, rows, 10_000):
        k = min(10_000, rows - i)
        out[i : i + k] = centres[rng.integers(8, size=k)] + rng.normal(size=(k, d))
    out.flush()
    del out
    return path.stat().st_size


def measure(data: Path, run: Path, mode: str, family: str, model: dict, *more: str) -> dict:
    """One epoch in a fresh process: its memory (CHILD's JSON)."""
    out = subprocess.run([sys.executable, "-c", CHILD, str(data), str(run), mode, family, json.dumps(model), *more],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def vectors(folder: Path, rows: int) -> None:
    """--vectors: one epoch of a VAE and of a GAN (vector defaults) on a (rows, 32) .npy, mapped and in memory."""
    folder.mkdir(parents=True)
    size = build_vectors(folder / "vectors.npy", rows)
    mib = lambda kb: kb / 1024  # noqa: E731
    print(f"data file: {size / 2**20:.1f} MiB ({rows:,} vectors of 32 float32)")
    print("one epoch at the family's vector defaults, batch 1000, 1 thread, each in a fresh process:")
    for family in ("vae", "gan"):
        growth = {}
        for mode in ("memory-mapped", "in-memory"):
            m = measure(folder / "vectors.npy", folder / f"run-{family}", mode, family, {}, "preload")
            growth[mode] = m["peak"] - m["base"]
            print(f"  {family} {mode:13}  {m['seconds']:5.0f} s   peak resident set {mib(m['hwm']):6.0f} MiB; peak "
                  f"anonymous memory above the process's own {mib(m['base']):.0f} MiB (matplotlib loaded): "
                  f"{mib(growth[mode]):6.1f} MiB  "
                  f"(file pages resident at the end: {mib(m['file']):.1f} MiB)")
        print(f"  {family}: copying the data into memory adds {mib(growth['in-memory'] - growth['memory-mapped']):.1f}"
              f" MiB of anonymous memory; the data file is {size / 2**20:.1f} MiB")
    print(f"torch {torch.__version__}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=int, default=10)
    p.add_argument("--dir", type=Path, default=Path("/tmp/genmodels-big"))
    p.add_argument("--vectors", action="store_true", help="a .npy of vectors (issue 29's target) instead of images")
    p.add_argument("--rows", type=int, default=100_000, help="vectors in the .npy of --vectors")
    args = p.parse_args()
    if not sys.platform.startswith("linux"):
        sys.exit("this benchmark reads /proc/self/status: Linux only")
    shutil.rmtree(args.dir, ignore_errors=True)
    if args.vectors:
        vectors(args.dir, args.rows)
        shutil.rmtree(args.dir, ignore_errors=True)
        return
    t0 = time.perf_counter()
    size = build(args.dir / "data", args.scale)
    built = time.perf_counter() - t0
    mib = lambda kb: kb / 1024  # noqa: E731
    print(f"data file: {size / 2**20:.0f} MiB ({60_000 * args.scale:,} training images; written in {built:.0f} s)")
    print("one epoch of an autoencoder (hidden 64, code 8), batch 1000, 1 thread, each in a fresh process:")
    growth = {}
    for mode in ("memory-mapped", "in-memory"):
        m = measure(args.dir / "data", args.dir / "run", mode, "ae", {"hidden": [64], "latent_dim": 8})
        growth[mode] = m["peak"] - m["base"]
        print(f"  {mode:13}  {m['seconds']:5.0f} s   peak anonymous memory above the process's own "
              f"{mib(m['base']):.0f} MiB: {mib(growth[mode]):6.0f} MiB   (file pages resident at the end: "
              f"{mib(m['file']):.0f} MiB, dropped by the OS under pressure)")
    print(f"data file / peak anonymous growth, memory-mapped: {size / 1024 / growth['memory-mapped']:.1f} "
          f"(in memory: {size / 1024 / growth['in-memory']:.2f}); torch {torch.__version__}")
    shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
