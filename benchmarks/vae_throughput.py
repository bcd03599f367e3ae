"""Training throughput of the MLP VAE: genmodels (fp32, bf16) against pythae 0.1.2, a minimal loop, the matmul floors.

The model is pythae's default MLP VAE: encoder 784-512 (ReLU) with 16-d mean and
log-variance heads, decoder 16-512-784 with a sigmoid output, loss 0.5 * summed
squared error + analytic KL (a unit-variance Gaussian p(x|z)), Adam lr 1e-4,
batch 100, one epoch over the 60,000 Fashion-MNIST training images.

Contenders, each in a fresh process of its own (so process-wide settings such as
genmodels' allocator tuning cannot help another), alternating, on the same threads;
the best of --repeats epochs of each is reported:

- pythae 0.1.2: its own `BaseTrainer.train_step` (one epoch of its training loop,
  DataLoader included), run from a virtual environment of its own that this script
  makes on first use in benchmarks/.venv-pythae (torch==2.13.0 first, then
  pythae==0.1.2 from the package registry; never a genmodels dependency);
- the minimal hand-written loop a careful user writes: float data in memory,
  index-slice batches, stock Adam;
- genmodels' engine (`genmodels.train`): the epoch's training steps, and the whole
  call with its test evaluation, checkpoint and pictures; with --compile also the
  `train.compile` opt-in (torch.compile of the model's forward);
- genmodels with `train.precision = "bf16-mixed"` (`--precision bf16-mixed`): the same
  epoch's steps with the forward under torch.autocast(bfloat16), float32 weights and Adam,
  and its whole call.

The whole call is timed from `train()` to its return, after the worker has built one throwaway torch
optimizer: building the first optimizer in a process imports torch._dynamo (about 0.8 s on two cores,
once per process, whoever builds it), which the minimal loop and pythae also pay before their timers
start. The table says how long that import took; a `genmodels train` command pays it once at its start.
- the matmul floor: the matrix products alone of one training step (forward x W^T for
  the five linear layers, and in backward the weight gradients g^T x and the input
  gradients g W, but none for the first layer's input, as autograd skips it) on
  preallocated buffers, 600 times. No loop that computes this model can beat it on
  this machine's BLAS;
- the bf16 floor: the same products on bfloat16 buffers, the floor of a bf16-mixed step
  (whose products autocast runs in bf16; the casts, Adam and the rest come on top).

Prints the table, then exactly these lines (throughput ratios, each from this one run):

    genmodels fp32 / matmul floor: X.XX
    genmodels fp32 / pythae: X.XX
    genmodels bf16 / pythae: X.XX
    genmodels bf16 / fp32: X.XX
    genmodels bf16 / bf16 floor: X.XX
    genmodels whole call / training steps: X.XX
    genmodels bf16 whole call / training steps: X.XX

The issue's targets (#18, #33): fp32 / floor >= 0.65, bf16 / pythae >= 2.5, bf16 / fp32 >= 1.4, whole call /
training steps >= 0.90 (each a throughput ratio: the steps' seconds over the whole call's, of the same call, the
fastest call of the repeats). Without pythae (--no-pythae) its two lines say n/a.

--device cuda runs every contender on the GPU (pythae with its own CUDA switch); each timing then ends
with a torch.cuda.synchronize(), and genmodels' epoch ends with its last logged step's read-back.

    .venv/bin/python benchmarks/vae_throughput.py [--repeats 3] [--threads N] [--compile] [--no-pythae]
        [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from _alternate import run_alternating  # benchmarks/_alternate.py

N_IMAGES, BATCH = 60_000, 100
# (in, out) of each linear layer, in forward order: encoder, mean head, log-variance head, decoder.
LAYERS = [(784, 512), (512, 16), (512, 16), (16, 512), (512, 784)]
PYTHAE_VENV = Path(__file__).resolve().parent / ".venv-pythae"


def pythae_python() -> Path:
    """The Python of pythae's own virtual environment, made on first use (about a minute)."""
    py = PYTHAE_VENV / "bin" / "python"
    if not (PYTHAE_VENV / ".installed").exists():
        print(f"making {PYTHAE_VENV} with pythae 0.1.2 (first run only)...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(PYTHAE_VENV)], check=True)
        pip = [str(py), "-m", "pip", "install", "-q"]
        # torch pinned first, so pythae's torch>=1.10.1 is met by the local CPU wheel and pip fetches no CUDA build.
        subprocess.run(pip + ["torch==2.13.0"], check=True)
        subprocess.run(pip + ["pythae==0.1.2"], check=True)
        (PYTHAE_VENV / ".installed").touch()
    return py


def synchronize(device: str) -> None:
    """Wait for the GPU's queued work, so a timing covers it (nothing on the CPU)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def minimal_loop(x_train: torch.Tensor, epochs: int = 1, seed: int = 0, device: str = "cpu") -> float:
    """The loop a careful user writes by hand: float data in memory, index-slice batches, stock Adam.
    Returns seconds for the last epoch."""
    torch.manual_seed(seed)
    enc, mu_head, lv_head = nn.Sequential(nn.Linear(784, 512), nn.ReLU()), nn.Linear(512, 16), nn.Linear(512, 16)
    dec = nn.Sequential(nn.Linear(16, 512), nn.ReLU(), nn.Linear(512, 784), nn.Sigmoid())
    for module in (enc, mu_head, lv_head, dec):
        module.to(device)
    params = [*enc.parameters(), *mu_head.parameters(), *lv_head.parameters(), *dec.parameters()]
    opt = torch.optim.Adam(params, lr=1e-4)
    x_all = x_train.reshape(len(x_train), -1).to(device).float() / 255
    n = len(x_all)
    for _ in range(epochs):
        synchronize(device)
        t0 = time.perf_counter()
        perm = torch.randperm(n, device=device)
        for i in range(0, n, BATCH):
            x = x_all[perm[i : i + BATCH]]
            h = enc(x)
            mu, logvar = mu_head(h), lv_head(h)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            rec = 0.5 * (dec(z) - x).pow(2).sum(-1)
            kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)
            loss = (rec + kl).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        synchronize(device)
        seconds = time.perf_counter() - t0
    return seconds


def matmul_floor(rounds: int = 5, dtype: torch.dtype = torch.float32, device: str = "cpu") -> float:
    """Seconds for one epoch's matrix products alone (best of `rounds`): 600 steps of the 5 forward,
    5 weight-gradient and 4 input-gradient products of LAYERS at batch 100, into preallocated outputs,
    all in `dtype` (bfloat16: the bf16 floor)."""
    g = torch.Generator().manual_seed(0)
    products = []
    for k, (fan_in, fan_out) in enumerate(LAYERS):
        x = torch.rand(BATCH, fan_in, generator=g).to(device, dtype)
        w = torch.rand(fan_out, fan_in, generator=g).to(device, dtype)
        dy = torch.rand(BATCH, fan_out, generator=g).to(device, dtype)
        products.append((x, w.t(), torch.empty(BATCH, fan_out, dtype=dtype, device=device)))  # forward: y = x W^T
        products.append((dy.t(), x, torch.empty(fan_out, fan_in, dtype=dtype, device=device)))  # backward: dW = dy^T x
        if k > 0:  # backward: dx = dy W (the data needs no gradient)
            products.append((dy, w, torch.empty(BATCH, fan_in, dtype=dtype, device=device)))
    steps = N_IMAGES // BATCH
    best = float("inf")
    for _ in range(rounds + 1):  # the first round warms up
        synchronize(device)
        t0 = time.perf_counter()
        for _ in range(steps):
            for a, b, out in products:
                torch.mm(a, b, out=out)
        synchronize(device)
        best = min(best, time.perf_counter() - t0)
    return best


def first_optimizer(device: str = "cpu") -> float:
    """Seconds to build the first torch optimizer of this process: torch imports torch._dynamo then, once."""
    t0 = time.perf_counter()
    torch.optim.Adam([torch.zeros(1, device=device, requires_grad=True)])
    return time.perf_counter() - t0


def genmodels_epoch(data, compile_: bool = False, precision: str = "fp32", device: str = "cpu") -> tuple[float, float]:
    """Seconds of genmodels' training epoch, and of the whole train() call (eval, checkpoints, images).
    With compile_ (train.compile) two epochs: the second's steps, and the first's extra for compiling.
    precision, device: train.precision, train.device."""
    from genmodels import build_run_config, train

    cfg = build_run_config({
        "family": "vae",
        "model": {"arch": "mlp", "hidden": [512], "latent_dim": 16, "likelihood": "gaussian", "gaussian_std": 1.0},
        "train": {"epochs": 2 if compile_ else 1, "batch_size": BATCH, "lr": 1e-4, "compile": compile_,
                  "precision": precision, "device": device},
    })
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = train(cfg, f"{tmp}/run", progress=False, data=data)
        total = time.perf_counter() - t0
    if compile_:  # the time the first epoch spent compiling, beyond a steady epoch
        return result.epoch_seconds[-1], result.epoch_seconds[0] - result.epoch_seconds[-1]
    return result.epoch_seconds[-1], total


def pythae_epoch(images_npy: str, device: str = "cpu") -> float:
    """Seconds of one epoch of pythae 0.1.2's own training loop (runs inside its virtual environment)."""
    from pythae.data.datasets import BaseDataset
    from pythae.models import VAE, VAEConfig
    from pythae.trainers import BaseTrainer, BaseTrainerConfig

    x = torch.from_numpy(np.load(images_npy)).float().div_(255)  # (N, 1, 28, 28) in [0, 1]
    model = VAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=16, reconstruction_loss="mse"))
    with tempfile.TemporaryDirectory() as tmp:
        cfg = BaseTrainerConfig(output_dir=tmp, num_epochs=1, learning_rate=1e-4, per_device_train_batch_size=BATCH,
                                per_device_eval_batch_size=BATCH, no_cuda=device == "cpu")
        trainer = BaseTrainer(model, BaseDataset(x, torch.zeros(len(x))), training_config=cfg)
        trainer.prepare_training()
        t0 = time.perf_counter()
        trainer.train_step(epoch=1)
        synchronize(device)
        return time.perf_counter() - t0


