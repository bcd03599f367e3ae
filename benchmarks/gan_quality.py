"""GANs that train by default: the digits GAN exactly as the README's command writes it, and the
Fashion-MNIST zoo's GAN beside the zoo's VAE, over several seeds, each measured in its dataset's own
feature network (genmodels.features) and in pixel space (sharpness: the variance of the Laplacian of
2,000 samples over that of 2,000 test images; 1 is as sharp as the data).

    .venv/bin/python benchmarks/gan_quality.py [--seeds 0 1 2] [--datasets digits fashion-mnist]
        [--out runs/gan-quality]

Prints, per dataset and seed,
    gan_quality DATASET seed S: class_entropy E recall R precision P fid F sharpness H
and for Fashion-MNIST
    gan vs vae DATASET seed S: fid G/V sharpness G/V
then whether the issue's targets hold on every seed. `--datasets idx28` also writes two 28x28 grayscale
IDX folders (the digits scaled up to 28x28, and the first 10,000 training and 2,000 test images of
Fashion-MNIST) and trains `genmodels train gan --data DIR --epochs 30` on each, with every other
setting a default, printing
    idx28 NAME seed S: collapsed C class_entropy E recall R diversity D sharpness H
Each dataset's feature network is trained once into OUT/features-DATASET and reused there; the runs
are retrained every time (their training time is part of the result). About 3 minutes per digits seed
and 15 per Fashion-MNIST seed on two cores.
"""

from __future__ import annotations

import argparse
import math
import re
import shlex
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from genmodels.cli import main as cli
from genmodels.data import Dataset, DataSplits, load_data, write_idx
from genmodels.engine import train
from genmodels.evaluation import evaluate
from genmodels.runs import load_run
from genmodels.zoo import FASHION_MNIST, feature_network

README = Path(__file__).resolve().parent.parent / "README.md"
SAMPLES = 10_000  # for FID, precision/recall and the class histogram (the zoo's number)
TRAIN_MINUTES = 15  # the Fashion-MNIST GAN's budget


def readme_digits_command() -> list[str]:
    """The README's `genmodels train gan --data digits ...` line, as arguments, without its --out."""
    for line in README.read_text().splitlines():
        if re.match(r"genmodels train gan --data digits\b", line.strip()):
            args = shlex.split(line.split("#")[0])[1:]
            if "--out" in args:
                i = args.index("--out")
                del args[i : i + 2]
            return args
    raise SystemExit(f"{README} has no `genmodels train gan --data digits` command")


def features_for(dataset: str, out: Path, splits):
    """The dataset's feature network in OUT/features-DATASET, trained there once (as the zoo does)."""
    return feature_network(splits, out / f"features-{dataset}")


def measure(run_dir: Path, splits, features) -> dict:
    run = load_run(run_dir)
    run.data = splits
    return evaluate(run, importance_samples=1, probe_train=0, parzen_samples=0, features=features,
                    quality_samples=SAMPLES)


def line(dataset: str, seed: int, r: dict) -> str:
    return (f"gan_quality {dataset} seed {seed}: class_entropy {r['class_entropy']:.3f} recall {r['recall']:.3f} "
            f"precision {r['precision']:.3f} fid {r['fid']:.3f} sharpness {r['sharpness']:.3f}")


def digits(seeds: list[int], out: Path) -> bool:
    splits = load_data("digits")
    features = features_for("digits", out, splits)
    command = readme_digits_command()
    print(f"digits: `genmodels {shlex.join(command)} --seed S` (from the README); feature network test accuracy "
          f"{features.accuracy:.3f}; entropy of a uniform class histogram {math.log(features.classes):.3f}")
    met = []
    for seed in seeds:
        run_dir = out / f"digits-gan-{seed}"
        start = time.perf_counter()
        if cli([*command, "--seed", str(seed), "--out", str(run_dir), "--overwrite", "--no-progress"]) != 0:
            raise SystemExit("the README's digits GAN command failed")
        seconds = time.perf_counter() - start
        r = measure(run_dir, splits, features)
        print(line("digits", seed, r) + f"  (trained in {seconds:.0f} s, collapsed {r['collapsed']})", flush=True)
        met.append(r["class_entropy"] >= 2.0 and r["recall"] >= 0.3)
    print(f"digits target (class entropy >= 2.0 and recall >= 0.3): {sum(met)} of {len(met)} seeds")
    return all(met)


