"""The `genmodels` command: parsing only; every subcommand calls the library.

The flags of `genmodels train FAMILY` and `genmodels features train` are derived from the config
classes (docs/ARCHITECTURE.md, "Add an option to a family"): one flag per field, its help the field's
description, its shown default the value a run really gets (the family's training defaults included).
"""

from __future__ import annotations

import argparse
import difflib
import importlib.metadata
import re
import shlex
import sys
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from .config import DataConfig, TrainConfig
from .errors import GenmodelsError, TrainingError, TrainingInterrupted
from .models import FAMILIES, build_run_config
from .rundir import RunDir

RUN = RunDir("RUN")  # the run directory as the help text names it
NO_PROGRESS = ("no progress bar, a line per epoch instead, as when the output is not a terminal (a bar shows "
               "a line every tenth of the run)")


def widths(text: str) -> list[int]:
    """'512,256' -> [512, 256]; '' -> [] (no hidden layer)."""
    return [int(v) for v in text.split(",") if v]


def floats(text: str) -> tuple[float, ...]:
    """'0.5,0.999' -> (0.5, 0.999)."""
    return tuple(float(v) for v in text.split(","))


def names(text: str) -> list[str]:
    """'csv, tensorboard' -> ['csv', 'tensorboard']."""
    return [v.strip() for v in text.split(",") if v.strip()]


@dataclass(frozen=True)
class Flag:
    """One command-line flag, derived from one config field."""

    flag: str  # --latent-dim
    section: str  # model | train | data: where the value goes in the run config
    key: str  # the field's name
    parse: Callable[[str], Any] | None  # the text a user types -> the value (None for a switch)
    kind: str  # "store", "append" (repeatable, values compose in order), "list" (a comma list, repeatable)
    # or "switch" (--x / --no-x)
    choices: tuple | None  # shown in the usage; checked by the config, whose error names the field
    help: str  # the field's description and the default a run gets without the flag

    @property
    def dest(self) -> str:
        return f"{self.section}.{self.key}"


def _value_type(annotation: Any) -> tuple[Callable[[str], Any] | None, str, tuple | None]:
    """(parse, kind, choices) for a field's type; a TypeError for a type the command line cannot take."""
    if get_origin(annotation) in (Union, types.UnionType):  # X | None: the flag gives an X
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    origin, args = get_origin(annotation), get_args(annotation)
    if annotation is bool:
        return None, "switch", None
    if origin is Literal and all(isinstance(a, str) for a in args):
        return str, "store", args
    if annotation in (int, float, str):
        return annotation, "store", None
    if origin is list and args == (int,):
        return widths, "store", None
    if origin is list and args == (str,):
        return str, "append", None
    if origin is list and len(args) == 1 and get_origin(args[0]) is Literal:
        return names, "list", get_args(args[0])
    if origin is tuple and set(args) == {float}:
        return floats, "store", None
    raise TypeError(f"no command-line form for a field of type {annotation!r}; give it one in genmodels.cli")


def shown(value: Any) -> str:
    """A default as the help shows it: the text a user would type for it."""
    if value is None or value == []:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def config_flags(section: str, config: type[BaseModel], defaults: dict[str, Any] | None = None) -> list[Flag]:
    """One Flag per field of `config`, but for fields marked config-only; `defaults` overrides field defaults."""
    flags = []
    for key, info in config.model_fields.items():
        extra = info.json_schema_extra or {}
        if "config_only" in extra:
            continue
        parse, kind, choices = _value_type(info.annotation)
        default = (defaults or {}).get(key, info.get_default(call_default_factory=True))
        flags.append(Flag(extra.get("flag", "--" + key.replace("_", "-")), section, key, parse, kind, choices,
                          f"{info.description} (default {shown(default)})"))
    return flags


def family_flags(name: str) -> list[Flag]:
    """Every flag of `genmodels train NAME` (and of `features train` for the classifier)."""
    fam = FAMILIES[name]
    return [*config_flags("model", fam.config), *config_flags("train", TrainConfig, fam.train_defaults),
            *config_flags("data", DataConfig)]


def _add_flags(p: argparse.ArgumentParser, flags: list[Flag], family: str) -> None:
    titles = {"model": f"{family} model", "train": "training", "data": "data"}
    groups = {section: p.add_argument_group(title) for section, title in titles.items()}
    for f in flags:
        g = groups[f.section]
        if f.kind == "switch":
            g.add_argument(f.flag, dest=f.dest, action=argparse.BooleanOptionalAction, default=None, help=f.help)
        else:
            metavar = "{" + ",".join(f.choices) + "}" if f.choices else f.flag[2:].replace("-", "_").upper()
            action = {"append": "append", "list": "extend"}.get(f.kind, "store")
            g.add_argument(f.flag, dest=f.dest, type=f.parse, default=None, help=f.help, metavar=metavar, action=action)


