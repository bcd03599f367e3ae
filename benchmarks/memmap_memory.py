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

    .venv/bin/python benchmarks/memmap_memory.py [--scale 10] [--dir /tmp/genmodels-big]
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

    cfg = build_run_config({"family": "ae", "data": {"source": sys.argv[1]},
                            "model": {"hidden": [64], "latent_dim": 8},
                            "train": {"epochs": 1, "batch_size": 1000, "threads": 1}})
    base = anon_kb()  # the interpreter, torch and genmodels, before any data
    threading.Thread(target=watch, daemon=True).start()
    t0 = time.perf_counter()
    data = load_data(sys.argv[1])
    if sys.argv[3] == "in-memory":  # the contrast: the same images copied into the process
        data = DataSplits(Dataset(data.train.images.clone(), data.train.labels, "train"), data.test, data.source)
    train(cfg, sys.argv[2], overwrite=True, progress=False, data=data)
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    print(json.dumps({"base": base, "peak": max(peak[0], anon_kb()), "file": int(status["RssFile"].split()[0]),
                      "seconds": time.perf_counter() - t0}))
""")


def build(folder: Path, scale: int) -> int:
    from genmodels import load_data
    from genmodels.data import Dataset, DataSplits, write_idx

    fashion = load_data("fashion-mnist")
    big = Dataset(fashion.train.images.repeat(scale, 1, 1, 1), fashion.train.labels.repeat(scale), "big/train")
    write_idx(DataSplits(big, fashion.test, "big"), folder)
    return (folder / "train-images-idx3-ubyte").stat().st_size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=int, default=10)
    p.add_argument("--dir", type=Path, default=Path("/tmp/genmodels-big"))
    args = p.parse_args()
    if not sys.platform.startswith("linux"):
        sys.exit("this benchmark reads /proc/self/status: Linux only")
    shutil.rmtree(args.dir, ignore_errors=True)
    t0 = time.perf_counter()
    size = build(args.dir / "data", args.scale)
    built = time.perf_counter() - t0
    mib = lambda kb: kb / 1024  # noqa: E731
    print(f"data file: {size / 2**20:.0f} MiB ({60_000 * args.scale:,} training images; written in {built:.0f} s)")
    print("one epoch of an autoencoder (hidden 64, code 8), batch 1000, 1 thread, each in a fresh process:")
    growth = {}
    for mode in ("memory-mapped", "in-memory"):
        out = subprocess.run([sys.executable, "-c", CHILD, str(args.dir / "data"), str(args.dir / "run"), mode],
                             check=True, capture_output=True, text=True)
        m = json.loads(out.stdout.strip().splitlines()[-1])
        growth[mode] = m["peak"] - m["base"]
        print(f"  {mode:13}  {m['seconds']:5.0f} s   peak anonymous memory above the process's own "
              f"{mib(m['base']):.0f} MiB: {mib(growth[mode]):6.0f} MiB   (file pages resident at the end: "
              f"{mib(m['file']):.0f} MiB, dropped by the OS under pressure)")
    print(f"data file / peak anonymous growth, memory-mapped: {size / 1024 / growth['memory-mapped']:.1f} "
          f"(in memory: {size / 1024 / growth['in-memory']:.2f}); torch {torch.__version__}")
    shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
