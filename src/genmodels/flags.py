"""Command-line flags derived from the config classes (docs/ARCHITECTURE.md, "Configs" and "Checklist: add an
option to a family"): one flag per field, named by one rule (`flag_name`), its help the field's description and
the default a run really gets (the family's training defaults included).

The command line builds `genmodels train FAMILY` and `genmodels features train` from `family_flags`; a resumed
run's refusal names a setting as one would type it (`typed_flag`), by the same rule.
"""

from __future__ import annotations

import argparse
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from .config import DataConfig, TrainConfig, flag_name, shown
from .models import FAMILIES


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
    choices: tuple[str, ...] | None  # shown in the usage; checked by the config, whose error names the field
    help: str  # the field's description and the default a run gets without the flag

    @property
    def dest(self) -> str:
        return f"{self.section}.{self.key}"


def _value_type(annotation: Any) -> tuple[Callable[[str], Any] | None, str, tuple[str, ...] | None]:
    """(parse, kind, choices) for a field's type; a TypeError for a type the command line cannot take."""
    if get_origin(annotation) in (Union, types.UnionType):  # X | None: the flag gives an X
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    origin = get_origin(annotation)
    # an item type with pydantic metadata (a strict float) is that type to the command line
    args = tuple(get_args(a)[0] if get_origin(a) is Annotated else a for a in get_args(annotation))
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
    raise TypeError(f"no command-line form for a field of type {annotation!r}; give it one in genmodels.flags")


def help_default(value: Any) -> str:
    """A default as the help shows it: the text a user would type for it."""
    if value is None or value == []:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def config_flags(section: str, config: type[BaseModel], defaults: dict[str, Any] | None = None,
                 toy: dict[str, Any] | None = None) -> list[Flag]:
    """One Flag per field of `config`, but for fields marked config-only; `defaults` overrides field defaults, and
    `toy` (Family.toy_train_defaults) the defaults on a 2-D toy source, which the help gives beside them."""
    flags = []
    for key, info in config.model_fields.items():
        flag = flag_name(key, info)
        if flag is None:
            continue
        parse, kind, choices = _value_type(info.annotation)
        default = (defaults or {}).get(key, info.get_default(call_default_factory=True))
        given, on_toy = help_default(default), help_default((toy or {}).get(key, default))
        also = f"; {on_toy} on a 2-D toy --data" if on_toy != given else ""
        help_ = f"{info.description} (default {given}{also})"
        flags.append(Flag(flag, section, key, parse, kind, choices, help_))
    return flags


def family_flags(name: str) -> list[Flag]:
    """Every flag of `genmodels train NAME` (and of `features train` for the classifier)."""
    fam = FAMILIES[name]
    return [*config_flags("model", fam.config),
            *config_flags("train", TrainConfig, fam.train_defaults, fam.toy_train_defaults),
            *config_flags("data", DataConfig)]


def add_flags(p: argparse.ArgumentParser, flags: list[Flag], family: str) -> None:
    """`flags` on parser `p`, in a group per config section; each defaults to None (not given)."""
    titles = {"model": f"{family} model", "train": "training", "data": "data"}
    groups = {section: p.add_argument_group(title) for section, title in titles.items()}
    for f in flags:
        g = groups[f.section]
        if f.parse is None:  # a switch: --x and --no-x
            g.add_argument(f.flag, dest=f.dest, action=argparse.BooleanOptionalAction, default=None, help=f.help)
        else:
            metavar = "{" + ",".join(f.choices) + "}" if f.choices else f.flag[2:].replace("-", "_").upper()
            action = {"append": "append", "list": "extend"}.get(f.kind, "store")
            g.add_argument(f.flag, dest=f.dest, type=f.parse, default=None, help=f.help, metavar=metavar, action=action)


def collected(args: argparse.Namespace, flags: list[Flag]) -> dict[str, dict[str, Any]]:
    """{section: {key: value}} of the flags given; None for those not given (so a config file wins)."""
    values: dict[str, dict[str, Any]] = {"model": {}, "train": {}, "data": {}}
    for f in flags:
        values[f.section][f.key] = getattr(args, f.dest)
    return values


def typed_value(value: Any) -> str:
    """A setting's value as an error message echoes it, close to how one types it: a comma list, none, a string
    quoted and cut (config.shown)."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) or "none"
    return "none" if value is None else shown(value) if isinstance(value, str) else str(value)


def typed_flag(section: BaseModel, key: str, value: Any) -> str:
    """The flag and value that give `key` of a config section `value`, as one types them (`--no-x` for a switch
    off); the bare key for a config-only field."""
    flag = flag_name(key, type(section).model_fields[key])
    if flag is None:
        return f"{key} {typed_value(value)}"
    if isinstance(value, bool):
        return flag if value else "--no-" + flag[2:]
    return f"{flag} {typed_value(value)}"
