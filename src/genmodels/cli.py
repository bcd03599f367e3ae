"""The `genmodels` command: parsing and dispatch only; every subcommand calls the library.

The flags of `genmodels train FAMILY` and `genmodels features train` are derived from the config
classes by `genmodels.flags` (docs/ARCHITECTURE.md, "Checklist: add an option to a family").
"""

from __future__ import annotations

import argparse
import importlib.metadata
import shlex
import sys
import warnings
from pathlib import Path
from typing import Any, Literal

from .argparser import Parser
from .datafiles import DEFAULT_MAX_DATA_GB
from .errors import GenmodelsError, TrainingError, TrainingInterrupted
from .export import FORMATS, PARTS, export
from .flags import add_flags, collected, family_flags
from .models import FAMILIES, FEATURE_NETWORK, build_run_config
from .rundir import RunDir, check_resume_or_overwrite
from .zoodir import ZooDir

RUN = RunDir("RUN")  # the run directory as the help text names it
NO_PROGRESS = ("no progress bar, a line per epoch instead, as when the output is not a terminal (a bar shows "
               "a line every tenth of the run)")
Subparsers = argparse._SubParsersAction  # what add_subparsers returns; argparse does not name it publicly


def version() -> str:
    """The installed package's version."""
    try:
        return importlib.metadata.version("genmodels")
    except importlib.metadata.PackageNotFoundError:  # imported from a source tree that was never installed
        return "(version unknown: not installed)"


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="genmodels", description="Train, sample, evaluate and compare deep generative models.")
    p.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = p.add_subparsers(dest="command", required=True)
    for add in (_train_parsers, _features_parser, _data_parser, _run_parsers, _evaluate_parser, _compare_parser,
                _explore_parser, _zoo_parser, _lessons_parser, _export_parser):  # in the order the help lists them
        add(sub)
    return p


def _train_parsers(sub: Subparsers) -> None:
    train = sub.add_parser("train", help="train a model into a run directory")
    fam = train.add_subparsers(dest="family", required=True, metavar="FAMILY")
    for name, family in FAMILIES.items():
        if not family.trained_by_train_command:
            continue
        f = fam.add_parser(name, help=family.help, description=f"genmodels train {name}: {family.help}.")
        f.add_argument("--out", required=True, type=Path, help="run directory to write")
        f.add_argument("--config", type=Path, help="TOML file with [model], [data], [train] tables; flags override it")
        f.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint, "
                       "with its saved config (--epochs may extend it)")
        f.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
        f.add_argument("--no-progress", action="store_true", help=NO_PROGRESS)
        add_flags(f, family_flags(name), name)


def _features_parser(sub: Subparsers) -> None:
    feats = sub.add_parser("features", help="the feature network of FID, KID, precision/recall, density/coverage")
    f = feats.add_subparsers(dest="features_command", required=True).add_parser(
        "train", help="train the feature classifier of a dataset (default --out runs/features/<data>)")
    f.add_argument("--out", type=Path, default=None,
                   help="directory to write (default runs/features/<data source name>)")
    f.add_argument("--overwrite", action="store_true", help="replace the feature network already in --out")
    f.add_argument("--no-progress", action="store_true", help=NO_PROGRESS)
    add_flags(f, family_flags(FEATURE_NETWORK), FEATURE_NETWORK)


def _data_parser(sub: Subparsers) -> None:
    conv = sub.add_parser("data", help="data tools").add_subparsers(dest="data_command", required=True).add_parser(
        "convert", help="write a data source as uncompressed IDX files, which later runs memory-map")
    conv.add_argument("source", help="digits | fashion-mnist | mnist | an IDX folder, .npy/.npz or image folder")
    conv.add_argument("--out", type=Path, required=True, help="folder to write the IDX files into")
    conv.add_argument("--data-dir", default=None, help="folder of IDX files for fashion-mnist / mnist "
                                                       "(default none: fashion-mnist's Debian folder)")
    conv.add_argument("--max-data-gb", type=float, default=None,
                      help="the most data, in GB, a source other than an IDX folder may read into memory "
                           f"(IDX folders, gzipped or not, are streamed; default {DEFAULT_MAX_DATA_GB:g})")


