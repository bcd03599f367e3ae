"""Networks from the user's own code, named by import path (docs/guide.md, "Your own networks").

A family's config names a slot's factory as `package.module:callable` plus a JSON object of keyword arguments
(`--encoder pkg.mod:fn --encoder-kwargs '{"width": 64}'`, a TOML `[model.encoder]` table of `target` and `kwargs`,
or the same keys in Python). The callable is imported with importlib, by module name only: never from a file path,
and nothing is added to sys.path, so a run directory's files are never imported. No pickle is involved: the weights
stay safetensors and config.json records the import path, the keyword arguments and the package (and version)
that provided the factory, so the run rebuilds wherever that package is installed.

The contract of each slot (checked on a batch of two when the model is built, before a run directory is touched):
- encoder: factory(shape=(C, H, W), **kwargs) -> module, images (B, C, H, W) in [0, 1] -> features (B, F);
  the family adds its code head (the VAE's mean and log-variance, the autoencoder's code layer) on F.
- decoder, generator: factory(shape=(C, H, W), latent_dim=k, **kwargs) -> module, codes (B, k) -> pixel logits
  (or a Gaussian's means before the sigmoid) (B, C, H, W); the family applies its output distribution.
- discriminator: factory(shape=(C, H, W), **kwargs) -> module, images (B, C, H, W) -> logits (B,) or (B, 1).
On vector data (dataset.py) shape is (D,) and images are standardised vectors (B, D), in and out alike.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import re
import warnings
from typing import Any

import torch
from pydantic import Field, ValidationInfo, field_validator, model_validator
from torch import nn

from ..config import Strict
from ..errors import ConfigError

SLOTS = ("encoder", "decoder", "generator", "discriminator")
TARGET = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
CHECK_BATCH = 2  # images (or codes) in the batch each slot is checked on
RESERVED = {"encoder": ("shape",), "discriminator": ("shape",),
            "decoder": ("shape", "latent_dim"), "generator": ("shape", "latent_dim")}
CONTRACT = {"encoder": "factory(shape=(C, H, W), **kwargs): images (B, C, H, W) -> features (B, F)",
            "decoder": "factory(shape=(C, H, W), latent_dim=k, **kwargs): codes (B, k) -> logits (B, C, H, W)",
            "generator": "factory(shape=(C, H, W), latent_dim=k, **kwargs): codes (B, k) -> logits (B, C, H, W)",
            "discriminator": "factory(shape=(C, H, W), **kwargs): images (B, C, H, W) -> logits (B,) or (B, 1)"}


def target_field(slot: str) -> Any:
    """The config field naming a slot's factory (flag --<slot>)."""
    return Field(None, description=f"your own {slot}: package.module:callable, imported by name (never from a file), "
                                   f"called as {CONTRACT[slot]}; none: genmodels' own network (docs/guide.md)")


def kwargs_field(slot: str) -> Any:
    """The config field holding a slot's keyword arguments as JSON text (flag --<slot>-kwargs)."""
    return Field("{}", description=f"keyword arguments of the --{slot} factory, a JSON object, "
                                   "e.g. '{\"width\": 64}'")


def packages_field() -> Any:
    return Field({}, description="the package (and version) that provided each factory, recorded when a run starts",
                 json_schema_extra={"config_only": "recorded from the installed package when the config is made"})


