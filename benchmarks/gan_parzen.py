"""Parzen-window log-likelihood on Fashion-MNIST: a GAN and a VAE, each with its default preset, beside
the same estimate with 10,000 real training images as the kernel centres (the estimator's ceiling).

Both models are trained here with `genmodels.train` and evaluated with `genmodels.evaluation.parzen`, exactly
what `genmodels evaluate RUN --parzen-samples N` reports: sigma chosen from 10 values log-spaced in
[0.1, 1] on 1,000 seeded training images, the mean log-density (nats per image) of the 10,000 test
images with its standard error. The real-image row uses training images other than those 1,000.
Not comparable with Goodfellow et al. 2014's MNIST numbers (other dataset); see the README for the
estimator's weaknesses (Theis et al. 2016).

    .venv/bin/python benchmarks/gan_parzen.py [--gan-epochs 5] [--vae-epochs 5] [--samples 10000] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from genmodels import build_run_config, load_data, train
from genmodels.evaluation import parzen, train_validation_images
from genmodels.metrics import parzen_estimate
from genmodels.runs import load_run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--gan-epochs", type=int, default=5)
    p.add_argument("--vae-epochs", type=int, default=5)
    p.add_argument("--gan-arch", default="mlp", help="mlp | conv")
    p.add_argument("--samples", type=int, default=10000, help="model samples (and real images) as kernel centres")
    p.add_argument("--validation", type=int, default=1000, help="training images that choose sigma")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None, help="folder for the two run directories (default: a temp dir)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = args.out or Path(tempfile.mkdtemp(prefix="gan_parzen_"))
    data = load_data("fashion-mnist")
    rows = []

    # The ceiling: real training images (not the validation ones) as the samples.
    pick = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(0))
    real = data.train.batch(pick[args.validation : args.validation + args.samples])
    x_valid = train_validation_images(data.train, args.validation, 0)
    x_test = data.test.batch(slice(0, len(data.test)))
    t0 = time.perf_counter()
    res = parzen_estimate(real, x_valid, x_test)
    rows.append(("real training images", "-", "-", res.as_dict(), time.perf_counter() - t0))

    presets = {"gan": ({"arch": args.gan_arch}, args.gan_epochs), "vae": ({}, args.vae_epochs)}
    for family, (model, epochs) in presets.items():
        cfg = build_run_config({"family": family, "model": model, "data": {"source": "fashion-mnist"},
                                "train": {"epochs": epochs, "threads": args.threads}})
        t0 = time.perf_counter()
        train(cfg, out / family, overwrite=True, progress=False, data=data)
        seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = parzen(load_run(out / family), args.samples, seed=0, validation=args.validation)
        label = f"{family} ({model.get('arch', 'mlp')}, default preset)"
        rows.append((label, str(epochs), f"{seconds:.0f}", res, time.perf_counter() - t0))
        print(f"{label}: trained in {seconds:.0f} s, run directory {out / family}", flush=True)

    print(f"\nParzen-window log-likelihood of the {len(x_test)} Fashion-MNIST test images, nats per image "
          f"({args.samples} kernel centres, sigma chosen on {len(x_valid)} training images; "
          f"torch threads {args.threads})\n")
    print("| kernel centres | epochs | train s | sigma | log-likelihood | Parzen s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, epochs, seconds, r, ps in rows:
        print(f"| {label} | {epochs} | {seconds} | {r['parzen_sigma']:.3f} | "
              f"{r['parzen_log_likelihood']:.1f} ± {r['parzen_log_likelihood_stderr']:.1f} | {ps:.0f} |")


if __name__ == "__main__":
    main()
