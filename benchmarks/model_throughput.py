"""Training throughput of the conv VAE, the deep autoencoder and the DCGAN: genmodels' engine against
a minimal hand-written loop of exactly the same model.

Fashion-MNIST, the first --images training images (default all 60,000), batch 100, one epoch:

- convvae: `genmodels train vae --arch conv` with its defaults: encoder Conv2d(1, 32, 4, 2, 1) ReLU
  Conv2d(32, 64, 4, 2, 1) ReLU -> 3136 features, 16-d mean and log-variance heads; decoder
  Linear(16, 3136) ReLU, ConvTranspose2d(64, 32, 4, 2, 1) ReLU ConvTranspose2d(32, 1, 4, 2, 1) -> logits;
  Bernoulli likelihood (cross-entropy on logits summed per image) + analytic KL; Adam lr 1e-3.
- deepae: the deep autoencoder of benchmarks/ae_vs_pca.py, 784-1000-500-250-30 (ReLU, linear code),
  mirrored decoder with logistic outputs, cross-entropy summed per image; Adam lr 1e-3, constant.
- dcgan: `genmodels train gan --arch conv` with its defaults: D Conv2d(1, 64) LeakyReLU(0.2)
  Conv2d(64, 128) BatchNorm LeakyReLU(0.2) Linear(6272, 1); G Linear(100, 6272) BatchNorm1d ReLU,
  ConvTranspose2d(128, 64) BatchNorm ReLU ConvTranspose2d(64, 1) sigmoid; weights from N(0, 0.02);
  per batch one D update (real batch + 100 fresh fakes) and one G update (non-saturating loss,
  100 fresh samples, D frozen), two Adam optimisers lr 2e-4, betas (0.5, 0.999).

Each minimal loop is what a careful user writes by hand (as in benchmarks/vae_throughput.py): the
images as one float tensor in memory, index-slice batches of a randperm, stock torch.optim.Adam,
the same layers, loss, batch size, learning rate and betas. On the CPU the stock Adam is the
per-parameter loop (torch picks neither foreach nor fused for CPU tensors); genmodels' is the fused
kernel, the main difference in the work of a step besides genmodels' per-batch uint8 -> float
conversion and its logged parts (for the GAN: D(x), D(G(z)) and both gradient norms). genmodels is timed by its own
`epoch_seconds` (the epoch's training steps; evaluation, checkpoint and images come after). Each
contender runs in a fresh process (genmodels' allocator tuning is process-wide), alternating, on
the same threads; the best of --repeats epochs of each is reported. Both run one epoch, so the
time includes the first steps' warm-up on both sides.

genmodels is also timed with `train.precision = "bf16-mixed"` (the forward under torch.autocast(bfloat16),
float32 weights and Adam), and each model's summary line is followed by

    MODEL bf16 / fp32: X.XX

(genmodels' bf16 throughput over its fp32 throughput, from the same run; the issue's target (#18): >= 1.3
for the conv VAE and the DCGAN). --channels-last also times both precisions with `train.channels_last`
(convolutions in NHWC layout) and prints `MODEL fp32 channels-last / fp32: X.XX` and
`MODEL bf16 channels-last / bf16: X.XX`: the measurement that decides whether channels-last pays.

--check builds each genmodels model, copies its weights into the hand-written one, and takes two
steps on the same two batches with the same random noise through genmodels' own train_step and
optimisers and through the hand-written step: the losses must agree to LOSS_TOLERANCE (relative),
and so must the weights afterwards, to WEIGHT_TOLERANCE in |w_genmodels - w_minimal| / |w_genmodels -
w_start| (the DCGAN's is the largest, about 1e-4: its biases right before BatchNorm have a zero
gradient in exact arithmetic, and Adam turns the rounding noise of that gradient into steps of about
lr). A model beyond either exits with status 1, naming it; --check-only stops after the check
(tests/test_benchmarks.py runs it on the bundled digits scaled to 28x28). --data: any genmodels data
source of 28x28 grey images, for the check and the timing.

    .venv/bin/python benchmarks/model_throughput.py [--models convvae,deepae,dcgan] [--images 60000]
        [--repeats 3] [--threads N] [--check | --check-only] [--compile] [--channels-last] [--data fashion-mnist]
        [--device cpu|cuda]

--device cuda trains both sides on the GPU (the timings end with a torch.cuda.synchronize(); --check
stays on the CPU).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from _alternate import run_alternating  # benchmarks/_alternate.py
from genmodels import build_run_config, load_data, train
from genmodels.data import Dataset, DataSplits
from genmodels.errors import GenmodelsError
from genmodels.runtime import resolve_device

TARGET = 1.2  # issue 6: genmodels' images/s at least 1.2 x the minimal loop's
LOSS_TOLERANCE = 1e-6  # --check: largest relative difference of the two sides' losses (docs/benchmarks.md)
WEIGHT_TOLERANCE = 1e-3  # --check: |w_genmodels - w_minimal| / |w_genmodels - w_start|; the DCGAN measures 1e-4

# genmodels' run config of each model; the minimal loops read lr and betas from it too.
CONFIGS: dict[str, dict] = {
    "convvae": {"family": "vae", "model": {"arch": "conv"}},
    "deepae": {"family": "ae", "model": {"hidden": [1000, 500, 250], "latent_dim": 30, "loss": "bce"},
               "train": {"lr": 1e-3, "lr_schedule": "constant"}},
    # ema 0: the minimal loop keeps no moving average of G, so both sides time the same step.
    "dcgan": {"family": "gan", "model": {"arch": "conv", "ema": 0.0}},
}


# genmodels' contenders: kind -> (train.compile, train.precision, train.channels_last).
GENMODELS = {"genmodels": (False, "fp32", False), "genmodels-bf16": (False, "bf16-mixed", False),
             "genmodels-cl": (False, "fp32", True), "genmodels-bf16-cl": (False, "bf16-mixed", True),
             "genmodels-compile": (True, "fp32", False)}


def run_config(name: str, epochs: int = 1, compile_: bool = False, precision: str = "fp32",
               channels_last: bool = False):
    values = CONFIGS[name]
    train_values = {**values.get("train", {}), "epochs": epochs, "batch_size": 100, "compile": compile_,
                    "precision": precision, "channels_last": channels_last}
    return build_run_config({**values, "train": train_values})


@dataclass
class Minimal:
    """A hand-written model: its modules (for copying weights in), one training step, and which of
    genmodels' state_dict entries each module prefix takes its weights from."""

    net: nn.Module
    step: Callable[[torch.Tensor], dict[str, torch.Tensor]]  # (B, 1, 28, 28) -> the step's losses, detached
    weights_from: dict[str, str]  # hand-written prefix -> genmodels prefix