def _run_parser(sub: Subparsers, name: str, help_: str) -> argparse.ArgumentParser:
    """A subcommand that loads one run directory."""
    c = sub.add_parser(name, help=help_)
    c.add_argument("run", type=Path, help="a run directory written by genmodels train")
    c.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    return c


def _split(c: argparse.ArgumentParser, what: str) -> None:
    c.add_argument("--split", default="test", help=f"train | test: the split whose {what} (default test)")


def _seed(c: argparse.ArgumentParser, what: str) -> None:
    c.add_argument("--seed", type=int, default=0, help=f"seeds the {what} (default 0)")


def _run_parsers(sub: Subparsers) -> None:
    """sample, reconstruct, interpolate, encode, latent: each writes one file from a run."""
    c = _run_parser(sub, "sample", "draw samples from the model into an image grid (or a .npy file)")
    c.add_argument("-n", type=int, default=64, help="number of samples (default 64; at most 10000 in a picture, "
                                                     "1000000 in a .npy file)")
    _seed(c, "noise the samples are drawn from")
    c.add_argument("--class", dest="klass", default=None,
                   help="a conditional run's class to sample: an index or a class name; all: one labelled row of "
                        "ceil(n / classes) samples per class (default: classes in the training split's proportions)")
    c.add_argument("--out", type=Path, default=None,
                   help=f"file to write: a PNG picture (default {RUN.samples_png('{N}')}) or a .npy of the samples "
                        "themselves (vector runs: floats in the data's units, (N, D); image runs: uint8 pixels, "
                        "(N, C, H, W))")
    c = _run_parser(sub, "reconstruct", "held-out images above their reconstructions")
    c.add_argument("-n", type=int, default=16, help="number of images, the first of the split (default 16)")
    _split(c, "images are reconstructed")
    c.add_argument("--out", type=Path, default=None, help=f"PNG to write (default {RUN.reconstructions_png})")
    c = _run_parser(sub, "interpolate", "walks in latent space between pairs of codes")
    c.add_argument("--pairs", type=int, default=8, help="number of walks, one row each: between the codes of the "
                   "first 2 x pairs test images, or prior draws for a model that does not encode (default 8)")
    c.add_argument("--steps", type=int, default=10, help="images per walk, both ends included (default 10)")
    c.add_argument("--mode", default="linear", help="linear | slerp: straight lines or great circles (default linear)")
    _seed(c, "prior draws of a model that does not encode")
    c.add_argument("--out", type=Path, default=None, help=f"PNG to write (default {RUN.interpolation_png})")
    c = _run_parser(sub, "encode", "codes of a split as .npz (codes, labels)")
    _split(c, "images are encoded")
    c.add_argument("--out", type=Path, default=None, help=f".npz to write (default {RUN.codes('{split}')})")
    c = _run_parser(sub, "latent", "scatter of codes coloured by label (and the decoded manifold for 2-D codes)")
    _split(c, "codes are drawn")
    c.add_argument("--out", type=Path, default=None, help=f"PNG to write (default {RUN.latent_png})")


def _evaluate_parser(sub: Subparsers) -> None:
    c = _run_parser(sub, "evaluate", f"test metrics, printed and written to {RUN.eval_file}")
    c.add_argument("--importance-samples", type=int, default=1000,
                   help="K of the importance-weighted bound, 1..5000 (default 1000)")
    c.add_argument("--probe-train", type=int, default=10_000,
                   help="training images the linear and 5-NN probes of the codes are fitted on (default 10000; "
                        "0: no probes)")
    c.add_argument("--parzen-samples", type=int, default=10000,
                   help="model samples for the Parzen-window log-likelihood (default 10000; 0: skip it)")
    c.add_argument("--features", type=Path, default=None,
                   help="feature network for FID, KID, precision/recall, density/coverage (default "
                        f"RUN/../{ZooDir.FEATURES} when it was trained on the same data, as a zoo leaves it, "
                        "else runs/features/<data>)")
    c.add_argument("--quality-samples", type=int, default=10000,
                   help="model samples for those sample-quality metrics (default 10000; 0: skip them)")
    c.add_argument("--bayes-samples", type=int, default=100,
                   help="codes per test image and class for a conditional VAE's bayes_accuracy; costs classes x K "
                        "decoder passes per test image (default 100; 0: skip it)")
    _seed(c, "evaluation's random draws (importance samples, model samples, probe subsets)")
    c.add_argument("--precision", default=None, help="fp32 | bf16-mixed | fp16-mixed | auto: what the model's "
                   "forward runs in (the metrics stay float32; default: the run's train.precision)")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")