def _collect(args: argparse.Namespace, flags: list[Flag]) -> dict:
    """{section: {key: value}} of the flags given; None for those not given (so a config file wins)."""
    values: dict = {"model": {}, "train": {}, "data": {}}
    for f in flags:
        values[f.section][f.key] = getattr(args, f.dest)
    return values


def closest(word: str, names, cutoff: float = 0.6) -> str | None:
    """The name closest to a misspelled `word`, or None when none is close."""
    close = difflib.get_close_matches(word, [str(n) for n in names], n=1, cutoff=cutoff)
    return close[0] if close else None


class Parser(argparse.ArgumentParser):
    """argparse that suggests the closest subcommand, family or flag to a misspelled one (Python 3.11's argparse
    does not); subcommands are Parsers too, through add_subparsers' default parser class."""

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        # argparse's own check of a value against `choices` (a private hook, in every Python 3), with a suggestion.
        if action.choices is not None and value not in action.choices:
            names = [str(c) for c in action.choices]
            near = closest(str(value), names)
            raise argparse.ArgumentError(action, f"invalid choice {value!r}{f'; did you mean {near}?' if near else ''} "
                                                 f"(choose from {', '.join(names)})")

    def parse_args(self, args=None, namespace=None) -> argparse.Namespace:
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:  # said by the subcommand they were given to, with its usage, and the flags it has
            chosen = self._chosen(parsed)
            known = [s for a in chosen._actions for s in a.option_strings]
            hints = {}  # misspelled flag -> the flag meant
            for flag in (word.split("=", 1)[0] for word in extra if re.match(r"--?[A-Za-z]", word)):
                # 0.7: every flag shares its "--", so a lower cutoff pairs --foo with --out
                near = closest(flag.replace("_", "-"), known, cutoff=0.7)
                if near:
                    hints[flag] = near
            meant = " and ".join(m if len(hints) == 1 else f"{m} for {f}" for f, m in hints.items())
            chosen.error(f"unrecognized arguments: {' '.join(extra)}{f'; did you mean {meant}?' if hints else ''}")
        return parsed

    def _chosen(self, parsed: argparse.Namespace) -> argparse.ArgumentParser:
        """The innermost subcommand's parser that `parsed` went through."""
        parser: argparse.ArgumentParser = self
        while True:
            sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
            name = getattr(parsed, sub.dest, None) if sub is not None else None
            if name not in (sub.choices if sub is not None else {}):
                return parser
            parser = sub.choices[name]


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

    train = sub.add_parser("train", help="train a model into a run directory")
    fam = train.add_subparsers(dest="family", required=True, metavar="FAMILY")
    for name, family in FAMILIES.items():
        if not family.trained_by_train_command:
            continue
        f = fam.add_parser(name, help=family.help, description=f"genmodels train {name}: {family.help}.")
        f.add_argument("--out", required=True, type=Path, help="run directory to write")
        f.add_argument("--config", type=Path, help="TOML file with [model], [data], [train] tables; flags override it")
        f.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint, with its saved config (--epochs may extend it)")
        f.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
        f.add_argument("--no-progress", action="store_true", help=NO_PROGRESS)
        _add_flags(f, family_flags(name), name)

    feats = sub.add_parser("features", help="the feature network of FID, KID, precision/recall, density/coverage")
    f = feats.add_subparsers(dest="features_command", required=True).add_parser(
        "train", help="train the feature classifier of a dataset (default --out runs/features/<data>)")
    f.add_argument("--out", type=Path, default=None, help="directory to write (default runs/features/<data source name>)")
    f.add_argument("--overwrite", action="store_true", help="replace the feature network already in --out")
    f.add_argument("--no-progress", action="store_true", help=NO_PROGRESS)
    _add_flags(f, family_flags("classifier"), "classifier")

    conv = sub.add_parser("data", help="data tools").add_subparsers(dest="data_command", required=True).add_parser(
        "convert", help="write a data source as uncompressed IDX files, which later runs memory-map")
    conv.add_argument("source", help="digits | fashion-mnist | mnist | an IDX folder, .npy/.npz or image folder")
    conv.add_argument("--out", type=Path, required=True, help="folder to write the IDX files into")
    conv.add_argument("--data-dir", default=None, help="folder of IDX files for fashion-mnist / mnist "
                                                       "(default none: fashion-mnist's Debian folder)")

    def run_cmd(name: str, help_: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help_)
        c.add_argument("run", type=Path, help="a run directory written by genmodels train")
        c.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
        return c

    def split(c: argparse.ArgumentParser, what: str) -> None:
        c.add_argument("--split", default="test", help=f"train | test: the split whose {what} (default test)")

    def seed(c: argparse.ArgumentParser, what: str) -> None:
        c.add_argument("--seed", type=int, default=0, help=f"seeds the {what} (default 0)")

    c = run_cmd("sample", "draw samples from the model into an image grid")
    c.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    seed(c, "noise the samples are drawn from")
    c.add_argument("--out", type=Path, default=None, help=f"PNG to write (default {RUN.samples_png('{N}')})")
    c = run_cmd("reconstruct", "held-out images above their reconstructions")
    c.add_argument("-n", type=int, default=16, help="number of images, the first of the split (default 16)")
    split(c, "images are reconstructed")
    c.add_argument("--out", type=Path, default=None, help=f"PNG to write (default {RUN.reconstructions_png})")
    c = run_cmd("interpolate", "walks in latent space between pairs of codes")
    c.add_argument("--pairs", type=int, default=8, help="number of walks, one row each: between the codes of the "
                   "first 2 x pairs test images, or prior draws for a model that does not encode (default 8)")
    c.add_argument("--steps", type=int, default=10, help="images per walk, both ends included (default 10)")
    c.add_argument("--mode", default="linear", help="linear | slerp: straight lines or great circles (default linear)")
    seed(c, "prior draws of a model that does not encode")
    c.add_argument("--out", type=Path, default=None, help=f"PNG to write (default {RUN.interpolation_png})")
    c = run_cmd("encode", "codes of a split as .npz (codes, labels)")
    split(c, "images are encoded")
    c.add_argument("--out", type=Path, default=None, help=f".npz to write (default {RUN.codes('{split}')})")
    c = run_cmd("latent", "scatter of codes coloured by label (and the decoded manifold for 2-D codes)")
    split(c, "codes are drawn")
    c.add_argument("--out", type=Path, default=None, help=f"PNG to write (default {RUN.latent_png})")
    c = run_cmd("evaluate", f"test metrics, printed and written to {RUN.eval_file}")
    c.add_argument("--importance-samples", type=int, default=1000,
                   help="K of the importance-weighted bound, 1..5000 (default 1000)")
    c.add_argument("--probe-train", type=int, default=10_000,
                   help="training images the linear and 5-NN probes of the codes are fitted on (default 10000; "
                        "0: no probes)")
    c.add_argument("--parzen-samples", type=int, default=10000,
                   help="model samples for the Parzen-window log-likelihood (default 10000; 0: skip it)")
    c.add_argument("--features", type=Path, default=None,
                   help="feature network for FID, KID, precision/recall, density/coverage (default RUN/../features when it was trained on the same data, as a zoo leaves it, else runs/features/<data>)")
    c.add_argument("--quality-samples", type=int, default=10000,
                   help="model samples for those sample-quality metrics (default 10000; 0: skip them)")
    seed(c, "evaluation's random draws (importance samples, model samples, probe subsets)")
    c.add_argument("--precision", default=None, help="fp32 | bf16-mixed | fp16-mixed: what the model's forward runs "
                   "in (the metrics stay float32; default: the run's train.precision)")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    c = sub.add_parser("compare", help="several runs side by side in one self-contained HTML report")
    c.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="run directories written by genmodels train")
    c.add_argument("--out", type=Path, default=Path("report.html"), help="HTML file to write (default report.html)")
    c.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    c = sub.add_parser("explore", help="a local web page to explore runs' latent spaces: map, sliders, "
                       "interpolation, sampling, your own image")
    c.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="run directories written by genmodels train")
    c.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    c.add_argument("--port", type=int, default=0, help="port to listen on (default 0: a free one, printed)")
    c.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    c = sub.add_parser("zoo", help="train, evaluate and compare every family on one dataset (the lecture in one command)")
    c.add_argument("--data", default="digits", help="digits | fashion-mnist (their fixed presets) | an IDX folder, "
                   ".npy/.npz file or image folder (presets derived from its images; default digits)")
    c.add_argument("--budget", type=float, default=None, metavar="MINUTES",
                   help="minutes the whole zoo may take on derived presets, which set epochs and evaluation to fit "
                        "(default 10); digits and fashion-mnist keep their fixed presets and refuse it")
    c.add_argument("--out", type=Path, default=Path("runs/zoo"), help="folder of the runs and report.html (default runs/zoo)")
    c.add_argument("--overwrite", action="store_true", help="retrain every run (finished runs are kept otherwise)")
    c.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _train(args: argparse.Namespace) -> None:
    from .config import merge, read_toml
    from .config import shown as shown_value
    from .engine import resume_run, train
    from .provenance import canonical_source

    base = read_toml(args.config) if args.config else {}
    if base.get("family", args.family) != args.family:
        raise GenmodelsError(f"{args.config} is for family {shown_value(base['family'])}, not {args.family!r}; "
                             f"train it with `genmodels train {base['family']}` or drop its family line.")
    values = merge(base, {"family": args.family, **_collect(args, family_flags(args.family))})
    if isinstance(source := values.get("data", {}).get("source"), str):
        values["data"]["source"] = canonical_source(source)  # runs outlive the cwd
    if args.resume:  # the run's saved config; resume_run refuses a given setting that differs, --epochs may extend it
        return _print_run(resume_run(args.out, values.get("train", {}).get("epochs"), progress=_progress(args),
                                     settings=values))
    config = build_run_config(values, _settings_source(args))
    _print_run(train(config, args.out, overwrite=args.overwrite, progress=_progress(args)))


