"""How one training epoch of the default MLP VAE scales with the number of training images: time and memory.

The default `genmodels train vae` model (784-512-16 encoder, 16-512-784 decoder, Bernoulli
likelihood, Adam lr 1e-3), batch 100, one epoch on the first N/10, N/2 and N Fashion-MNIST
training images (N = --images, default 60,000: 6,000, 30,000 and 60,000). Each size runs in a
fresh process, the sizes alternating, best of --repeats epochs (genmodels' own `epoch_seconds`,
the epoch's training steps). Linear scaling means the same time per image at every size: the
ratios printed are the per-image time at the larger sizes over the smallest's (1.0 is linear).

Memory, per process (Linux; the largest over the repeats):
- train images: the uint8 bytes of the N training images (N x 784);
- RSS with data: the process's resident size after loading Fashion-MNIST and keeping only the
  first N training images (copied out, so the other 60,000 - N are freed) and the 10,000 test images,
  before training; `base` is its size before loading anything (interpreter, torch, genmodels);
- peak loading: ru_maxrss (getrusage, KiB) then: loading decompresses the whole gzipped IDX file,
  so this is the same at every size;
- peak train(): ru_maxrss at the end of the train() call (the epoch, then test evaluation,
  checkpoint, images), with the peak reset (/proc/self/clear_refs) just before it, so it is
  train()'s own peak; where the reset is refused it is the whole process's peak, marked "*".
A child's ru_maxrss starts at its parent's peak (vfork + exec), so this driver imports neither
torch nor genmodels and stays small.

    .venv/bin/python benchmarks/scaling.py [--images 60000] [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import sys

from _alternate import run_alternating  # benchmarks/_alternate.py (standard library only)

MIB = 1024 * 1024


def rss_kib() -> int:
    """Resident set size now, KiB (Linux)."""
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS:")).split()[1])


def reset_peak() -> bool:
    """Reset the process's peak RSS (Linux >= 4.0), so ru_maxrss then measures from here on."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def worker(n: int, threads: int | None) -> None:
    import resource
    import tempfile

    import torch

    from genmodels import build_run_config, load_data, train
    from genmodels.data import Dataset, DataSplits

    if threads:
        torch.set_num_threads(threads)
    base = rss_kib()
    full = load_data("fashion-mnist")
    tr = full.train
    images = tr.images[:n] if n == len(tr) else tr.images[:n].clone()  # only the n images trained on stay
    labels = None if tr.labels is None else tr.labels[:n].clone()
    data = DataSplits(Dataset(images, labels, f"{tr.name}[:{n}]"), full.test, full.source)
    del full, tr
    loaded, peak_loading = rss_kib(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    reset = reset_peak()
    cfg = build_run_config({"family": "vae", "train": {"epochs": 1, "batch_size": 100}})
    with tempfile.TemporaryDirectory() as tmp:
        result = train(cfg, f"{tmp}/run", progress=False, data=data)
    print(json.dumps({"epoch": result.epoch_seconds[-1], "bytes": images.numel() * images.element_size(),
                      "base": base, "loaded": loaded, "peak_loading": peak_loading,
                      "peak_train": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "reset": reset}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=60_000, help="the largest size N; also N/10 and N/2 run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.threads)
    n = min(args.images, 60_000)
    sizes = [n // 10, n // 2, n]
    if sizes[0] < 1:
        ap.error("--images must be at least 10")
    threads = ["--threads", str(args.threads)] if args.threads else []
    runs = run_alternating({s: [sys.executable, __file__, "--worker", str(s), *threads] for s in sizes}, args.repeats)
    best = {s: min(r["epoch"] for r in runs[s]) for s in sizes}
    mem = {s: {k: max(r[k] for r in runs[s]) for k in ("bytes", "base", "loaded", "peak_loading", "peak_train")}
           for s in sizes}
    star = "" if all(r["reset"] for rs in runs.values() for r in rs) else "*"
    print(f"default MLP VAE, Fashion-MNIST, batch 100, one epoch, {args.threads or 'default'} threads, "
          f"best of {args.repeats}; memory in MiB")
    print(f"{'images':>8}{'s/epoch':>9}{'images/s':>10}{'per-image x':>13}{'train images':>14}{'base':>7}"
          f"{'RSS with data':>15}{'peak loading':>14}{'peak train()':>14}")
    for s in sizes:
        m = mem[s]
        per_image = (best[s] / s) / (best[sizes[0]] / sizes[0])
        print(f"{s:>8}{best[s]:>9.2f}{s / best[s]:>10.0f}{per_image:>13.2f}{m['bytes'] / MIB:>14.1f}"
              f"{m['base'] / 1024:>7.0f}{m['loaded'] / 1024:>15.0f}{m['peak_loading'] / 1024:>14.0f}"
              f"{m['peak_train'] / 1024:>13.0f}{star or ' '}")
    for s in sizes[1:]:
        ratio = (best[s] / s) / (best[sizes[0]] / sizes[0])
        print(f"per-image time {s} vs {sizes[0]} images: {ratio:.2f}  (linear scaling = 1.00)")
    if star:
        print("* the peak could not be reset before train(): the whole process's peak")


if __name__ == "__main__":
    main()