def _compare_parser(sub: Subparsers) -> None:
    c = sub.add_parser("compare", help="several runs side by side in one self-contained HTML report")
    c.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="run directories written by genmodels train")
    c.add_argument("--out", type=Path, default=Path("report.html"), help="HTML file to write (default report.html)")
    c.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")


def _explore_parser(sub: Subparsers) -> None:
    c = sub.add_parser("explore", help="a local web page to explore runs' latent spaces: map, sliders, "
                       "interpolation, sampling, your own image")
    c.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="run directories written by genmodels train")
    c.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    c.add_argument("--port", type=int, default=0, help="port to listen on (default 0: a free one, printed)")
    c.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")


def _zoo_parser(sub: Subparsers) -> None:
    c = sub.add_parser("zoo", help="train, evaluate and compare every family on one dataset "
                                   "(the lecture in one command)")
    c.add_argument("--data", default="digits", help="digits | fashion-mnist (their fixed presets) | an IDX folder, "
                   ".npy/.npz file or image folder (presets derived from its images) | a 2-D toy (ring8, grid25, "
                   "moons, swissroll, spiral) or vectors (.npy/.npz/.csv: every family that takes vectors, presets "
                   "derived from their width) (default digits)")
    c.add_argument("--toy-size", type=int, default=None, metavar="N",
                   help="training points of a 2-D toy --data (default 10,000; the test split has N/5)")
    c.add_argument("--budget", type=float, default=None, metavar="MINUTES",
                   help="minutes the whole zoo may take on derived presets, which set epochs and evaluation to fit "
                        "(default 10); digits and fashion-mnist keep their fixed presets and refuse it")
    c.add_argument("--out", type=Path, default=ZooDir.DEFAULT,
                   help=f"folder of the runs and {ZooDir.REPORT} (default {ZooDir.DEFAULT})")
    c.add_argument("--overwrite", action="store_true", help="retrain every run (finished runs are kept otherwise)")
    c.add_argument("--no-progress", action="store_true", help="no progress bars")


def _lessons_parser(sub: Subparsers) -> None:
    c = sub.add_parser("lessons", help="the lecture's statements as experiments: a criterion, a picture, the numbers "
                                       "and a verdict each (docs/lessons.md)")
    c.add_argument("--out", type=Path, default=Path("runs/lessons"),
                   help="folder of the lessons' runs, lessons.html and lessons.json (default runs/lessons)")
    c.add_argument("--only", default=None, metavar="NAME[,NAME]", help="run these lessons alone (see --list)")
    c.add_argument("--list", action="store_true", help="list the lessons and what each waits for, run nothing")
    c.add_argument("--budget", type=float, default=None, metavar="MINUTES",
                   help="minutes the chosen lessons may take: their training is shortened to fit (default 15)")
    c.add_argument("--data", default="digits", help="the data of the lessons that take any images (default digits)")


def _export_parser(sub: Subparsers) -> None:
    c = _run_parser(sub, "export", "a trained part as a portable file (ONNX): codes -> images, or images -> codes")
    c.add_argument("--part", required=True, choices=tuple(PARTS),
                   help="decoder, generator: codes (B, latent_dim) -> images in [0, 1], as model.decode; "
                        "encoder: images -> codes, as model.encode (a VAE's posterior mean)")
    c.add_argument("--format", default=FORMATS[0], choices=FORMATS,
                   help="onnx, which needs pip install 'genmodels[onnx]' (default onnx)")
    c.add_argument("--out", type=Path, required=True, help="file to write, such as decoder.onnx")


