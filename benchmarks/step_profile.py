"""Where a genmodels training step spends its time: matrix products, convolutions, the optimizer, the rest.

Builds each model as the throughput benchmarks train it (the MLP VAE of vae_throughput.py; the conv
VAE, deep autoencoder and DCGAN of model_throughput.py), takes --warmup steps on Fashion-MNIST
batches of 100 through the model's own train_step, then profiles --steps more with torch.profiler
and sorts every aten operator's self CPU time into:

- matrix products: aten::mm, addmm, bmm (the matmul floor's work);
- convolutions: any operator with "convolution" in its name, forward and backward;
- optimizer: the fused Adam kernel plus the Python of Optimizer.step and zero_grad;
- everything else: activations, losses, autograd bookkeeping, the batch gather.

--precision bf16-mixed (or fp16-mixed) runs each step as `genmodels train --precision` does, the
train_step under autocast; the float32 <-> bf16 casts then show up in "everything else" (aten::_to_copy,
aten::copy_), and --top N lists the N operators with the most self time, to see which.

The profiler adds its own overhead per operator, so the shares are a guide, not a timing; the
throughput benchmarks give the timings.

    .venv/bin/python benchmarks/step_profile.py [--models mlpvae,convvae,deepae,dcgan] [--steps 100] [--threads N]
        [--precision fp32|bf16-mixed|fp16-mixed] [--top N]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from genmodels import build_run_config, load_data
from genmodels.data import Batch
from genmodels.models import build_model
from genmodels.optim import StepContext
from genmodels.runtime import keep_freed_memory

CONFIGS = {
    "mlpvae": {"family": "vae", "model": {"arch": "mlp", "hidden": [512], "latent_dim": 16, "likelihood": "gaussian",
                                          "gaussian_std": 1.0}, "train": {"lr": 1e-4}},
    "convvae": {"family": "vae", "model": {"arch": "conv"}},
    "deepae": {"family": "ae", "model": {"hidden": [1000, 500, 250], "latent_dim": 30, "loss": "bce"}},
    "dcgan": {"family": "gan", "model": {"arch": "conv"}},
}
MATMUL = {"aten::mm", "aten::addmm", "aten::bmm"}


def category(name: str) -> str:
    if name in MATMUL:
        return "matrix products"
    if "convolution" in name:
        return "convolutions"
    if name == "aten::_fused_adam_" or name.startswith("Optimizer."):
        return "optimizer"
    return "everything else"


def profile_model(name: str, images: torch.Tensor, warmup: int, steps: int, precision: str = "fp32",
                  top: int = 0) -> tuple[float, dict[str, float]]:
    """Milliseconds per step without the profiler, and each category's share of the profiled self time;
    prints the `top` operators with the most self time."""
    cfg = build_run_config({**CONFIGS[name], "train": {**CONFIGS[name].get("train", {}), "batch_size": 100}})
    torch.manual_seed(0)
    model = build_model(cfg.family, cfg.model, (1, 28, 28))
    ctx = StepContext(model, model.make_optimizers(cfg.train, torch.device("cpu")), precision=precision)
    perm = torch.randperm(len(images))

    def run(first: int, n: int) -> None:
        for i in range(first, first + n):
            idx = perm[(i * 100) % len(images) :][:100]
            with ctx.autocast():  # as the engine runs it; nothing for fp32
                model.train_step(Batch(images.index_select(0, idx).float().div_(255)), ctx)

    run(0, warmup)
    t0 = time.perf_counter()
    run(warmup, steps)
    ms = (time.perf_counter() - t0) / steps * 1e3
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run(warmup + steps, steps)
    shares: dict[str, float] = {}
    for event in prof.key_averages():
        shares[category(event.key)] = shares.get(category(event.key), 0.0) + event.self_cpu_time_total
    total = sum(shares.values())
    for event in sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:top]:
        print(f"  {name} {event.key:40}{event.self_cpu_time_total / total:>7.1%}")
    return ms, {k: v / total for k, v in shares.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(CONFIGS), help="comma-separated subset of " + ", ".join(CONFIGS))
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16-mixed", "fp16-mixed"])
    ap.add_argument("--top", type=int, default=0, help="also list the N operators with the most self time")
    args = ap.parse_args()
    models = [m for m in args.models.split(",") if m]
    if not models or any(m not in CONFIGS for m in models):
        ap.error(f"--models takes a comma-separated subset of {', '.join(CONFIGS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    keep_freed_memory()  # as genmodels.train does
    images = load_data("fashion-mnist").train.images
    cats = ["matrix products", "convolutions", "optimizer", "everything else"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.precision}, {args.steps} steps of "
          "batch 100; share of the profiled self CPU time")
    print(f"{'model':10}{'ms/step':>9}" + "".join(f"{c:>17}" for c in cats))
    for name in models:
        ms, shares = profile_model(name, images, args.warmup, args.steps, args.precision, args.top)
        print(f"{name:10}{ms:>9.2f}" + "".join(f"{shares.get(c, 0.0):>17.0%}" for c in cats), flush=True)


if __name__ == "__main__":
    main()
