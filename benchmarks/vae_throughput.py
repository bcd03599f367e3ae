"""Training throughput of the MLP VAE: genmodels' engine against a minimal hand-written loop.

The model is pythae's default MLP VAE: encoder 784-512 (ReLU) with 16-d mean and
log-variance heads, decoder 16-512-784 with a sigmoid output, loss 0.5 * summed
squared error + analytic KL (a unit-variance Gaussian p(x|z)), Adam lr 1e-4,
batch 100, one epoch over the 60,000 Fashion-MNIST training images. Each
contender runs in a fresh process of its own (so process-wide settings such as
genmodels' allocator tuning cannot help the other), alternating, on the same
threads; the best of --repeats epochs of each is reported.

    .venv/bin/python benchmarks/vae_throughput.py [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time

import torch
from torch import nn

from genmodels import build_run_config, load_data, train


def minimal_loop(x_train: torch.Tensor, epochs: int = 1, seed: int = 0) -> float:
    """The loop a careful user writes by hand: float data in memory, index-slice batches, stock Adam.
    Returns seconds for the last epoch."""
    torch.manual_seed(seed)
    enc, mu_head, lv_head = nn.Sequential(nn.Linear(784, 512), nn.ReLU()), nn.Linear(512, 16), nn.Linear(512, 16)
    dec = nn.Sequential(nn.Linear(16, 512), nn.ReLU(), nn.Linear(512, 784), nn.Sigmoid())
    params = [*enc.parameters(), *mu_head.parameters(), *lv_head.parameters(), *dec.parameters()]
    opt = torch.optim.Adam(params, lr=1e-4)
    x_all = x_train.reshape(len(x_train), -1).float() / 255
    n = len(x_all)
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        for i in range(0, n, 100):
            x = x_all[perm[i : i + 100]]
            h = enc(x)
            mu, logvar = mu_head(h), lv_head(h)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            rec = 0.5 * (dec(z) - x).pow(2).sum(-1)
            kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)
            loss = (rec + kl).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        seconds = time.perf_counter() - t0
    return seconds


def genmodels_epoch(data, epochs: int = 1) -> tuple[float, float]:
    """Seconds of genmodels' last training epoch, and of the whole train() call (eval, checkpoints, images)."""
    cfg = build_run_config({
        "family": "vae",
        "model": {"arch": "mlp", "hidden": [512], "latent_dim": 16, "likelihood": "gaussian", "gaussian_std": 1.0},
        "train": {"epochs": epochs, "batch_size": 100, "lr": 1e-4},
    })
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = train(cfg, f"{tmp}/run", progress=False, data=data)
        total = time.perf_counter() - t0
    return result.epoch_seconds[-1], total


def worker(kind: str, threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)
    data = load_data("fashion-mnist")
    if kind == "minimal":
        print(json.dumps({"epoch": minimal_loop(data.train.images)}))
    else:
        epoch, total = genmodels_epoch(data)
        print(json.dumps({"epoch": epoch, "total": total}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--worker", choices=["minimal", "genmodels"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.threads)
    n = 60_000
    print(f"Fashion-MNIST train {n} images, torch {torch.__version__}, "
          f"{args.threads or torch.get_num_threads()} threads, best of {args.repeats}")
    runs: dict[str, list[dict]] = {"minimal": [], "genmodels": []}
    for _ in range(args.repeats):  # alternating, so both see the same machine state
        for kind in runs:
            cmd = [sys.executable, __file__, "--worker", kind] + (["--threads", str(args.threads)] if args.threads else [])
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            runs[kind].append(json.loads(out.strip().splitlines()[-1]))
    ref = min(r["epoch"] for r in runs["minimal"])
    ours = min(r["epoch"] for r in runs["genmodels"])
    total = min(r["total"] for r in runs["genmodels"])
    print(f"{'':34}{'images/s':>10}{'s/epoch':>9}")
    print(f"{'minimal hand-written loop':34}{n / ref:>10.0f}{ref:>9.2f}")
    print(f"{'genmodels (training steps)':34}{n / ours:>10.0f}{ours:>9.2f}")
    print(f"{'genmodels (whole train() call)':34}{n / total:>10.0f}{total:>9.2f}"
          "   (adds test eval, checkpoint, images)")
    print(f"ratio genmodels / minimal loop: {ref / ours:.2f}  (target >= 1.0)")


if __name__ == "__main__":
    main()