def _progress(args: argparse.Namespace) -> bool | str:
    """A bar on a terminal, else a line per epoch (engine.Progress); --no-progress: the lines alone."""
    return "lines" if args.no_progress else True


def _settings_source(args: argparse.Namespace) -> str:
    """Where `genmodels train`'s settings came from, as its config errors name it: the file, the flags or both."""
    flagged = any(v is not None for section in _collect(args, family_flags(args.family)).values()
                  for v in section.values())
    if not args.config:
        return "the command-line flags"
    return f"{args.config} and the command-line flags" if flagged else str(args.config)


def _features(args: argparse.Namespace) -> None:
    from .distributed import main_process
    from .features import train_features
    from .provenance import canonical_source

    values = _collect(args, family_flags("classifier"))
    data = values["data"]["source"] or "digits"
    data = canonical_source(data)  # runs outlive the cwd
    net = train_features(data, args.out, data_dir=values["data"]["data_dir"], model=values["model"],
                         train=values["train"], overwrite=args.overwrite, progress=_progress(args))
    if main_process():  # under torchrun, once
        print(f"feature network: {net.dir}\n  test accuracy:   {net.accuracy:.4f}")


def _data(args: argparse.Namespace) -> None:
    from . import config
    from .data import load_data, write_idx

    data = load_data(args.source, args.data_dir)
    for path in write_idx(data, args.out):
        print(f"wrote {path}")
    if data.classes:
        print(f"note: IDX files hold no class names, so labels 0..{len(data.classes) - 1} lose theirs, "
              f"{config.shown(data.classes)}")
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
                              budget=args.budget)
    print(summary_table(results))
    print(f"report: {report}")
    print("explore the latent spaces in the browser: genmodels explore "
          + " ".join(shlex.quote(str(Path(args.out) / name)) for name in results))