class FactorySlots(Strict):
    """A family config with factory slots: each slot `s` declares `s: str | None` (target_field), `s_kwargs: str`
    (kwargs_field) and the config has `factory_packages: dict[str, str]` (packages_field)."""

    @model_validator(mode="before")
    @classmethod
    def _slots_as_fields(cls, values: Any) -> Any:
        """A `[model.<slot>]` table of target and kwargs as the two fields; the providing package recorded where the
        config does not hold it yet, and dropped for a slot left empty (a config copied and changed)."""
        if not isinstance(values, dict):
            return values
        values = dict(values)
        packages = values.get("factory_packages", {})
        for slot in (s for s in SLOTS if s in cls.model_fields):
            spec = values.get(slot)
            if isinstance(spec, dict):
                values[slot] = _table_target(slot, spec)
                values.setdefault(f"{slot}_kwargs", spec.get("kwargs", {}))
            target = values[slot] if isinstance(values.get(slot), str) else None
            if not isinstance(packages, dict):
                continue  # refused by the field's own type check
            if target is None:
                packages = {k: v for k, v in packages.items() if k != slot}
            elif TARGET.match(target) and slot not in packages:
                packages = {**packages, slot: provider(target)}
        if "factory_packages" in values or packages:
            values["factory_packages"] = packages
        return values

    @field_validator(*SLOTS, mode="after", check_fields=False)
    @classmethod
    def _import_path(cls, target: str | None) -> str | None:
        if target is not None and not TARGET.match(target):
            raise ValueError("not an import path; write it as package.module:callable, such as mypkg.nets:encoder")
        return target

    @field_validator(*(f"{s}_kwargs" for s in SLOTS), mode="before", check_fields=False)
    @classmethod
    def _kwargs(cls, value: Any, info: ValidationInfo) -> Any:
        slot = str(info.field_name).removesuffix("_kwargs")
        text = canonical_kwargs(value)
        taken = [k for k in RESERVED[slot] if k in json.loads(text)]
        if taken:
            raise ValueError(f"sets {', '.join(taken)}, which genmodels passes to the factory itself; leave "
                             f"{'it' if len(taken) == 1 else 'them'} out")
        return text

    @model_validator(mode="after")
    def _check_slots(self) -> FactorySlots:
        for slot in (s for s in SLOTS if s in type(self).model_fields):
            if getattr(self, slot) is None and getattr(self, f"{slot}_kwargs") != "{}":
                raise ValueError(f"{slot}_kwargs are given without {slot}; name the factory with --{slot} "
                                 "package.module:callable")
        return self


def _table_target(slot: str, spec: dict[str, Any]) -> Any:
    unknown = set(spec) - {"target", "kwargs"}
    if unknown:
        raise ValueError(f"the [model.{slot}] table takes target and kwargs, not "
                         f"{', '.join(sorted(map(str, unknown)))}")
    return spec.get("target")


def canonical_kwargs(value: Any) -> str:
    """Keyword arguments (a dict, or JSON text of an object) as JSON text with sorted keys, so that the same
    arguments always compare equal; a ValueError for anything else."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(f"not valid JSON ({err.msg}); give a JSON object such as '{{\"width\": 64}}'") from None
    if not isinstance(value, dict):
        raise ValueError("not a JSON object; give the keyword arguments as one, such as '{\"width\": 64}'")
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        raise ValueError("holds a value JSON cannot write (a date, NaN or infinity); give numbers, strings, "
                         "booleans, lists and objects only") from None


def _said(err: BaseException) -> str:
    """An exception from the user's code as one line of a sentence: its type and its message, cut short."""
    return f"{type(err).__name__}: {' '.join(str(err).split())[:200]}"


def provider(target: str) -> str:
    """The installed distribution (and its version) that holds the module of `target`, as config.json records it;
    a module found on PYTHONPATH but installed by no distribution says so. Nothing is imported."""
    top = target.split(":")[0].split(".")[0]
    dists = importlib.metadata.packages_distributions().get(top, [])
    try:
        return f"{dists[0]} {importlib.metadata.version(dists[0])}"
    except (IndexError, importlib.metadata.PackageNotFoundError):
        return f"{top} (no installed distribution: found on the import path)"