def fashion(seeds: list[int], out: Path) -> bool:
    splits = load_data("fashion-mnist")
    features = features_for("fashion-mnist", out, splits)
    print(f"fashion-mnist: the zoo's gan and vae presets; feature network test accuracy {features.accuracy:.3f}")
    met = []
    for seed in seeds:
        results, seconds = {}, {}
        for name in ("gan", "vae"):
            config = FASHION_MNIST[name].config("fashion-mnist")
            config = config.model_copy(update={"train": config.train.model_copy(update={"seed": seed})})
            run_dir = out / f"fashion-{name}-{seed}"
            start = time.perf_counter()
            train(config, run_dir, overwrite=True, progress=False, data=splits)
            seconds[name] = time.perf_counter() - start
            results[name] = measure(run_dir, splits, features)
        gan, vae = results["gan"], results["vae"]
        print(line("fashion-mnist", seed, gan) + f"  (trained in {seconds['gan'] / 60:.1f} min, "
              f"collapsed {gan['collapsed']})")
        print(f"gan vs vae fashion-mnist seed {seed}: fid {gan['fid']:.2f}/{vae['fid']:.2f} "
              f"({gan['fid'] / vae['fid']:.3f}) sharpness {gan['sharpness']:.3f}/{vae['sharpness']:.3f}", flush=True)
        met.append(seconds["gan"] <= TRAIN_MINUTES * 60 and gan["fid"] <= 0.2 * vae["fid"] and gan["recall"] >= 0.6
                   and gan["class_entropy"] >= 2.25 and 0.8 <= gan["sharpness"] <= 1.25
                   and vae["sharpness"] < gan["sharpness"])
    print(f"fashion-mnist target (GAN trained in <= {TRAIN_MINUTES} min, FID <= 0.2x the VAE's, recall >= 0.6, "
          f"class entropy >= 2.25, sharpness in [0.8, 1.25] and above the VAE's): {sum(met)} of {len(met)} seeds")
    return all(met)


def idx_folders(out: Path) -> dict[str, Path]:
    """Two 28x28 grayscale datasets written as IDX folders, as a user would bring their own data."""
    digits, fashion = load_data("digits"), load_data("fashion-mnist")

    def scaled(ds: Dataset) -> Dataset:
        images = F.interpolate(ds.batch(slice(0, len(ds))), size=(28, 28), mode="bilinear", align_corners=False)
        return Dataset(images.clamp(0, 1), ds.labels, ds.name)

    def head(ds: Dataset, n: int) -> Dataset:
        return Dataset(ds.batch(slice(0, n)), ds.labels[:n], ds.name)

    folders = {"digits28": (DataSplits(scaled(digits.train), scaled(digits.test), "digits28")),
               "fashion10k": DataSplits(head(fashion.train, 10_000), head(fashion.test, 2_000), "fashion10k")}
    for name, splits in folders.items():
        write_idx(splits, out / name)
    return {name: out / name for name in folders}


def idx28(seeds: list[int], out: Path) -> bool:
    met = []
    for name, folder in idx_folders(out).items():
        splits = load_data(str(folder))
        features = features_for(name, out, splits)
        for seed in seeds:
            run_dir = out / f"{name}-gan-{seed}"
            start = time.perf_counter()
            if cli(["train", "gan", "--data", str(folder), "--epochs", "30", "--seed", str(seed), "--out", str(run_dir),
                    "--overwrite", "--no-progress"]) != 0:
                raise SystemExit(f"training on {folder} failed")
            seconds = time.perf_counter() - start
            r = measure(run_dir, splits, features)
            print(f"idx28 {name} seed {seed}: collapsed {r['collapsed']} class_entropy {r['class_entropy']:.3f} "
                  f"recall {r['recall']:.3f} diversity {r['diversity']:.3f} sharpness {r['sharpness']:.3f}  "
                  f"(trained in {seconds / 60:.1f} min)", flush=True)
            met.append(not r["collapsed"])
    print(f"idx28 target (no collapse with the defaults and --epochs 30): {sum(met)} of {len(met)} runs")
    return all(met)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--datasets", nargs="+", choices=["digits", "fashion-mnist", "idx28"],
                   default=["digits", "fashion-mnist", "idx28"])
    p.add_argument("--out", type=Path, default=Path("runs/gan-quality"))
    args = p.parse_args()
    torch.manual_seed(0)
    ok = [{"digits": digits, "fashion-mnist": fashion, "idx28": idx28}[d](args.seeds, args.out) for d in args.datasets]
    print("all targets met" if all(ok) else "some targets missed")


if __name__ == "__main__":
    main()
