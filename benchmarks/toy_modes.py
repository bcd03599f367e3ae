"""Modes on the 2-D toys (issue 29's targets): the GAN's and the VAE's vector defaults, and the lecture's plain GAN.

Per model and seed: trains on `--data ring8` (or grid25) with genmodels.train, draws 10,000 samples in the data's
units and prints the modes covered (a mode counts when at least 1% of the samples lie within 3 std of its centre),
the share of high-quality samples (within 3 std of some mode), the samples' mean true log-density (what
`genmodels evaluate RUN` reports as modes_covered, high_quality_share and mean_log_density), the optimizer steps
(D updates; G makes as many at d_steps 1), the milliseconds a step (the epochs' training steps alone, measured in
the same process) and the training seconds (with each epoch's end: picture, evaluation, checkpoint). On a shared
machine the seconds are inflated; compare settings by steps and ms/step.

The rows:
- gan: the defaults on vector data (GAN.for_vectors: models.gan.VECTOR_MODEL) with the toy training settings
  models.gan.TOY_TRAIN (lr, betas, epochs, batch size), given here explicitly.
- vae: the VAE's vector defaults (VAE.for_vectors: models.vae.VECTOR_MODEL), its own training defaults and
  models.vae.TOY_TRAIN's epochs.
- plain-gan: the lecture's GAN (Goodfellow et al. 2014): the same MLPs, the minimax loss, no stabiliser (no moving
  average, no spectral normalisation), the same training settings as gan.

    .venv/bin/python benchmarks/toy_modes.py [--seeds 0 1 2] [--data ring8 grid25] [--models gan vae plain-gan]
        [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from genmodels import build_run_config, load_run, metrics, train
from genmodels.models import gan, vae
from genmodels.runs import draw_samples
from genmodels.toy import TOYS

SAMPLES = 10_000
# family, model settings, training settings, per row name
MODELS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "gan": ("gan", {}, dict(gan.TOY_TRAIN)),
    "vae": ("vae", {}, dict(vae.TOY_TRAIN)),
    "plain-gan": ("gan", {"loss": "minimax", "ema": 0.0, "spectral_norm": False, "arch": "mlp"}, dict(gan.TOY_TRAIN)),
}


def measure(name: str, source: str, seed: int, threads: int, out: Path) -> dict[str, Any]:
    """Train one row's model on `source` with `seed`; its samples' mode metrics and the training seconds."""
    family, model, train_settings = MODELS[name]
    config = build_run_config({"family": family, "model": model, "data": {"source": source},
                               "train": {**train_settings, "seed": seed, "threads": threads}})
    start = time.perf_counter()
    with warnings.catch_warnings():  # a GAN's "D rejects every sample" warning is part of what is measured
        warnings.simplefilter("ignore")
        result = train(config, out, overwrite=True, progress=False)
    seconds = time.perf_counter() - start
    steps = max(r["step"] for r in result.history if "step" in r)
    run = load_run(out)
    x = run.in_units(draw_samples(run, SAMPLES, seed=0).float())
    toy = TOYS[source]
    return {"modes": metrics.modes_covered(x, toy.centre_points, toy.std), "of": len(toy.centres),
            "hq": metrics.high_quality_share(x, toy.centre_points, toy.std),
            "logd": metrics.mean_log_density(x, toy), "steps": steps,
            "ms_step": 1000 * sum(result.epoch_seconds) / steps, "seconds": seconds}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--data", nargs="+", default=["ring8", "grid25"], choices=["ring8", "grid25"])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (1: steadier on a shared machine)")
    p.add_argument("--out", type=Path, default=None, help="folder for the run directories (default: a temp dir)")
    args = p.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="toy_modes_"))
    print(f"{'data':7} {'model':10} {'seed':>4} {'modes':>7} {'high-quality':>12} {'log-density':>11} {'steps':>6} "
          f"{'ms/step':>7} {'seconds':>8}")
    for source in args.data:
        for name in args.models:
            if source != "ring8" and name != "gan":  # the targets name the GAN alone on grid25
                continue
            for seed in args.seeds:
                r = measure(name, source, seed, args.threads, out / f"{source}-{name}-{seed}")
                print(f"{source:7} {name:10} {seed:>4} {r['modes']:>3}/{r['of']:<3} {r['hq']:>12.3f} "
                      f"{r['logd']:>11.2f} {r['steps']:>6} {r['ms_step']:>7.2f} {r['seconds']:>8.1f}", flush=True)


if __name__ == "__main__":
    main()