def minimal_convvae(lr: float, betas: tuple[float, float]) -> Minimal:
    enc = nn.Sequential(nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(), nn.Flatten())
    mu_head, lv_head = nn.Linear(64 * 7 * 7, 16), nn.Linear(64 * 7 * 7, 16)
    dec = nn.Sequential(nn.Linear(16, 64 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (64, 7, 7)),
                        nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(32, 1, 4, 2, 1))
    net = nn.ModuleDict({"enc": enc, "mu": mu_head, "lv": lv_head, "dec": dec})
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=betas)

    def step(x):
        h = enc(x)
        mu, logvar = mu_head(h), lv_head(h)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        rec = F.binary_cross_entropy_with_logits(dec(z), x, reduction="none").sum((1, 2, 3))
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)
        loss = (rec + kl).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.detach()}

    return Minimal(net, step, {"enc.0.": "encoder.net.0.", "enc.2.": "encoder.net.2.", "mu.": "mu_head.",
                               "lv.": "logvar_head.", "dec.0.": "decoder.fc.0.", "dec.3.": "decoder.ups.0.",
                               "dec.5.": "decoder.ups.1."})


def minimal_deepae(lr: float, betas: tuple[float, float]) -> Minimal:
    enc = nn.Sequential(nn.Linear(784, 1000), nn.ReLU(), nn.Linear(1000, 500), nn.ReLU(), nn.Linear(500, 250),
                        nn.ReLU(), nn.Linear(250, 30))
    dec = nn.Sequential(nn.Linear(30, 250), nn.ReLU(), nn.Linear(250, 500), nn.ReLU(), nn.Linear(500, 1000),
                        nn.ReLU(), nn.Linear(1000, 784))
    net = nn.ModuleDict({"enc": enc, "dec": dec})
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=betas)

    def step(x):
        x = x.flatten(1)  # (B, 784), a view
        loss = F.binary_cross_entropy_with_logits(dec(enc(x)), x, reduction="none").sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.detach()}

    pairs = {f"enc.{i}.": f"encoder.0.1.{i}." for i in (0, 2, 4)} | {"enc.6.": "encoder.1."}
    return Minimal(net, step, pairs | {f"dec.{i}.": f"decoder.0.{i}." for i in (0, 2, 4, 6)})


