"""The zoo on Fashion-MNIST: every family with its fashion-mnist preset (genmodels.zoo.PRESETS),
trained, evaluated and compared, with each model's training time.

It checks the lecture's claim "GAN samples are sharper than VAE samples" with the sample-quality
metrics in the zoo's own feature space: a sharper, more realistic sample set has the lower FID
and the higher precision (Kynkaanniemi et al. 2019: the fraction of samples that fall on the data
manifold). The answer is printed as measured, whichever way it goes.

    .venv/bin/python benchmarks/zoo_fashion.py [--out runs/zoo-fashion] [--threads N]

A fresh --out trains everything (tens of minutes on two CPU cores); an existing one reuses the
finished runs, so their training times are not measured again.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from genmodels.zoo import run_zoo

COLUMNS = ["train_seconds", "reconstruction_sse", "linear_probe_accuracy", "log_likelihood_iw",
           "parzen_log_likelihood", "fid", "kid", "precision", "recall", "density", "coverage", "class_entropy"]


def _cell(v) -> str:
    return "-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def real_image_floor(out: Path, n: int = 10_000) -> dict:
    """The same sample-quality metrics with n real training images in place of model samples: what a
    perfect generator would score against the test images in the zoo's feature space."""
    from genmodels.evaluation import sample_quality, seeded_rows
    from genmodels.features import load_features
    from genmodels.runs import load_run

    run = load_run(out / "vae")  # any run of the zoo: it gives the data and the test split
    features = load_features(out / "features", run.data)
    real = run.data.train.batch(seeded_rows(len(run.data.train), n, 0))
    return sample_quality(run, features, n, drawn=real)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/zoo-fashion")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    report, results = run_zoo("fashion-mnist", args.out, progress=not args.no_progress)
    total = time.perf_counter() - start

    print(f"\nFashion-MNIST zoo, {torch.get_num_threads()} threads, {total / 60:.1f} min in all; report: {report}")
    print("| run | " + " | ".join(COLUMNS) + " |")
    print("| --- |" + " ---: |" * len(COLUMNS))
    for name, r in results.items():
        print(f"| {name} | " + " | ".join(_cell(r.get(c)) for c in COLUMNS) + " |")
    floor = real_image_floor(Path(args.out))
    print("| real training images (the floor) | - | - | - | - | - | " + " | ".join(
        _cell(floor.get(c)) for c in COLUMNS[5:]) + " |")
    gan, vae = results["gan"], results["vae"]
    if "fid" in gan and "fid" in vae:
        by_fid = gan["fid"] < vae["fid"]
        by_precision = gan["precision"] > vae["precision"]
        print(f"\n'GAN samples are sharper than VAE samples': FID {gan['fid']:.4g} (GAN) vs {vae['fid']:.4g} (VAE): "
              f"{'holds' if by_fid else 'does not hold'}; precision {gan['precision']:.4g} vs {vae['precision']:.4g}: "
              f"{'holds' if by_precision else 'does not hold'}")


if __name__ == "__main__":
    main()
