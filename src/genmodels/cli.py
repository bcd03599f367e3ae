"""The `genmodels` command: parsing only; every subcommand calls the library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import GenmodelsError, TrainingInterrupted

def widths(text: str) -> list[int]:
    """'512,256' -> [512, 256]; '' -> [] (no hidden layer)."""
    return [int(v) for v in text.split(",") if v]


# flag -> (config section, key, type, help); None defaults mean "not given", so a --config file wins.
COMMON_TRAIN_FLAGS = {
    "--data": ("data", "source", str, "digits | fashion-mnist | mnist | path to an IDX folder, .npy/.npz or image folder"),
    "--data-dir": ("data", "data_dir", str, "folder of IDX files (fashion-mnist defaults to /usr/share/datasets/fashion-mnist)"),
    "--epochs": ("train", "epochs", int, "passes over the training split (default 20)"),
    "--batch-size": ("train", "batch_size", int, "images per step (default 100)"),
    "--lr": ("train", "lr", float, "Adam learning rate (default 1e-3)"),
    "--lr-schedule": ("train", "lr_schedule", str, "constant | cosine (annealed to 0 over the run; default constant)"),
    "--betas": ("train", "betas", lambda s: tuple(float(v) for v in s.split(",")), "Adam betas, e.g. 0.5,0.999 (default 0.9,0.999; gan 0.5,0.999)"),
    "--seed": ("train", "seed", int, "seed for weights, batch order and noise (default 0)"),
    "--grad-clip": ("train", "grad_clip", float, "clip each optimizer's gradient norm to this (default: no clipping)"),
    "--device": ("train", "device", str, "cpu | cuda | cuda:N | auto (default cpu)"),
    "--threads": ("train", "threads", int, "torch CPU threads (default: one per core)"),
}
VAE_FLAGS = {
    "--arch": ("model", "arch", str, "mlp | conv (default mlp)"),
    "--latent-dim": ("model", "latent_dim", int, "size of z (default 16)"),
    "--hidden": ("model", "hidden", widths, "MLP hidden widths, e.g. 512,256"),
    "--channels": ("model", "channels", widths, "conv channels, e.g. 32,64"),
    "--likelihood": ("model", "likelihood", str, "bernoulli | gaussian (default bernoulli)"),
    "--beta": ("model", "beta", float, "weight of the KL term (default 1)"),
    "--gaussian-std": ("model", "gaussian_std", float, "std of the gaussian likelihood (default 1)"),
}
AE_FLAGS = {
    "--arch": VAE_FLAGS["--arch"],
    "--latent-dim": ("model", "latent_dim", int, "code size, under or over the input size (default 30)"),
    "--hidden": VAE_FLAGS["--hidden"],
    "--channels": VAE_FLAGS["--channels"],
    "--code-activation": ("model", "code_activation", str, "linear | sigmoid | relu (default linear)"),
    "--loss": ("model", "loss", str, "mse | bce (default mse)"),
    "--weight-decay": ("model", "weight_decay", float, "beta of beta * ||w||^2 (default 0)"),
    "--corrupt": ("model", "corrupt", str, "denoising corruption, repeatable: mask:NU, gauss:SIGMA, saltpepper:P"),
    "--contractive": ("model", "contractive", float, "lambda of lambda * ||J_f(x)||_F^2 (default 0)"),
    "--contractive-method": ("model", "contractive_method", str, "auto | exact | projection (default auto)"),
    "--sparse-l1": ("model", "sparse_l1", float, "weight of the L1 penalty on the code (default 0)"),
    "--sparse-kl": ("model", "sparse_kl", float, "beta of the KL sparsity penalty; needs sigmoid codes (default 0)"),
    "--sparse-rho": ("model", "sparse_rho", float, "target mean activation rho (default 0.05)"),
}
GAN_FLAGS = {
    "--arch": ("model", "arch", str, "mlp | conv (DCGAN-style) (default mlp)"),
    "--latent-dim": ("model", "latent_dim", int, "size of z (default 100)"),
    "--hidden": ("model", "hidden", widths, "MLP widths of D, image side first; G mirrors them (default 512,256)"),
    "--channels": ("model", "channels", widths, "conv channels of D, image side first; G mirrors them (default 64,128)"),
    "--prior": ("model", "prior", str, "normal | uniform (on [-1, 1]) (default normal)"),
    "--loss": ("model", "loss", str, "generator loss: minimax | non-saturating (default non-saturating)"),
    "--d-steps": ("model", "d_steps", int, "k discriminator updates per generator update (default 1)"),
    "--label-smoothing": ("model", "label_smoothing", float, "one-sided: real target 1 - this, in [0, 1) (default 0)"),
    "--lr-d": ("model", "lr_d", float, "discriminator learning rate (default: --lr)"),
}
SDAE_FLAGS = {
    "--layers": ("model", "layers", widths, "layer widths, input side first; the last is the code (default 1000,500,250,30)"),
    "--activation": ("model", "activation", str, "hidden units: sigmoid | relu (default sigmoid)"),
    "--code-activation": AE_FLAGS["--code-activation"],
    "--corrupt": ("model", "corrupt", str, "corruption of each layer's input in pretraining, repeatable (default mask:0.25)"),
    "--pretrain-epochs": ("model", "pretrain_epochs", int, "pretraining epochs per layer, before the --epochs of fine-tuning (default 5)"),
    "--loss": AE_FLAGS["--loss"],
    "--finetune": ("model", "finetune", str, "reconstruction (unrolled autoencoder) | supervised (softmax head on labels)"),
    "--classes": ("model", "classes", int, "classes of the supervised head (default 10)"),
}
CLASSIFIER_FLAGS = {
    "--arch": ("model", "arch", str, "auto | conv | mlp (default auto: conv for images of 16 px or more)"),
    "--channels": ("model", "channels", widths, "conv channels, 3x3 conv + max-pool each (default 32,64)"),
    "--hidden": ("model", "hidden", widths, "mlp hidden widths before the feature layer (default 256)"),
    "--feature-dim": ("model", "feature_dim", int, "width of the penultimate layer, the features (default 128)"),
    "--classes": ("model", "classes", int, "softmax outputs (default: the data's number of classes)"),
}
PCA_FLAGS = {"--latent-dim": ("model", "latent_dim", int, "number of principal components (default 30)")}
FAMILY_HELP = {"vae": "variational autoencoder", "ae": "autoencoder, optionally denoising, contractive, sparse, weight-decayed",
               "sdae": "stacked denoising autoencoder: layer-wise pretraining, then fine-tuning",
               "pca": "PCA, the linear autoencoder baseline (solved in one pass)",
               "gan": "generative adversarial network (MLP or DCGAN-style)"}
FAMILY_FLAGS = {"vae": VAE_FLAGS, "ae": AE_FLAGS, "sdae": SDAE_FLAGS, "pca": PCA_FLAGS, "gan": GAN_FLAGS}
FAMILY_SWITCHES = {"vae": {"--binarize": "dynamic binarisation of the data (bernoulli only)",
                           "--learn-std": "learn the gaussian likelihood's std per pixel"}}
TRAIN_SWITCHES = {"--compile": "torch.compile the model for the training steps (opt-in: a compile costs "
                               "time up front; see the README's Performance section)"}
REPEATABLE = {"--corrupt"}  # given several times, the values compose in order


def _add_flags(p: argparse.ArgumentParser, flags: dict) -> None:
    for flag, (_, _, typ, help_) in flags.items():
        p.add_argument(flag, type=typ, default=None, help=help_, action="append" if flag in REPEATABLE else "store")


def _collect(args: argparse.Namespace, flags: dict) -> dict:
    values: dict = {}
    for flag, (section, key, _, _) in flags.items():
        values.setdefault(section, {})[key] = getattr(args, flag[2:].replace("-", "_"))
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genmodels", description="Train, sample, evaluate and compare deep generative models.")
    sub = p.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model into a run directory")
    fam = train.add_subparsers(dest="family", required=True)
    for family, flags in FAMILY_FLAGS.items():
        f = fam.add_parser(family, help=FAMILY_HELP[family])
        f.add_argument("--out", required=True, type=Path, help="run directory to write")
        f.add_argument("--config", type=Path, help="TOML file with [model], [data], [train] tables; flags override it")
        f.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint, with its saved config (--epochs may extend it)")
        f.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
        f.add_argument("--no-progress", action="store_true", help="no progress bar")
        _add_flags(f, COMMON_TRAIN_FLAGS)
        _add_flags(f, flags)
        for switch, help_ in {**TRAIN_SWITCHES, **FAMILY_SWITCHES.get(family, {})}.items():
            f.add_argument(switch, action="store_const", const=True, default=None, help=help_)

    feats = sub.add_parser("features", help="the feature network of FID, KID, precision/recall, density/coverage")
    f = feats.add_subparsers(dest="features_command", required=True).add_parser(
        "train", help="train the feature classifier of a dataset (default --out runs/features/<data>)")
    f.add_argument("--out", type=Path, default=None, help="directory to write (default runs/features/<data source name>)")
    f.add_argument("--overwrite", action="store_true", help="replace the feature network already in --out")
    f.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_flags(f, {**COMMON_TRAIN_FLAGS, "--epochs": ("train", "epochs", int, "passes over the training split (default 5)")})
    _add_flags(f, CLASSIFIER_FLAGS)

    conv = sub.add_parser("data", help="data tools").add_subparsers(dest="data_command", required=True).add_parser(
        "convert", help="write a data source as uncompressed IDX files, which later runs memory-map")
    conv.add_argument("source", help="digits | fashion-mnist | mnist | an IDX folder, .npy/.npz or image folder")
    conv.add_argument("--out", type=Path, required=True, help="folder to write the IDX files into")
    conv.add_argument("--data-dir", default=None, help="folder of IDX files for fashion-mnist / mnist")

    def run_cmd(name: str, help_: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help_)
        c.add_argument("run", type=Path, help="a run directory written by genmodels train")
        c.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
        return c

    c = run_cmd("sample", "draw samples from the model into an image grid")
    c.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", type=Path, default=None, help="PNG to write (default RUN/images/samples_n{N}.png)")
    c = run_cmd("reconstruct", "held-out images above their reconstructions")
    c.add_argument("-n", type=int, default=16)
    c.add_argument("--split", default="test")
    c.add_argument("--out", type=Path, default=None, help="PNG to write (default RUN/images/reconstructions.png)")
    c = run_cmd("interpolate", "walks in latent space between pairs of codes")
    c.add_argument("--pairs", type=int, default=8)
    c.add_argument("--steps", type=int, default=10)
    c.add_argument("--mode", default="linear", help="linear | slerp")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", type=Path, default=None, help="PNG to write (default RUN/images/interpolation.png)")
    c = run_cmd("encode", "codes of a split as .npz (codes, labels)")
    c.add_argument("--split", default="test")
    c.add_argument("--out", type=Path, default=None, help=".npz to write (default RUN/codes_{split}.npz)")
    c = run_cmd("latent", "scatter of codes coloured by label (and the decoded manifold for 2-D codes)")
    c.add_argument("--split", default="test")
    c.add_argument("--out", type=Path, default=None, help="PNG to write (default RUN/images/latent.png)")
    c = run_cmd("evaluate", "test metrics, printed and written to RUN/eval.json")
    c.add_argument("--importance-samples", type=int, default=1000, help="K of the importance-weighted bound (1..5000)")
    c.add_argument("--probe-train", type=int, default=10_000,
                   help="training images the linear and 5-NN probes of the codes are fitted on (0: no probes)")
    c.add_argument("--parzen-samples", type=int, default=10000,
                   help="model samples for the Parzen-window log-likelihood (default 10000; 0: skip it)")
    c.add_argument("--features", type=Path, default=None,
                   help="feature network for FID, KID, precision/recall, density/coverage (default runs/features/<data>)")
    c.add_argument("--quality-samples", type=int, default=10000,
                   help="model samples for those sample-quality metrics (default 10000; 0: skip them)")
    c.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("compare", help="several runs side by side in one self-contained HTML report")
    c.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="run directories written by genmodels train")
    c.add_argument("--out", type=Path, default=Path("report.html"), help="HTML file to write (default report.html)")
    c.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    c = sub.add_parser("zoo", help="train, evaluate and compare every family on one dataset (the lecture in one command)")
    c.add_argument("--data", default="digits", help="digits | fashion-mnist (default digits)")
    c.add_argument("--out", type=Path, default=Path("runs/zoo"), help="folder of the runs and report.html (default runs/zoo)")
    c.add_argument("--overwrite", action="store_true", help="retrain every run (finished runs are kept otherwise)")
    c.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _resume_config(args: argparse.Namespace):
    """A resumed run keeps its saved config; only --epochs may extend it."""
    from .checkpoint import CONFIG
    from .config import load_run_config

    if not (args.out / CONFIG).exists():
        raise GenmodelsError(f"Nothing to resume in {args.out}: it holds no run; drop --resume to start afresh.")
    saved = load_run_config(args.out / CONFIG)
    return saved.with_epochs(args.epochs or saved.train.epochs)


def _train(args: argparse.Namespace) -> None:
    from .config import build_run_config, merge, read_toml
    from .engine import train

    if args.resume:
        config = _resume_config(args)
        result = train(config, args.out, resume=True, progress=not args.no_progress)
        return _print_run(result)
    base = read_toml(args.config) if args.config else {}
    flags = merge(_collect(args, COMMON_TRAIN_FLAGS), _collect(args, FAMILY_FLAGS[args.family]))
    for section, switches in (("train", TRAIN_SWITCHES), ("model", FAMILY_SWITCHES.get(args.family, {}))):
        for switch in switches:
            flags.setdefault(section, {})[switch[2:].replace("-", "_")] = getattr(args, switch[2:].replace("-", "_"))
    values = merge(base, {"family": args.family, **flags})
    if values.get("family") != args.family:
        raise GenmodelsError(f"{args.config} is for family {values['family']!r}, not {args.family!r}.")
    if values.get("data", {}).get("source") and Path(values["data"]["source"]).exists():
        values["data"]["source"] = str(Path(values["data"]["source"]).resolve())  # runs outlive the cwd
    config = build_run_config(values)
    result = train(config, args.out, overwrite=args.overwrite, progress=not args.no_progress)
    _print_run(result)


def _features(args: argparse.Namespace) -> None:
    from .features import train_features

    values = _collect(args, {**COMMON_TRAIN_FLAGS, **CLASSIFIER_FLAGS})
    data = values["data"]["source"] or "digits"
    data = str(Path(data).resolve()) if Path(data).exists() else data  # runs outlive the cwd
    net = train_features(data, args.out, data_dir=values["data"]["data_dir"], model=values["model"],
                         train=values["train"], overwrite=args.overwrite, progress=not args.no_progress)
    print(f"feature network: {net.dir}\n  test accuracy:   {net.accuracy:.4f}")


def _data(args: argparse.Namespace) -> None:
    from .data import load_data, write_idx

    data = load_data(args.source, args.data_dir)
    for path in write_idx(data, args.out):
        print(f"wrote {path}")
    print(f"train with --data {args.out}: its images are memory-mapped, not read into memory")


def _print_run(result) -> None:
    print(f"run directory: {result.run_dir}")
    if (result.run_dir / "loss.png").exists():
        print(f"  {'loss curve:':<17}{result.run_dir / 'loss.png'}")
    for name in ["samples", "reconstructions"]:
        if (result.run_dir / "images" / f"{name}.png").exists():
            print(f"  {name + ':':<17}{result.run_dir / 'images' / f'{name}.png'}")


def _compare(args: argparse.Namespace) -> None:
    from .report.compare import compare

    print(f"wrote {compare(args.runs, args.out, device=args.device)}")


def _zoo(args: argparse.Namespace) -> None:
    from .zoo import run_zoo, summary_table

    report, results = run_zoo(args.data, args.out, overwrite=args.overwrite, progress=not args.no_progress)
    print(summary_table(results))
    print(f"report: {report}")


def _run_command(args: argparse.Namespace) -> None:
    from . import runs

    run = runs.load_run(args.run, args.device)
    images = args.run / "images"
    if args.command == "sample":
        out = runs.sample(run, args.n, args.out or images / f"samples_n{args.n}.png", seed=args.seed)
    elif args.command == "reconstruct":
        out = runs.reconstruct(run, args.out or images / "reconstructions.png", n=args.n, split=args.split)
    elif args.command == "interpolate":
        out = runs.interpolate(run, args.out or images / "interpolation.png", pairs=args.pairs, steps=args.steps,
                               mode=args.mode, seed=args.seed)
    elif args.command == "encode":
        out = runs.encode(run, args.out or args.run / f"codes_{args.split}.npz", split=args.split)
    elif args.command == "latent":
        out = runs.latent(run, args.out or images / "latent.png", split=args.split)
    else:
        results = runs.evaluate(run, importance_samples=args.importance_samples, seed=args.seed, progress=True,
                                probe_train=args.probe_train,
                                parzen_samples=args.parzen_samples, features=args.features,
                                quality_samples=args.quality_samples)
        width = max(len(k) for k in results)
        for k, v in results.items():
            if isinstance(v, list):
                v = " ".join(f"{e:.3f}" if isinstance(e, float) else str(e) for e in v)
            print(f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}")
        out = args.run / "eval.json"
    print(f"wrote {out}")


def _leave_process_group() -> None:
    """Under torchrun, leave the process group cleanly once the command is done."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        commands = {"train": _train, "features": _features, "compare": _compare, "zoo": _zoo, "data": _data}
        commands.get(args.command, _run_command)(args)
    except TrainingInterrupted as err:
        print(f"genmodels: {err}", file=sys.stderr)
        return 130
    except GenmodelsError as err:
        print(f"genmodels: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genmodels: interrupted", file=sys.stderr)
        return 130
    finally:
        _leave_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