def _dcgan_init(m: nn.Module) -> None:  # Radford et al. 2015: N(0, 0.02) weights, BatchNorm scales N(1, 0.02)
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def minimal_dcgan(lr: float, betas: tuple[float, float]) -> Minimal:
    D = nn.Sequential(nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128),
                      nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(128 * 7 * 7, 1), nn.Flatten(0))
    G = nn.Sequential(nn.Linear(100, 128 * 7 * 7), nn.BatchNorm1d(128 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (128, 7, 7)),
                      nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
                      nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Sigmoid())
    net = nn.ModuleDict({"D": D, "G": G})
    net.apply(_dcgan_init)
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)

    def step(x):
        b = x.shape[0]
        with torch.no_grad():
            fake = G(torch.randn(b, 100, device=x.device))
        real_logits, fake_logits = D(x), D(fake)
        # -log D(x) - log(1 - D(G(z))) on logits: log D = -softplus(-l), log(1 - D) = -softplus(l)
        d_loss = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)) \
            + F.softplus(fake_logits).mean()
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        D.requires_grad_(False)  # G's step: no gradient for D's weights (genmodels does the same)
        logits = D(G(torch.randn(b, 100, device=x.device)))
        g_loss = F.softplus(-logits).mean()  # non-saturating: -log D(G(z))
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        D.requires_grad_(True)
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}

    return Minimal(net, step, {"D.0.": "discriminator.0.net.0.", "D.2.": "discriminator.0.net.2.",
                               "D.3.": "discriminator.0.net.3.", "D.6.": "discriminator.1.",
                               "G.0.": "generator.fc.0.", "G.1.": "generator.fc.1.", "G.4.": "generator.ups.0.",
                               "G.5.": "generator.norms.0.", "G.7.": "generator.ups.1."})


MINIMAL = {"convvae": minimal_convvae, "deepae": minimal_deepae, "dcgan": minimal_dcgan}


def synchronize(device: str) -> None:
    """Wait for the GPU's queued work, so a timing covers it (nothing on the CPU)."""
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def minimal_loop(name: str, x_train: torch.Tensor, seed: int = 0, device: str = "cpu") -> float:
    """One epoch of the hand-written loop; returns its seconds."""
    torch.manual_seed(seed)
    tc = run_config(name).train
    mini = MINIMAL[name](tc.lr, tc.betas)
    mini.net.to(device)  # the same Parameter objects, moved: the optimizer (no state yet) keeps them
    x_all = x_train.to(device).float() / 255  # (N, 1, 28, 28) float32 in [0, 1], once
    n = len(x_all)
    synchronize(device)
    t0 = time.perf_counter()
    perm = torch.randperm(n, device=device)
    for i in range(0, n, 100):
        mini.step(x_all[perm[i : i + 100]])
    synchronize(device)
    return time.perf_counter() - t0


def subset(data: DataSplits, n: int) -> DataSplits:
    """The first n training images (a view, nothing copied); the test split cut to at most n images,
    since only the untimed end-of-training evaluation reads it."""
    tr, te = data.train, data.test
    m = min(n, len(te))

    def labels(d, k):
        return None if d.labels is None else d.labels[:k]

    return DataSplits(Dataset(tr.images[:n], labels(tr, n), f"{tr.name}[:{n}]"),
                      Dataset(te.images[:m], labels(te, m), f"{te.name}[:{m}]"), data.source)