def _run_command(args: argparse.Namespace) -> None:
    from . import runs

    run = runs.load_run(args.run, args.device)
    if args.command == "sample":
        out = runs.sample(run, args.n, args.out or run.dir.samples_png(args.n), seed=args.seed)
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

        def show(results: dict) -> None:  # printed before eval.json is written: seen even if that write fails
            width = max(len(k) for k in results)
            for k, v in results.items():
                if isinstance(v, list):
                    v = " ".join(f"{e:.3f}" if isinstance(e, float) else str(e) for e in v)
                print(f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}")

        evaluate(run, importance_samples=args.importance_samples, seed=args.seed, progress=not args.no_progress,
                 probe_train=args.probe_train, parzen_samples=args.parzen_samples, features=args.features,
                 quality_samples=args.quality_samples, show=show, precision=args.precision)
        out = run.dir.eval_file
    print(f"wrote {out}")


def _leave_process_group() -> None:
    """Under torchrun, leave the process group cleanly once the command is done."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as a user reads it: one line after "genmodels: warning:", not a source location."""
    print(f"genmodels: warning: {message}", file=file or sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    shown_before, warnings.showwarning = warnings.showwarning, _show_warning
    try:
        commands = {"train": _train, "features": _features, "compare": _compare, "zoo": _zoo, "data": _data,
                    "explore": _explore}
        commands.get(args.command, _run_command)(args)
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
        warnings.showwarning = shown_before
        _leave_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