def worker(kind: str, threads: int | None, images_npy: str, device: str = "cpu") -> None:
    if threads:
        torch.set_num_threads(threads)
    if kind == "pythae":
        print(json.dumps({"epoch": pythae_epoch(images_npy, device)}))
    elif kind in ("floor", "floor-bf16"):
        dtype = torch.bfloat16 if kind == "floor-bf16" else torch.float32
        print(json.dumps({"epoch": matmul_floor(dtype=dtype, device=device)}))
    else:
        from genmodels import load_data

        data = load_data("fashion-mnist")
        if kind == "minimal":
            print(json.dumps({"epoch": minimal_loop(data.train.images, device=device)}))
        else:
            imports = first_optimizer(device)
            epoch, total = genmodels_epoch(data, compile_=kind == "genmodels-compile",
                                           precision="bf16-mixed" if kind == "genmodels-bf16" else "fp32",
                                           device=device)
            print(json.dumps({"epoch": epoch, "total": total, "imports": imports}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--compile", action="store_true", help="also measure genmodels with train.compile (torch.compile)")
    ap.add_argument("--no-pythae", action="store_true", help="skip pythae (no virtual environment is made)")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N: where every contender trains (default cpu)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--images-npy", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.threads, args.images_npy, args.device)
    if args.device != "cpu":
        from genmodels.errors import GenmodelsError
        from genmodels.runtime import resolve_device

        try:  # one sentence, before any worker starts, where there is no such GPU
            resolve_device(args.device)
        except GenmodelsError as err:
            sys.exit(f"vae_throughput.py: {err}")
    from genmodels import load_data

    kinds = (["floor", "floor-bf16", "minimal", "genmodels", "genmodels-bf16"] + ["genmodels-compile"] * args.compile
             + ["pythae"] * (not args.no_pythae))
    pythons = {k: sys.executable for k in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        images_npy = f"{tmp}/train.npy"  # pythae's process reads the same uint8 images, without genmodels
        np.save(images_npy, load_data("fashion-mnist").train.images.numpy())
        if "pythae" in kinds:
            pythons["pythae"] = str(pythae_python())
        threads = args.threads or torch.get_num_threads()
        where = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "CPU"
        print(f"Fashion-MNIST train {N_IMAGES} images, batch {BATCH}, torch {torch.__version__}, {threads} threads, "
              f"{where}, best of {args.repeats}")
        runs = run_alternating({kind: [pythons[kind], __file__, "--worker", kind, "--threads", str(threads),
                                       "--images-npy", images_npy, "--device", args.device] for kind in kinds},
                               args.repeats)
    best = {k: min(r["epoch"] for r in v) for k, v in runs.items()}
    rows = [("matmul floor (the step's matrix products alone)", best["floor"]),
            ("bf16 floor (the same products in bf16)", best["floor-bf16"]),
            ("minimal hand-written loop", best["minimal"])]
    if "pythae" in best:
        rows.append(("pythae 0.1.2", best["pythae"]))
    rows.append(("genmodels fp32 (training steps)", best["genmodels"]))
    rows.append(("genmodels bf16-mixed (training steps)", best["genmodels-bf16"]))
    if "genmodels-compile" in best:
        rows.append(("genmodels fp32, train.compile (steps of epoch 2)", best["genmodels-compile"]))
    whole = {k: min(runs[k], key=lambda r: r["total"]) for k in ("genmodels", "genmodels-bf16")}
    rows.append(("genmodels fp32 (whole train() call)", whole["genmodels"]["total"]))
    rows.append(("genmodels bf16-mixed (whole train() call)", whole["genmodels-bf16"]["total"]))
    print(f"{'':50}{'images/s':>10}{'s/epoch':>9}")
    for name, seconds in rows:
        print(f"{name:50}{N_IMAGES / seconds:>10.0f}{seconds:>9.2f}")
    imports = min(r["imports"] for r in runs["genmodels"])
    print(f"(the whole call adds the test evaluation, a checkpoint and the pictures; each process's first torch "
          f"optimizer, {imports:.2f} s of importing torch._dynamo, is built before the timer, as for every contender)")
    if "genmodels-compile" in best:
        compiling = min(r["total"] for r in runs["genmodels-compile"])
        print(f"train.compile / default: {best['genmodels'] / best['genmodels-compile']:.2f}  (above 1: compile pays; "
              f"timed in its second epoch, the first spent {compiling:.1f} s more compiling)")
    print("\n".join(ratio_lines(best, whole)))


def ratio_lines(best: dict[str, float], whole: dict[str, dict]) -> list[str]:
    """The ratios of the issues (#18, #33), each a throughput ratio (seconds of the second over the first) from
    the same run; pythae's n/a where it was not run. whole: per genmodels contender, the worker's record (epoch:
    the steps' seconds, total: the whole call's) of its fastest whole call."""
    def ratio(ours: str, ref: str) -> str:
        return f"{best[ref] / best[ours]:.2f}" if ref in best else "n/a (--no-pythae)"

    def steps_share(kind: str) -> str:
        return f"{whole[kind]['epoch'] / whole[kind]['total']:.2f}"

    return [f"genmodels fp32 / matmul floor: {ratio('genmodels', 'floor')}",
            f"genmodels fp32 / pythae: {ratio('genmodels', 'pythae')}",
            f"genmodels bf16 / pythae: {ratio('genmodels-bf16', 'pythae')}",
            f"genmodels bf16 / fp32: {ratio('genmodels-bf16', 'genmodels')}",
            f"genmodels bf16 / bf16 floor: {ratio('genmodels-bf16', 'floor-bf16')}",
            f"genmodels whole call / training steps: {steps_share('genmodels')}",
            f"genmodels bf16 whole call / training steps: {steps_share('genmodels-bf16')}"]

if __name__ == "__main__":
    main()