def genmodels_epoch(name: str, data: DataSplits, kind: str = "genmodels", device: str = "cpu") -> float:
    """Seconds of genmodels' training steps in one epoch (result.epoch_seconds) for a GENMODELS kind; with
    train.compile timed in its second epoch, as the first pays for the compilation."""
    compile_, precision, channels_last = GENMODELS[kind]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = run_config(name, epochs=2 if compile_ else 1, compile_=compile_, precision=precision,
                         channels_last=channels_last)
        cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"device": device})})
        result = train(cfg, f"{tmp}/run", progress=False, data=data)
    return result.epoch_seconds[-1]


def matched(src: nn.Module, dst: Minimal) -> dict[str, torch.Tensor]:
    """genmodels' state_dict entries (weights, BatchNorm buffers) under the hand-written modules' keys,
    every entry of both sides accounted for and of the same shape."""
    src_state, out = src.state_dict(), {}
    for key, value in dst.net.state_dict().items():
        prefix = next(p for p in dst.weights_from if key.startswith(p))
        other = src_state[dst.weights_from[prefix] + key[len(prefix):]]
        assert other.shape == value.shape, (key, other.shape, value.shape)
        out[key] = other
    assert len(out) == len([k for k in src_state if k != "d_updates"]), "unmatched genmodels entries"
    return out


def check(name: str, images: torch.Tensor) -> tuple[str, bool]:
    """Two steps on the same batches and noise, genmodels' train_step against the hand-written step: the
    figures in words, and whether both are within LOSS_TOLERANCE and WEIGHT_TOLERANCE."""
    from genmodels.data import Batch
    from genmodels.models import build_model
    from genmodels.optim import StepContext

    cfg = run_config(name)
    torch.manual_seed(0)
    model = build_model(cfg.family, cfg.model, (1, 28, 28))
    ctx = StepContext(model, model.make_optimizers(cfg.train, torch.device("cpu")))
    mini = MINIMAL[name](cfg.train.lr, cfg.train.betas)
    start = {k: v.clone() for k, v in matched(model, mini).items()}
    mini.net.load_state_dict(start)
    loss_diff = 0.0
    for s in range(2):
        x = images[s * 100 : (s + 1) * 100].float() / 255
        torch.manual_seed(100 + s)
        ours = model.train_step(Batch(x), ctx)
        torch.manual_seed(100 + s)
        theirs = mini.step(x)
        loss_diff = max(loss_diff, *(abs(ours[k] - v).item() / max(1.0, abs(v).item()) for k, v in theirs.items()))
    # How far the two sides' weights drifted apart, against how far the weights moved: Adam turns the
    # rounding noise of a gradient that is zero in exact arithmetic (a bias right before BatchNorm) into
    # full lr-sized steps, so single entries may differ by ~lr while the updates as a whole agree.
    mini_state, apart, moved = mini.net.state_dict(), 0.0, 0.0
    for k, v in matched(model, mini).items():
        if v.is_floating_point():
            apart += (v.double() - mini_state[k].double()).pow(2).sum().item()
            moved += (v.double() - start[k].double()).pow(2).sum().item()
    losses = ", ".join(f"{k} {v.item():.4f}" for k, v in theirs.items())
    weights = (apart / moved) ** 0.5
    ok = loss_diff <= LOSS_TOLERANCE and weights <= WEIGHT_TOLERANCE  # False for NaN too
    return (f"{name}: step 2 {losses}; largest relative loss difference {loss_diff:.1e} (at most {LOSS_TOLERANCE:g}); "
            f"|w_genmodels - w_minimal| / |w_genmodels - w_start| after 2 steps {weights:.1e} "
            f"(at most {WEIGHT_TOLERANCE:g})"), ok


