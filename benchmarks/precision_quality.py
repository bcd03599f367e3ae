"""Does bf16 mixed precision learn as well as fp32? The MLP VAE, the conv VAE and the DCGAN, trained in both.

- MLP VAE (`train vae`, the zoo's Fashion-MNIST preset: 784-512-16, Bernoulli) and conv VAE (`train vae --arch
  conv`, its defaults), each trained --epochs (default 10) in fp32 and in bf16-mixed with the same seed (0),
  then both evaluated in fp32 on the whole test split: the test negative ELBO (one seeded sample of z per image,
  the same draws for both models, `genmodels.engine.evaluate_parts`), in nats per image, and
  (bf16 - fp32) / fp32. The issue's target: within 0.5%.
- DCGAN (`train gan` with its defaults on 28x28 images, the zoo's preset): trained --gan-epochs (default
  --epochs) in fp32 for each of --seeds (default 0 1 2), and in bf16-mixed with the first seed; FID of 10,000
  samples against the test images in the dataset's own feature network (genmodels.features, trained once into
  OUT/features and reused, as the zoo and benchmarks/gan_quality.py do), every model sampled in fp32. The
  target: the bf16 FID within the fp32 seeds' range [min, max].

    .venv/bin/python benchmarks/precision_quality.py [--epochs 10] [--gan-epochs N] [--seeds 0 1 2]
        [--data fashion-mnist] [--images N] [--models mlpvae,convvae,dcgan] [--out runs/precision-quality]
        [--device cpu|cuda]

--images N trains on the first N training images only (a quick check that the script runs; the figures
then mean little). Prints one line per trained run as it ends (with its training seconds: a rough
guide, not a benchmark), then the summary lines:

    mlpvae test -ELBO fp32: X.XX  bf16: Y.YY  relative difference: +Z.ZZ%
    convvae test -ELBO fp32: ...
    dcgan FID fp32 seeds 0,1,2: A, B, C (range R1-R2, spread S)  bf16 seed 0: D  within the fp32 range: yes|no

About an hour on two CPU cores with the defaults: the DCGAN's four 10-epoch runs are most of it. With
--epochs 1 --images 1000 --seeds 0 1 it runs end to end in about 3 minutes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from genmodels import build_run_config, load_data
from genmodels.data import Dataset, DataSplits
from genmodels.engine import evaluate_parts, train
from genmodels.errors import GenmodelsError
from genmodels.evaluation import evaluate
from genmodels.runs import load_run
from genmodels.runtime import resolve_device
from genmodels.zoo import FASHION_MNIST, feature_network

MODELS = ("mlpvae", "convvae", "dcgan")
QUALITY_SAMPLES = 10_000  # FID's samples, the zoo's and benchmarks/gan_quality.py's number
ELBO_TARGET, SEED = 0.005, 0


def config(name: str, source: str, epochs: int, seed: int, precision: str, device: str = "cpu"):
    values = {"mlpvae": {"family": "vae", "model": FASHION_MNIST["vae"].model},
              "convvae": {"family": "vae", "model": {"arch": "conv"}},
              "dcgan": {"family": "gan", "model": FASHION_MNIST["gan"].model}}[name]
    return build_run_config({**values, "data": {"source": source},
                             "train": {"epochs": epochs, "batch_size": 100, "seed": seed, "precision": precision,
                                       "device": device}})


def subset(data: DataSplits, n: int | None) -> DataSplits:
    """The first n training images (all without n); the test split whole, as every figure is measured on it."""
    if n is None:
        return data
    tr = data.train
    return DataSplits(Dataset(tr.images[:n], None if tr.labels is None else tr.labels[:n], f"{tr.name}[:{n}]"),
                      data.test, data.source, data.classes)


def trained(name: str, data: DataSplits, out: Path, epochs: int, seed: int, precision: str, device: str):
    run_dir = out / f"{name}-{precision}-seed{seed}"
    start = time.perf_counter()
    result = train(config(name, data.source, epochs, seed, precision, device), run_dir, overwrite=True,
                   progress=False, data=data)
    print(f"trained {name} {precision} seed {seed}: {epochs} epochs in {time.perf_counter() - start:.0f} s "
          f"({run_dir})", flush=True)
    return result.model, run_dir


def vae_nelbo(name: str, data: DataSplits, out: Path, epochs: int, device: str) -> str:
    found = {}
    for precision in ("fp32", "bf16-mixed"):
        model, _ = trained(name, data, out, epochs, SEED, precision, device)
        # In fp32 for both, with the same seeded noise: the difference is what training in bf16 did.
        found[precision] = evaluate_parts(model, data.test.to(device), 1000, seed=SEED)["nelbo"]
    fp32, bf16 = found["fp32"], found["bf16-mixed"]
    diff = (bf16 - fp32) / abs(fp32)
    return (f"{name} test -ELBO fp32: {fp32:.2f}  bf16: {bf16:.2f}  relative difference: {diff:+.2%}  "
            f"(target within {ELBO_TARGET:.1%}: {'met' if abs(diff) <= ELBO_TARGET else 'NOT met'})")


def dcgan_fid(data: DataSplits, out: Path, epochs: int, seeds: list[int], device: str) -> str:
    features = feature_network(data, out / "features")
    print(f"feature network in {out / 'features'}: test accuracy {features.accuracy:.3f}", flush=True)

    def fid(precision: str, seed: int) -> float:
        _, run_dir = trained("dcgan", data, out, epochs, seed, precision, device)
        run = load_run(run_dir, device)
        run.data = data
        return evaluate(run, importance_samples=1, probe_train=0, parzen_samples=0, features=features,
                        quality_samples=QUALITY_SAMPLES, precision="fp32")["fid"]

    fp32 = [fid("fp32", seed) for seed in seeds]
    bf16 = fid("bf16-mixed", seeds[0])
    low, high = min(fp32), max(fp32)
    return (f"dcgan FID fp32 seeds {','.join(map(str, seeds))}: {', '.join(f'{v:.2f}' for v in fp32)} "
            f"(range {low:.2f}-{high:.2f}, spread {high - low:.2f})  bf16 seed {seeds[0]}: {bf16:.2f}  "
            f"within the fp32 range: {'yes' if low <= bf16 <= high else 'no'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10, help="epochs of each VAE (default 10)")
    ap.add_argument("--gan-epochs", type=int, default=None, help="epochs of each DCGAN (default --epochs)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                    help="the DCGAN's fp32 seeds; bf16 takes the first")
    ap.add_argument("--data", default="fashion-mnist", help="a genmodels data source (default fashion-mnist)")
    ap.add_argument("--images", type=int, default=None, help="train on the first N training images only")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of " + ", ".join(MODELS))
    ap.add_argument("--out", type=Path, default=Path("runs/precision-quality"))
    ap.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N: where every model trains (default cpu)")
    args = ap.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models or any(m not in MODELS for m in models):
        ap.error(f"--models takes a comma-separated subset of {', '.join(MODELS)}")
    try:  # one sentence where there is no such GPU
        where = resolve_device(args.device)
    except GenmodelsError as err:
        raise SystemExit(f"precision_quality.py: {err}") from None
    where = torch.cuda.get_device_name(where) if where.type == "cuda" else "CPU"
    data = subset(load_data(args.data), args.images)
    print(f"{data.source}: {len(data.train)} training and {len(data.test)} test images, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {where}, CPU capability {torch.backends.cpu.get_cpu_capability()}",
          flush=True)
    lines = []
    for name in models:
        if name == "dcgan":
            lines.append(dcgan_fid(data, args.out, args.gan_epochs or args.epochs, args.seeds, args.device))
        else:
            lines.append(vae_nelbo(name, data, args.out, args.epochs, args.device))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
