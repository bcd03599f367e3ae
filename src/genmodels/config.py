"""The settings every run shares, typed and validated once at the boundary (docs/ARCHITECTURE.md, "Configs").

A run is described by a `RunConfig` (genmodels.models.registry): its family, that family's model
config (declared beside the model class), a `DataConfig` and a `TrainConfig` from this module.
Every field carries its help text as its pydantic `description`; the command line derives its flags,
their help and their shown defaults from these fields, so nothing here is restated elsewhere.
A field that should have no flag says why in `json_schema_extra={"config_only": "..."}`; a flag
named otherwise than its field says so in `json_schema_extra={"flag": "--name"}`.
"""

from __future__ import annotations

import numbers
import reprlib
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic import Strict as StrictType
from pydantic.fields import FieldInfo

from .datafiles import DEFAULT_MAX_DATA_GB, is_number
from .errors import ConfigError
from .fileio import MiB, read_bounded
from .precision import Precision

TOML_LIMIT = 1 * MiB  # a config file of a few tables is a few KiB
# torch's generators take 64-bit seeds; the engine adds small offsets to the training seed.
SEED_MAX = 2**63 - 1
SEEDS = "seeds must be integers in 0..2**63-1"


class Strict(BaseModel):
    # Unknown keys are errors, not silently ignored: a typo must not train the wrong model. No setting
    # means anything at infinity or NaN (an lr of inf accepted would train to NaN), so floats are finite.
    # Values keep their declared types (strict): a TOML `latent_dim = true` or `lr = "0.001"`, or a width of
    # 1e9 (a float), is refused rather than coerced to 1, 0.001 or 1000000000; an integer is a float's value.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _numpy_scalars_as_python(cls, values: Any) -> Any:
        # A numpy scalar (an np.int64 from a scikit-learn grid search) is the Python value it holds, of its kind.
        if isinstance(values, dict):
            return {key: _plain(value) for key, value in values.items()}
        return values


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)) and any(isinstance(v, np.generic) for v in value):
        return type(value)(v.item() if isinstance(v, np.generic) else v for v in value)
    return value


# A tuple setting arrives from TOML and JSON as an array, so the tuple itself is taken from a list; its items stay
# strict (pydantic's strict mode would refuse every list for a tuple).
StrictFloat = Annotated[float, StrictType()]
StrictInt = Annotated[int, StrictType()]


class DataConfig(Strict):
    source: str = Field("digits", json_schema_extra={"flag": "--data"},
                        description="digits | fashion-mnist | mnist | ring8 | grid25 | moons | swissroll | spiral "
                                    "| an IDX or image folder, .npy/.npz or .csv path")
    toy_size: int | None = Field(None, ge=1, le=10_000_000,
                                 description="training points of a 2-D toy --data (ring8, grid25, moons, swissroll, "
                                             "spiral; the test split holds a fifth as many); none: 10,000 and 2,000")
    label_column: str | None = Field(None, description="the column of a .csv --data that holds the labels (class "
                                                       "indices or names); none: no labels")
    data_dir: str | None = Field(None, description="folder of IDX files for fashion-mnist or mnist; "
                                                   "none: fashion-mnist's Debian folder")
    # Recorded with the run, so that later commands (evaluate, sample, explore) read its data as training did.
    max_data_gb: float = Field(DEFAULT_MAX_DATA_GB, gt=0,
                               description="the most data, in GB, read into memory rather than memory-mapped "
                                           "(gzipped IDX, .npz, image folders, arrays that must be converted); "
                                           "never more than the memory available")
    fingerprint: str | None = Field(
        None, pattern=r"^[0-9a-f]{64}$",
        description="sha256 (hex) of the data the run was trained on (genmodels.data.fingerprint); none: not recorded",
        json_schema_extra={"config_only": "recorded by training from the data it reads; later commands check it"})
    standardiser: dict[str, list[StrictFloat]] | None = Field(
        None, strict=False,
        description="vector data: the training split's mean and std per column, {\"mean\": [...], \"std\": [...]}; "
                    "a model sees (x - mean) / std and every output is given back in the data's units",
        json_schema_extra={"config_only": "recorded by training from the vector data it reads; later commands "
                                          "undo it in their outputs"})

    @field_validator("standardiser")
    @classmethod
    def _check_standardiser(cls, value: dict[str, list[float]] | None) -> dict[str, list[float]] | None:
        if value is not None and (set(value) != {"mean", "std"} or len(value["mean"]) != len(value["std"])
                                  or not value["std"] or min(value["std"]) <= 0):
            raise ValueError("a standardiser is {\"mean\": [...], \"std\": [...]} of equal lengths, stds positive")
        return value