def worker(kind: str, name: str, n: int, threads: int | None, source: str, device: str = "cpu") -> None:
    if threads:
        torch.set_num_threads(threads)
    data = subset(load_data(source), n)
    if kind == "minimal":
        seconds = minimal_loop(name, data.train.images, device=device)
    else:
        seconds = genmodels_epoch(name, data, kind, device)
    print(json.dumps({"epoch": seconds}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MINIMAL), help="comma-separated subset of " + ", ".join(MINIMAL))
    ap.add_argument("--images", type=int, default=60_000, help="training images used (the first N)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--check", action="store_true", help="first check that both sides compute the same step "
                                                         "(exit status 1 if they do not)")
    ap.add_argument("--check-only", action="store_true", help="the check alone, no timing")
    ap.add_argument("--data", default="fashion-mnist", help="28x28 grey images: any genmodels data source")
    ap.add_argument("--compile", action="store_true", help="also time genmodels with train.compile (torch.compile)")
    ap.add_argument("--channels-last", action="store_true",
                    help="also time genmodels with train.channels_last, in fp32 and in bf16")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N: where both sides train (default cpu)")
    ap.add_argument("--worker", choices=["minimal", *GENMODELS], help=argparse.SUPPRESS)
    args = ap.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MINIMAL]
    if unknown or not models:
        ap.error(f"unknown model(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(MINIMAL)}")
    if args.worker:
        return worker(args.worker, models[0], args.images, args.threads, args.data, args.device)
    try:  # one sentence, before any worker starts, where there is no such GPU
        resolve_device(args.device)
    except GenmodelsError as err:
        sys.exit(f"model_throughput.py: {err}")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.check or args.check_only:
        images = load_data(args.data).train.images
        failed = []
        for name in models:
            line, ok = check(name, images)
            print("check", line if ok else "FAILED " + line)
            failed += [] if ok else [name]
        if failed:
            sys.exit(f"--check: genmodels' step differs from the hand-written one for {', '.join(failed)} (above).")
        if args.check_only:
            return
    n = min(args.images, 60_000)
    print(f"{args.data} train, first {n} images, batch 100, one epoch, torch {torch.__version__}, "
          f"{args.threads or torch.get_num_threads()} threads, "
          f"{torch.cuda.get_device_name(args.device) if args.device.startswith('cuda') else 'CPU'}, "
          f"best of {args.repeats}")
    print(f"{'model':10}{'minimal img/s':>15}{'genmodels img/s':>17}{'ratio':>8}   target"
          + (f"{'compiled img/s':>17}{'ratio':>8}" if args.compile else ""))
    for name in models:
        kinds = (["minimal", "genmodels", "genmodels-bf16"] + ["genmodels-cl", "genmodels-bf16-cl"] * args.channels_last
                 + ["genmodels-compile"] * args.compile)
        threads = ["--threads", str(args.threads)] if args.threads else []
        results = run_alternating({kind: [sys.executable, __file__, "--worker", kind, "--models", name,
                                          "--images", str(n), "--data", args.data, "--device", args.device,
                                          *threads] for kind in kinds},
                                  args.repeats)
        runs = {kind: [r["epoch"] for r in rs] for kind, rs in results.items()}
        ref, ours = min(runs["minimal"]), min(runs["genmodels"])
        ratio = ref / ours  # genmodels images/s over the minimal loop's
        verdict = "MET" if ratio >= TARGET else "NOT MET"
        line = f"{name:10}{n / ref:>15.0f}{n / ours:>17.0f}{ratio:>8.2f}   >= {TARGET} {verdict}"
        if args.compile:
            compiled = min(runs["genmodels-compile"])
            line += f"{n / compiled:>10.0f}{ref / compiled:>8.2f}"
        print(line, flush=True)
        best = {kind: min(seconds) for kind, seconds in runs.items()}
        print(f"{name} bf16 / fp32: {best['genmodels'] / best['genmodels-bf16']:.2f}", flush=True)
        if args.channels_last:
            print(f"{name} fp32 channels-last / fp32: {best['genmodels'] / best['genmodels-cl']:.2f}")
            print(f"{name} bf16 channels-last / bf16: {best['genmodels-bf16'] / best['genmodels-bf16-cl']:.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
