"""Evaluation speed: the importance-weighted log-likelihood, and FID + precision/recall, each against its matmul floor.

IW log-likelihood: the default MLP VAE (784-512-16, Bernoulli p(x|z)), trained --epochs epochs
through genmodels.train (0: untrained; the time does not depend on the weights), then
`model.evaluate(x, options=EvalOptions(importance_samples=K))` on the first --images Fashion-MNIST test images (float in
[0, 1]). Its floor is the matrix products that evaluation must do, alone: torch.addmm into
preallocated buffers of the same shapes, in the same batches of 100 images and the same chunks of
the K samples as VAE.importance_weighted_bound: the encoder and heads once per image, the ELBO's
decoder pass, and the decoder 16->512->784 on images x K latent samples.

Sample quality: --samples samples of that VAE against the 10,000 test images in the features of
the classifier (genmodels.features) trained --feature-epochs epochs (0: untrained), step by step as
`genmodels evaluate` does it (evaluation.sample_quality): drawing, the samples' features, the real
images' features, FID, precision/recall (k = 3). The whole sample_quality call (it adds KID,
density/coverage and the class histogram) is printed for reference, outside the target. The floor:
the classifier's conv and linear layers alone on the same batches of 1000, the decoder's products
for drawing, FID's covariance products (float64, as the library computes them) and precision/
recall's four N x M distance products in blocks of 1024 rows (as metrics.manifold).

Target (issue 6): each ratio (genmodels / floor) <= 2.0. Floors and genmodels run in one process,
on the same threads, after a short warm-up: the IW evaluation once, between the two halves of its
floor; each sample-quality step once, each of its floors twice, the faster kept (and for the
convolutions the faster of the NCHW and channels-last layouts).

    .venv/bin/python benchmarks/eval_speed.py [--images 10000] [--k 5000] [--samples 10000] [--threads N]

The full run is ~50M decoder passes: 320 s of evaluation and 251 s of floor at 2 threads, about
10 minutes in all (measured on a shared 2-core machine); --images 1000 is a tenth of the IW work,
and every batch of 100 images is the same work.
On a machine shared with other jobs, --threads 1 gives steadier ratios than two threads waiting on
each other. A quick smoke run: --images 200 --k 500 --samples 2000 --epochs 1 --feature-epochs 0.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from genmodels import build_run_config, load_data, train
from genmodels.evaluation import sample_quality
from genmodels.features import FeatureNetwork, train_features
from genmodels.metrics import fid, precision_recall
from genmodels.metrics.manifold import _CHUNK as DISTANCE_ROWS
from genmodels.models import EvalOptions, build_model
from genmodels.runs import Run, draw_samples, load_run


def seconds(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


# -- the floor: a network's conv and linear layers alone ---------------------------------------------
def layer_inputs(net: nn.Module, x: torch.Tensor) -> list[tuple[nn.Module, tuple[int, ...]]]:
    """The Conv2d and Linear layers that net(x) runs, in order, each with the shape of its input."""
    seen, hooks = [], []
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            hooks.append(m.register_forward_hook(lambda mod, inp, _out: seen.append((mod, tuple(inp[0].shape)))))
    with torch.inference_mode():
        net(x)
    for h in hooks:
        h.remove()
    return seen


class Products:
    """The products of a list of layers on preallocated inputs (and outputs, for linear layers)."""

    def __init__(self, layers: list[tuple[nn.Module, tuple[int, ...]]], rows: int,
                 layout: torch.memory_format = torch.contiguous_format):
        self.ops = []
        for mod, shape in layers:
            x = torch.randn(rows, *shape[1:])
            if isinstance(mod, nn.Linear):
                out = torch.empty(rows, mod.out_features)
                self.ops.append(lambda mod=mod, x=x, out=out: torch.addmm(mod.bias, x, mod.weight.T, out=out))
            else:
                x, w = x.contiguous(memory_format=layout), mod.weight.contiguous(memory_format=layout)
                self.ops.append(lambda x=x, w=w, mod=mod: F.conv2d(x, w, mod.bias, mod.stride, mod.padding))

    @torch.inference_mode()
    def __call__(self) -> None:
        for op in self.ops:
            op()


def iw_floor(model, images: int, k: int, batch: int = 100) -> float:
    """Seconds of the products VAE.evaluate(x[:images], k, batch) cannot avoid, in its batches and chunks."""
    x = torch.rand(batch, *model.shape)
    chunk = model.iw_chunk(batch)
    encoder = Products(layer_inputs(model.encoder, x), batch)
    h = model.encoder(x)
    heads = Products([(model.mu_head, tuple(h.shape)), (model.logvar_head, tuple(h.shape))], batch)
    z = torch.randn(batch, model.latent_dim)
    elbo_decoder = Products(layer_inputs(model.decoder, z), batch)
    full = Products(layer_inputs(model.decoder, z), chunk * batch)  # one full chunk of k samples x batch images
    last = Products(layer_inputs(model.decoder, z), (k % chunk) * batch) if k % chunk else None
    t0 = time.perf_counter()
    for _ in range(0, images, batch):
        encoder(), heads(), elbo_decoder()
        for j in range(0, k, chunk):
            (full if k - j >= chunk else last)()
    return time.perf_counter() - t0


@torch.inference_mode()
def distance_floor(n_real: int, n_fake: int, width: int) -> float:
    """Seconds of precision_recall's four distance products: real-real, fake-fake, fake-real, real-fake,
    each an (N, F) @ (F, M) in blocks of DISTANCE_ROWS rows."""
    real, fake = torch.randn(n_real, width), torch.randn(n_fake, width)
    outs = {n: torch.empty(DISTANCE_ROWS, n) for n in {n_real, n_fake}}
    t0 = time.perf_counter()
    for a, b in ((real, real), (fake, fake), (fake, real), (real, fake)):
        for i in range(0, len(a), DISTANCE_ROWS):
            rows = a[i : i + DISTANCE_ROWS]
            torch.mm(rows, b.T, out=outs[len(b)][: len(rows)])
    return time.perf_counter() - t0


@torch.inference_mode()
def fid_floor(n_real: int, n_fake: int, width: int) -> float:
    """Seconds of FID's products in float64: two covariances (F, N) @ (N, F), and the F x F products of
    the matrix square roots (two for sqrt(S1), two for sqrt(S1) S2 sqrt(S1))."""
    real, fake = torch.randn(n_real, width, dtype=torch.float64), torch.randn(n_fake, width, dtype=torch.float64)
    s = torch.randn(width, width, dtype=torch.float64)
    t0 = time.perf_counter()
    real.T @ real, fake.T @ fake
    s @ s @ s, s @ s
    return time.perf_counter() - t0


# -- the two contenders -------------------------------------------------------------------------------
def make_vae(data, epochs: int, tmp: Path) -> Run:
    cfg = build_run_config({"family": "vae", "data": {"source": "fashion-mnist"}, "train": {"epochs": max(epochs, 1)}})
    if epochs > 0:
        train(cfg, tmp / "vae", progress=False, data=data)
        run = load_run(tmp / "vae")
    else:
        run = Run(tmp / "vae", cfg, build_model("vae", cfg.model, data.shape).eval())
    run.data = data  # the cached property: no second load
    return run


def make_features(data, epochs: int, tmp: Path) -> FeatureNetwork:
    if epochs > 0:
        return train_features(data, tmp / "features", epochs=epochs, progress=False)
    cfg = build_run_config({"family": "classifier", "data": {"source": "fashion-mnist"}})
    net = build_model("classifier", cfg.model, data.shape).eval()
    return FeatureNetwork(net, tmp / "features", float("nan"), "untrained")


def row(name: str, ours: float, floor: float | None = None, note: str = "") -> None:
    ratio = f"{ours / floor:>7.2f}" if floor else f"{'':>7}"
    print(f"{name:44}{ours:>10.2f}{floor if floor else float('nan'):>10.2f}{ratio}  {note}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10_000, help="test images for the IW log-likelihood")
    ap.add_argument("--k", type=int, default=5000, help="importance samples per image")
    ap.add_argument("--samples", type=int, default=10_000, help="model samples for FID and precision/recall")
    ap.add_argument("--epochs", type=int, default=1, help="VAE training epochs (0: untrained)")
    ap.add_argument("--feature-epochs", type=int, default=1, help="feature classifier epochs (0: untrained)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--skip", choices=["iw", "quality"], default=None, help="leave one part out")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_data("fashion-mnist")
    print(f"Fashion-MNIST, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"VAE {args.epochs or 'untrained'} epoch(s), features {args.feature_epochs or 'untrained'} epoch(s)")
    with tempfile.TemporaryDirectory() as tmp:
        run = make_vae(data, args.epochs, Path(tmp))
        model = run.model
        print(f"{'':44}{'s':>10}{'floor s':>10}{'ratio':>7}")
        if args.skip != "iw":
            x = data.test.batch(slice(0, args.images))
            model.evaluate(x[:100], options=EvalOptions(importance_samples=min(args.k, 200)))  # warm-up
            iw_floor(model, 100, min(args.k, 200))
            # The floor's first half before the evaluation and its second half after, so that a load
            # drifting during the long run weighs on both sides alike.
            half = len(x) // 200 * 100
            floor = iw_floor(model, half, args.k)
            torch.manual_seed(0)
            ours, res = seconds(lambda: model.evaluate(x, options=EvalOptions(importance_samples=args.k)))
            floor += iw_floor(model, len(x) - half, args.k)
            row(f"IW log-likelihood, {len(x)} images x K={args.k}", ours, floor,
                f"log p(x) = {res['log_likelihood_iw']:.2f} nats, ELBO {res['elbo']:.2f}")
            print(f"ratio IW / floor: {ours / floor:.2f}  (target <= 2.0)")
        if args.skip != "quality":
            quality(run, make_features(data, args.feature_epochs, Path(tmp)), args.samples)


def quality(run: Run, features: FeatureNetwork, n: int) -> None:
    test = run.data.test.batch(slice(0, len(run.data.test)))
    # warm-up of every step on small inputs
    features.features(test[:1000]), draw_samples(run, 1000)
    width = features.model.config.feature_dim
    precision_recall(torch.randn(1100, width), torch.randn(1100, width))

    parts = {}
    parts["draw"], drawn = seconds(lambda: draw_samples(run, n, 0))
    parts["fake features"], fake = seconds(lambda: features.features(drawn))
    parts["real features"], real = seconds(lambda: features.features(test))
    parts["FID"], fid_value = seconds(lambda: fid(real, fake))
    parts["precision/recall"], (p, r) = seconds(lambda: precision_recall(real, fake))

    bs = features.batch_size
    decoder = Products(layer_inputs(run.model.decoder, torch.randn(bs, run.model.latent_dim)), bs)
    # The classifier's convolutions in both layouts, NCHW and channels-last (NHWC); the faster one is the floor.
    nets = [Products(layer_inputs(features.model.body, test[:bs]), bs, layout)
            for layout in (torch.contiguous_format, torch.channels_last)]
    floor_of = {  # each step's floor, measured twice (the first also warms up), the faster kept
        "draw": lambda: seconds(lambda: [decoder() for _ in range(0, n, bs)])[0],
        "fake features": lambda: min(seconds(lambda net=net: [net() for _ in range(0, n, bs)])[0] for net in nets),
        "real features": lambda: min(seconds(lambda net=net: [net() for _ in range(0, len(test), bs)])[0]
                                     for net in nets),
        "FID": lambda: fid_floor(len(real), len(fake), width),
        "precision/recall": lambda: distance_floor(len(real), len(fake), width),
    }
    floors = {name: min(f(), f()) for name, f in floor_of.items()}

    for name in parts:
        row(f"  {name}", parts[name], floors[name])
    ours, floor = sum(parts.values()), sum(floors.values())
    row(f"FID + precision/recall, {n} samples", ours, floor, f"FID {fid_value:.2f}, P {p:.3f}, R {r:.3f}")
    print(f"ratio FID + P/R / floor: {ours / floor:.2f}  (target <= 2.0)")
    whole, _ = seconds(lambda: sample_quality(run, features, n, drawn=None))
    row("whole sample_quality call (reference)", whole, None, "adds KID, density/coverage, class histogram")


if __name__ == "__main__":
    main()