class TrainConfig(Strict):
    epochs: int = Field(20, ge=1, description="passes over the training split")
    batch_size: int = Field(100, ge=1, description="images per step (the global batch under torchrun)")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate")
    lr_schedule: Literal["constant", "cosine"] = Field(
        "constant", description="cosine: lr * (1 + cos(pi * epoch / epochs)) / 2 in each epoch")
    betas: tuple[StrictFloat, StrictFloat] = Field((0.9, 0.999), strict=False,
                                                   description="Adam betas, e.g. 0.5,0.999")
    grad_clip: float | None = Field(None, gt=0, description="clip each optimizer's gradient norm to this before "
                                                            "its step; none: no clipping")
    seed: int = Field(0, description="seeds weights, batch order and every sample drawn in training")
    device: str = Field("cpu", description="cpu | cuda | cuda:N | auto")
    threads: int | None = Field(None, ge=1, description="torch CPU threads; none: torch's default, one per core")
    log_every: int = Field(50, ge=1, description="steps between logged records (one host sync each)")
    eval_batch_size: int = Field(1000, ge=1, description="images per batch of each epoch's held-out evaluation")
    # Opt-in, as a compile costs 12 s for the MLP VAE on 2 CPU cores (cold cache) and paid 1.07x for
    # the MLP VAE but lost for the conv VAE and the DCGAN (docs/benchmarks.md, Performance).
    compile: bool = Field(False, description="torch.compile the model's forward for the training steps "
                                             "(costs a compile up front; see docs/benchmarks.md, Performance)")

    # fp32 stays the default until docs/benchmarks.md ("Mixed precision (bf16) on the CPU") shows bf16 meeting its
    # targets: it can pay only where the processor has native bf16 products (avx512_bf16, AMX, a recent GPU), and
    # issue #18 measured convolutions gaining little from it (docs/ARCHITECTURE.md, "Precision").
    precision: Precision = Field(
        "fp32", description="fp32 | bf16-mixed | fp16-mixed | auto: the forward under autocast in bf16 or fp16 with "
                            "float32 weights, optimizer state, losses and checkpoints (fp16 adds a gradient scaler); "
                            "bf16-mixed can be faster where the CPU has native bf16 (avx512_bf16, amx_bf16) "
                            "or on a GPU; auto: bf16-mixed there, fp32 elsewhere (config.json records which)")
    channels_last: bool = Field(False, description="convolutions in channels-last (NHWC) memory layout; measure it "
                                                   "with benchmarks/model_throughput.py --channels-last")
    log: list[Literal["csv", "tensorboard"]] = Field(
        [], description="logs of the metrics beside the JSON-lines one, a comma list or the flag repeated: "
                        "csv (a table, one row per record), "
                        "tensorboard (event files; needs pip install 'genmodels[tensorboard]')")

    @field_validator("log")
    @classmethod
    def _once_each(cls, log: list[str]) -> list[str]:
        return list(dict.fromkeys(log))

    @field_validator("seed")
    @classmethod
    def _check_seed(cls, seed: int) -> int:
        if not 0 <= seed <= SEED_MAX:
            raise ValueError(SEEDS)
        return seed

    @model_validator(mode="after")
    def _check_betas(self) -> TrainConfig:
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"Adam betas must lie in [0, 1), got {self.betas}")
        return self


def flag_name(key: str, info: FieldInfo) -> str | None:
    """The flag of field `key`: `--<key with dashes>`, or the one its `json_schema_extra` names under "flag";
    None for a field marked "config_only" (it has no flag). The command line's flags (genmodels.flags) and the
    messages below it that name a setting take their names from here."""
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if "config_only" in extra:
        return None
    return str(extra["flag"]) if "flag" in extra else "--" + key.replace("_", "-")


def check_nets(arch: str, hidden: list[int], channels: list[int]) -> None:
    """The checks every family with MLP widths and conv channels shares (raises ValueError for pydantic)."""
    if any(h < 1 for h in hidden) or any(c < 1 for c in channels):
        raise ValueError("hidden widths and channels must be positive integers")
    if arch == "conv" and not channels:
        raise ValueError("a conv network needs at least one entry in channels")


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = 60
_REPR.maxlevel = 3


