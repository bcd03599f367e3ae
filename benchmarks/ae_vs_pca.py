"""A deep autoencoder against PCA at the same code size on Fashion-MNIST (Hinton & Salakhutdinov 2006).

The autoencoder is 784-1000-500-250-30 (ReLU hidden units, linear 30-d code, mirrored
decoder with logistic outputs trained on cross-entropy as Hinton & Salakhutdinov did for
MNIST, Adam with a cosine learning-rate schedule), trained by `genmodels train ae`; PCA keeps 30 components
of the same training split. Both are measured on the 10,000 test images with
`genmodels.evaluation.code_metrics`, the code behind `genmodels evaluate`:

- squared reconstruction error per image, summed over the 784 pixels;
- linear-probe accuracy (logistic regression on standardised codes, fitted on the
  training split) of the two 30-d codes, and of the raw 784 pixels.

Hinton & Salakhutdinov report on MNIST 3.00 for the deep autoencoder against 13.87 for
PCA-30 (ratio 0.22). Targets here: autoencoder error <= 0.5 x PCA-30's, and a code whose
linear probe scores >= 0.80 (raw-pixel logistic regression: 0.842, Xiao et al. 2017).

    .venv/bin/python benchmarks/ae_vs_pca.py [--epochs 150] [--threads 2] [--out runs/bench_ae]
"""

from __future__ import annotations

import argparse
import time

import torch

from genmodels import build_run_config, load_data, train
from genmodels.evaluation import code_metrics
from genmodels.runs import load_run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--probe-train", type=int, default=60_000, help="training images the probes are fitted on")
    p.add_argument("--out", default="runs/bench_ae", help="run directory of the autoencoder (replaced)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    data = load_data("fashion-mnist")
    cfg = build_run_config({
        "family": "ae", "data": {"source": "fashion-mnist"},
        "model": {"hidden": [1000, 500, 250], "latent_dim": 30, "loss": "bce"},
        "train": {"epochs": args.epochs, "lr": args.lr, "lr_schedule": "cosine", "batch_size": args.batch_size,
                  "threads": args.threads},
    })
    t0 = time.perf_counter()
    train(cfg, args.out, overwrite=True, data=data, progress=not args.no_progress)
    train_seconds = time.perf_counter() - t0

    run = load_run(args.out)
    run.__dict__["data"] = data  # already in memory; code_metrics reads run.data
    test = data.test.batch(slice(0, len(data.test)))
    t0 = time.perf_counter()
    m = code_metrics(run, test, probe_train=args.probe_train)
    eval_seconds = time.perf_counter() - t0

    ratio = m["reconstruction_sse"] / m["pca_reconstruction_sse"]
    print(f"\nFashion-MNIST test set, {len(test)} images; probes fitted on {m['probe_train_images']} training images")
    print(f"{'':34}{'squared error / image':>22}{'linear probe':>14}")
    print(f"{'deep AE 784-1000-500-250-30':34}{m['reconstruction_sse']:>22.2f}{m['linear_probe_accuracy']:>14.4f}")
    print(f"{'PCA-30':34}{m['pca_reconstruction_sse']:>22.2f}{m['linear_probe_accuracy_pca']:>14.4f}")
    print(f"{'raw pixels (784-d)':34}{'':>22}{m['linear_probe_accuracy_pixels']:>14.4f}")
    print(f"\nratio AE / PCA error: {ratio:.3f} (target <= 0.5; Hinton & Salakhutdinov on MNIST: 0.22) "
          f"{'MET' if ratio <= 0.5 else 'NOT MET'}")
    probe = m["linear_probe_accuracy"]
    print(f"AE code linear probe: {probe:.4f} (target >= 0.80) {'MET' if probe >= 0.80 else 'NOT MET'}")
    print(f"training {args.epochs} epochs: {train_seconds:.0f} s; evaluation: {eval_seconds:.0f} s; "
          f"threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