def load(slot: str, target: str) -> Any:
    """The callable named by `target` (package.module:callable), imported by module name; a one-sentence
    ConfigError naming the factory and its package where it cannot be."""
    module_name, _, attr = target.partition(":")
    package = module_name.split(".")[0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise ConfigError(f"The {slot} factory {target} cannot be imported, as module {err.name or module_name} is "
                          f"not found; install package {package} (or the one that provides {module_name}), or put "
                          f"the folder above {package} on PYTHONPATH.") from None
    except Exception as err:  # the user's module itself fails to import: its error, in one sentence
        raise ConfigError(f"The {slot} factory {target} cannot be imported: importing {module_name} (package "
                          f"{package}) raised {_said(err)}; fix that module.") from None
    found: Any = module
    for name in attr.split("."):
        if not hasattr(found, name):
            raise ConfigError(f"The {slot} factory {target} cannot be imported: {module_name} (package {package}) "
                              f"has no {attr}; check the name after the colon.")
        found = getattr(found, name)
    if not callable(found):
        raise ConfigError(f"The {slot} factory {target} is a {type(found).__name__}, not a callable; name a "
                          "function or class that returns a torch.nn.Module.")
    return found


def _on_meta() -> bool:
    """Whether tensors are being made on the meta device (models.footprint counts a model there)."""
    return torch.empty(()).device.type == "meta"


def _meta_errors() -> tuple[type[Exception], ...]:
    """What a network may raise on the meta device and not on a real one: passed on, so that models.footprint gives
    up counting and the real build (before any run directory is touched) checks the network instead."""
    return (RuntimeError, NotImplementedError) if _on_meta() else ()


def build(config: Any, slot: str, shape: tuple[int, ...], latent_dim: int | None = None) -> nn.Module:
    """The module the config's `slot` factory returns for images of `shape` (and codes of `latent_dim`)."""
    target = getattr(config, slot)
    kwargs = json.loads(getattr(config, f"{slot}_kwargs"))
    _warn_if_changed(config, slot, target)
    factory = load(slot, target)
    given = {"shape": tuple(shape), **({} if latent_dim is None else {"latent_dim": latent_dim})}
    try:
        module = factory(**given, **kwargs)
    except _meta_errors():
        raise
    except Exception as err:
        args = ", ".join(f"{k}={v!r}" for k, v in {**given, **kwargs}.items())
        raise ConfigError(f"The {slot} factory {target} failed when called with {args[:200]}: "
                          f"{_said(err)}; check --{slot}-kwargs.") from None
    if not isinstance(module, nn.Module):
        raise ConfigError(f"The {slot} factory {target} returned a {type(module).__name__}, not a torch.nn.Module; "
                          f"return a module ({CONTRACT[slot]}).")
    return module


def _warn_if_changed(config: Any, slot: str, target: str) -> None:
    recorded = config.factory_packages.get(slot)
    if recorded is not None and not _on_meta() and (now := provider(target)) != recorded:
        warnings.warn(f"The {slot} factory {target} now comes from {now}, and the run was made with {recorded}; "
                      "its weights may not fit the network it builds now.", RuntimeWarning, stacklevel=3)


def _output(slot: str, target: str, module: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The module's output on `inputs`, in eval mode and without gradients (so no running statistics move)."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = module(inputs)
    except _meta_errors():
        raise
    except Exception as err:
        raise ConfigError(f"The {slot} from {target} fails on a batch of {tuple(inputs.shape)}: "
                          f"{_said(err)}; it must map {CONTRACT[slot].split(': ')[1]}.") \
            from None
    finally:
        module.train(was_training)
    if not isinstance(out, torch.Tensor):
        raise ConfigError(f"The {slot} from {target} returned a {type(out).__name__} on a batch of "
                          f"{tuple(inputs.shape)}, not a tensor; it must map {CONTRACT[slot].split(': ')[1]}.")
    return out


def _wrong_shape(slot: str, target: str, expected: str, out: torch.Tensor) -> ConfigError:
    return ConfigError(f"The {slot} from {target} gives shape {tuple(out.shape)} on a batch of {CHECK_BATCH}, where "
                       f"{expected} is expected; make it map {CONTRACT[slot].split(': ')[1]}.")


def encoder(config: Any, shape: tuple[int, ...]) -> tuple[nn.Module, int]:
    """The config's encoder and its feature size F, checked: (2, C, H, W) -> (2, F)."""
    module = build(config, "encoder", shape)
    out = _output("encoder", config.encoder, module, torch.full((CHECK_BATCH, *shape), 0.5))
    if out.dim() != 2 or out.shape[0] != CHECK_BATCH or out.shape[1] < 1:
        raise _wrong_shape("encoder", config.encoder, f"({CHECK_BATCH}, F)", out)
    return module, int(out.shape[1])


def decoder(config: Any, shape: tuple[int, ...], latent_dim: int, slot: str = "decoder") -> nn.Module:
    """The config's decoder (or generator, `slot`), checked: (2, latent_dim) -> (2, C, H, W)."""
    module = build(config, slot, shape, latent_dim)
    out = _output(slot, getattr(config, slot), module, torch.zeros(CHECK_BATCH, latent_dim))
    if tuple(out.shape) != (CHECK_BATCH, *shape):
        raise _wrong_shape(slot, getattr(config, slot), str((CHECK_BATCH, *shape)), out)
    return module


def discriminator(config: Any, shape: tuple[int, ...]) -> nn.Module:
    """The config's discriminator, checked: (2, C, H, W) -> (2,) or (2, 1); returned giving (B,)."""
    module = build(config, "discriminator", shape)
    out = _output("discriminator", config.discriminator, module, torch.full((CHECK_BATCH, *shape), 0.5))
    if tuple(out.shape) not in ((CHECK_BATCH,), (CHECK_BATCH, 1)):
        raise _wrong_shape("discriminator", config.discriminator, f"({CHECK_BATCH},) or ({CHECK_BATCH}, 1)", out)
    return nn.Sequential(module, nn.Flatten(0))