def shown(value: Any, limit: int = 80) -> str:
    """A value as an error message echoes it: its repr, nested and long values cut to about `limit` characters."""
    try:
        text = _REPR.repr(value)
    except (ValueError, RecursionError):  # an int of more than 4300 digits, say
        return f"<{type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_seed(seed: Any, flag: str = "--seed") -> int:
    """seed, or a one-sentence ConfigError unless it is an integer in 0..SEED_MAX."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= int(seed) <= SEED_MAX:
        raise ConfigError(f"{flag} {shown(seed)} is not a valid seed: {SEEDS}; give e.g. {flag} 0.")
    return int(seed)


def one_sentence(err: ValidationError | list[tuple[ValidationError, tuple]], where: str, prefix: tuple = ()) -> str:
    """A pydantic ValidationError (or several, each with its location prefix) as the one sentence a user
    reads: every bad value, located (at most 10; long inputs and keys cut short, so a hostile file cannot fill
    the message)."""
    found = [(e, pre) for one, pre in ([(err, prefix)] if isinstance(err, ValidationError) else err)
             for e in one.errors()]
    items = []
    for e, pre in found[:10]:
        loc = ".".join(str(p)[:40] for p in (*pre, *e["loc"])) or "config"
        msg = _wrong_type(e) or e["msg"].removeprefix("Value error, ")[:200]
        items.append(f"{loc} ({msg})" if "input" not in e else f"{loc} = {shown(e['input'])} ({msg})")
    return f"Bad config in {where}: {'; '.join(items)}; fix these values and run again."


# What a strict field of each type takes, as a type error names it.
_EXPECTED = {"int_type": "an integer", "float_type": "a number", "bool_type": "true or false",
             "string_type": "a string in quotes", "tuple_type": "a list", "list_type": "a list"}


def _kind(value: Any) -> str:
    """What a value is, in words a TOML or JSON writer uses."""
    kinds = ((bool, "a boolean"), (int, "an integer"), (float, "a float"), (str, "a string"),
             ((list, tuple), "a list"), (dict, "a table"), (type(None), "none"))
    return next((kind for cls, kind in kinds if isinstance(value, cls)), f"a {type(value).__name__}")


def _wrong_type(e: Any) -> str | None:
    """A strict field's type error as `<kind> where <expected> is expected`, with the fix where one is plain
    (1e9 for an integer: write 1000000000; "0.001" for a number: drop the quotes); None for other errors."""
    expected, value = _EXPECTED.get(e["type"]), e.get("input")
    if expected is None:
        return None
    fix = ""
    if e["type"] == "int_type" and isinstance(value, float) and value.is_integer() and abs(value) < 1e18:
        fix = f"; write {int(value)}"
    elif e["type"] in ("int_type", "float_type") and isinstance(value, str) and is_number(value):
        fix = "; drop the quotes"
    return f"{_kind(value)} where {expected} is expected{fix}"


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML config file with optional [model], [data] and [train] tables."""
    path = Path(path)
    try:  # a regular file of at most TOML_LIMIT bytes: never a folder or a FIFO, which would block
        values = tomllib.loads(read_bounded(path, "config file", TOML_LIMIT).decode())
    except FileNotFoundError:
        raise ConfigError(f"Config file {path} does not exist; check the path given to --config.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"Config file {path} is not UTF-8 text; save it as UTF-8 TOML.") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"Config file {path} is not valid TOML ({str(err)[:120]}); fix its syntax.") from None
    unknown = set(values) - {"family", "model", "data", "train"}
    if unknown:
        raise ConfigError(
            f"Config file {path} has unknown tables {shown(sorted(unknown))}; use only [model], [data] and [train]."
        )
    if "family" in values and not isinstance(values["family"], str):
        raise ConfigError(f"Config file {path} has family = {shown(values['family'])}; give a family name "
                          "in quotes, such as family = \"vae\", or drop the line.")
    for table in ("model", "data", "train"):
        if not isinstance(values.get(table, {}), dict):
            raise ConfigError(f"Config file {path} sets {table} = {shown(values[table])}; write its settings "
                              f"under a [{table}] table instead.")
    return values


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Nested dict merge: values in override win; None in override means 'not given'."""
    out = dict(base)
    for key, value in override.items():
        if value is None:
            continue
        if isinstance(value, dict):
            inner = out.get(key)
            out[key] = merge(inner if isinstance(inner, dict) else {}, value)
        else:
            out[key] = value
    return out