def _export(args: argparse.Namespace) -> None:
    print(f"wrote {export(args.run, args.part, args.out, args.format, args.device)}")


def _train(args: argparse.Namespace) -> None:
    from .config import merge, read_toml, shown
    from .engine import resume_run, train
    from .provenance import canonical_source

    check_resume_or_overwrite(args.resume, args.overwrite)
    base = read_toml(args.config) if args.config else {}
    if base.get("family", args.family) != args.family:
        raise GenmodelsError(f"{args.config} is for family {shown(base['family'])}, not {args.family!r}; "
                             f"train it with `genmodels train {base['family']}` or drop its family line.")
    values = merge(base, {"family": args.family, **collected(args, family_flags(args.family))})
    if isinstance(source := values.get("data", {}).get("source"), str):
        values["data"]["source"] = canonical_source(source)  # runs outlive the cwd
    if args.resume:  # the run's saved config; resume_run refuses a given setting that differs, --epochs may extend it
        return _print_run(resume_run(args.out, values.get("train", {}).get("epochs"), progress=_progress(args),
                                     settings=values))
    config = build_run_config(values, _settings_source(args))
    _print_run(train(config, args.out, overwrite=args.overwrite, progress=_progress(args)))


def _progress(args: argparse.Namespace) -> bool | Literal["lines"]:
    """A bar on a terminal, else a line per epoch (engine.Progress); --no-progress: the lines alone."""
    return "lines" if args.no_progress else True


def _settings_source(args: argparse.Namespace) -> str:
    """Where `genmodels train`'s settings came from, as its config errors name it: the file, the flags or both."""
    flagged = any(v is not None for section in collected(args, family_flags(args.family)).values()
                  for v in section.values())
    if not args.config:
        return "the command-line flags"
    return f"{args.config} and the command-line flags" if flagged else str(args.config)


def _features(args: argparse.Namespace) -> None:
    from .distributed import main_process
    from .features import train_features
    from .provenance import canonical_source

    values = collected(args, family_flags(FEATURE_NETWORK))
    data = values["data"]["source"] or "digits"
    data = canonical_source(data)  # runs outlive the cwd
    net = train_features(data, args.out, data_dir=values["data"]["data_dir"], model=values["model"],
                         train=values["train"], overwrite=args.overwrite, progress=_progress(args))
    if main_process():  # under torchrun, once
        print(f"feature network: {net.dir}\n  test accuracy:   {net.accuracy:.4f}")


def _data(args: argparse.Namespace) -> None:
    from . import config
    from .dataconvert import convert

    written, classes = convert(args.source, args.out, args.data_dir, max_data_gb=args.max_data_gb)
    for path in written:
        print(f"wrote {path}")
    if classes:
        print(f"note: IDX files hold no class names, so labels 0..{len(classes) - 1} lose theirs, "
              f"{config.shown(classes)}")
    print(f"train with --data {args.out}: its images are memory-mapped, not read into memory")


def _print_run(result) -> None:
    from .distributed import main_process

    if not main_process():  # under torchrun, once, as rank 0 alone wrote the run
        return
    run = RunDir(result.run_dir)
    print(f"run directory: {run}")
    for what, path in [("loss curve", run.loss_plot), ("samples", run.samples_png()),
                       ("reconstructions", run.reconstructions_png)]:
        if path.exists():
            print(f"  {what + ':':<17}{path}")


def _compare(args: argparse.Namespace) -> None:
    from .report.compare import compare

    print(f"wrote {compare(args.runs, args.out, device=args.device)}")


def _explore(args: argparse.Namespace) -> None:
    from .explore import serve

    serve(args.runs, host=args.host, port=args.port, device=args.device)


def _zoo(args: argparse.Namespace) -> None:
    from .zoo import run_zoo, summary_table

    report, results = run_zoo(args.data, args.out, overwrite=args.overwrite, progress=not args.no_progress,
                              budget=args.budget, toy_size=args.toy_size)
    print(summary_table(results))
    print(f"report: {report}")
    runs = [ZooDir(args.out).run(name) for name in results]
    images = [run for run in runs if len(RunDir(run).read_config().shape or ()) != 1]  # the explorer's kind, for now
    if images:
        print("explore the latent spaces in the browser: genmodels explore "
              + " ".join(shlex.quote(str(run)) for run in images))


def _lessons(args: argparse.Namespace) -> None:
    from .lessons import DEFAULT_BUDGET, listing, run_lessons

    if args.list:
        print(listing())
        return
    budget = DEFAULT_BUDGET if args.budget is None else args.budget
    page, records = run_lessons(args.out, only=args.only, budget=budget, data=args.data)
    width = max(map(len, records), default=0)
    for name, entry in records.items():
        print(f"{name:<{width}}  {entry['verdict']}")
    print(f"lessons: {page}")


def _run_command(args: argparse.Namespace) -> None:
    from . import runs

    run = runs.load_run(args.run, args.device)
    if args.command == "sample":
        out = runs.sample(run, args.n, args.out or run.dir.samples_png(args.n), seed=args.seed, klass=args.klass)
    elif args.command == "reconstruct":
        out = runs.reconstruct(run, args.out or run.dir.reconstructions_png, n=args.n, split=args.split)
    elif args.command == "interpolate":
        out = runs.interpolate(run, args.out or run.dir.interpolation_png, pairs=args.pairs, steps=args.steps,
                               mode=args.mode, seed=args.seed)
    elif args.command == "encode":
        out = runs.encode(run, args.out or run.dir.codes(args.split), split=args.split)
    elif args.command == "latent":
        out = runs.latent(run, args.out or run.dir.latent_png, split=args.split)
    else:
        from .evaluation import evaluate

        evaluate(run, importance_samples=args.importance_samples, seed=args.seed, progress=not args.no_progress,
                 probe_train=args.probe_train, parzen_samples=args.parzen_samples, features=args.features,
                 quality_samples=args.quality_samples, show=_print_metrics, precision=args.precision,
                 bayes_samples=args.bayes_samples)
        out = run.dir.eval_file
    print(f"wrote {out}")


def _print_metrics(results: dict[str, Any]) -> None:
    """evaluate's results, one aligned line each; called before eval.json is written, so they are seen even if
    that write fails."""
    width = max(len(k) for k in results)
    for k, v in results.items():
        if isinstance(v, list):
            v = " ".join(f"{e:.3f}" if isinstance(e, float) else str(e) for e in v)
        print(f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}")


def _leave_process_group() -> None:
    """Under torchrun, leave the process group cleanly once the command is done."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as a user reads it: one line after "genmodels: warning:", not a source location."""
    try:
        print(f"genmodels: warning: {message}", file=file or sys.stderr)
    except OSError:  # stderr's reader has gone (`2>&1 | head -1`): say nothing, as Python's own showwarning
        pass


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    showwarning_before, warnings.showwarning = warnings.showwarning, _show_warning
    try:
        commands = {"train": _train, "features": _features, "compare": _compare, "zoo": _zoo, "data": _data,
                    "explore": _explore, "lessons": _lessons, "export": _export}
        commands.get(args.command, _run_command)(args)
        sys.stdout.flush()  # here, where a reader that has gone is caught, not at exit
    except BrokenPipeError:  # stdout's reader has gone (`| head -1`): nothing more to say, nowhere to say it
        from .progress import silence_stdout

        silence_stdout()
        return 1
    except TrainingInterrupted as err:
        print(f"genmodels: {err}", file=sys.stderr)
        return 130
    except TrainingError as err:  # the run started and failed: 1, as for any failed job
        print(f"genmodels: error: {err}", file=sys.stderr)
        return 1
    except GenmodelsError as err:
        print(f"genmodels: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genmodels: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = showwarning_before
        _leave_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
