"""The one registry of families, and the run config built from it (docs/ARCHITECTURE.md, "Families").

Each family module declares a `FAMILY` record beside its model class: the model, its config class,
a line of help and the training defaults that differ from TrainConfig's. Everything that needs to know
the families (config parsing here, `build_model`, the command line's flags and help, the report)
reads FAMILIES. Adding a family is one new module and one line below.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, SerializeAsAny, ValidationError, field_validator, model_validator

from ..config import DataConfig, Strict, StrictInt, TrainConfig, one_sentence, shown
from ..errors import ConfigError
from ..runtime import resolve_device
from ..toy import TOYS
from . import ae, classifier, footprint, gan, pca, stacked, vae
from .base import Family, Model, conditional_for_data

if TYPE_CHECKING:
    from ..dataset import DataSplits

FAMILIES: dict[str, Family] = {f.name: f for f in (
    vae.FAMILY,
    ae.FAMILY,
    stacked.FAMILY,
    pca.FAMILY,
    gan.FAMILY,
    classifier.FAMILY,
)}

# The family of the feature network whose activations the sample-quality metrics compare (genmodels.features).
FEATURE_NETWORK = classifier.FAMILY.name


def family(name: Any, where: str = "the given settings") -> Family:
    """The registered family called `name`, or a one-sentence ConfigError listing the known ones."""
    if not isinstance(name, str) or name not in FAMILIES:
        raise ConfigError(f"Bad config in {where}: unknown model family {shown(name)}; "
                          f"use one of {', '.join(FAMILIES)}.")
    return FAMILIES[name]


def families_that(*capabilities: str) -> str:
    """The names of the families whose models declare any of `capabilities` ("encodes", "samples"), for
    the error that tells a user which family to use instead."""
    return ", ".join(name for name, f in FAMILIES.items() if any(getattr(f.model, c) for c in capabilities))


def build_model(family_name: str, config: Any, shape: tuple[int, ...]) -> Model:
    """The family's model of `config` for images of `shape` (C, H, W) or vectors (D,), on the host; a one-sentence
    ConfigError, before anything is allocated, where its weights alone would not fit in the memory free there
    (models.footprint) or the family or its settings cannot take vectors (model_for_data)."""
    model_class = FAMILIES[family_name].model
    config = model_for_data(family_name, config, shape)
    footprint.check_weights(model_class, config, shape)
    return model_class(config, shape)


def model_for_data(family_name: str, config: Any, shape: tuple[int, ...], data: DataSplits | None = None) -> Any:
    """The model config as the family trains it on data of `shape`: for vectors (D,), Model.for_vectors (defaults
    that suit only images set for vectors), or a one-sentence ConfigError for a family or a setting that cannot
    take vectors; for images, `config` as it is. With `data`, a conditional config takes the data's classes and
    per-class counts (models.base.conditional_for_data; a DataError for data without labels)."""
    if data is not None:
        config = conditional_for_data(config, data)
    if len(shape) != 1:
        return config
    model_class = FAMILIES[family_name].model
    if not model_class.takes_vectors:
        raise ConfigError(f"The {family_name} family trains on images only, not vector data (N, D); use one of "
                          f"{families_that('takes_vectors')}.")
    return model_class.for_vectors(config)


# The largest image a run may describe, checked before a model is built from a saved shape: 2**26 values
# (an 8192 x 8192 grey image), 1 to 4 channels; vectors (D,) of at most 2**26 values too.
MAX_PIXELS, MAX_CHANNELS = 2**26, 4


def _model_config(family_name: str, model: Any) -> Any:
    """The family's model config: validated here from a dict (None: all defaults), else as given."""
    if model is None or isinstance(model, dict):
        return FAMILIES[family_name].config.model_validate(model or {})
    return model


class RunConfig(Strict):
    """Everything that describes a run: saved as RUN/config.json, it rebuilds the model alone.
    `build_run_config` is the way in for user input: it applies the family's training defaults and
    locates bad model settings as model.<key> in its one-sentence error."""

    family: str
    model: SerializeAsAny[Strict]  # the family's config (VAEConfig, ...)
    # Without pydantic's mypy plugin, mypy takes every field of a config as a required argument of its class;
    # each has a default, so calling the class with none is right.
    data: DataConfig = Field(default_factory=DataConfig)  # type: ignore[arg-type]
    train: TrainConfig = Field(default_factory=TrainConfig)  # type: ignore[arg-type]
    # (C, H, W) of the images or (D,) of the vectors, filled in when training starts; config.json's array is taken
    # for the tuple
    shape: tuple[StrictInt, ...] | None = Field(None, strict=False)
    version: str = "1"  # run directory format

    @model_validator(mode="before")
    @classmethod
    def _model_of_family(cls, values: Any) -> Any:
        if isinstance(values, dict) and values.get("family") in FAMILIES:
            values = {**values, "model": _model_config(values["family"], values.get("model"))}
        return values

    @field_validator("shape")
    @classmethod
    def _check_shape(cls, shape: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if shape is not None and len(shape) == 1 and not 1 <= shape[0] <= MAX_PIXELS:
            raise ValueError("a vector shape (D,) needs 1 to 2**26 values")
        if shape is not None and len(shape) != 1 and not (len(shape) == 3 and 1 <= shape[0] <= MAX_CHANNELS
                                                          and min(shape) >= 1 and math.prod(shape) <= MAX_PIXELS):
            raise ValueError(f"an image shape (C, H, W) needs 1 to {MAX_CHANNELS} channels, positive sides "
                             "and at most 2**26 values")
        return shape

    @model_validator(mode="after")
    def _check_model(self) -> RunConfig:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown model family {self.family!r}; use one of {', '.join(FAMILIES)}")
        if not isinstance(self.model, FAMILIES[self.family].config):
            raise ValueError(f"model settings must be a {FAMILIES[self.family].config.__name__}")
        return self

    def with_epochs(self, epochs: int) -> RunConfig:
        """The same run trained for `epochs` in all: the one setting a resumed run may change."""
        return self.model_copy(update={"train": self.train.model_copy(update={"epochs": epochs})})

    def total_epochs(self, epochs: int | None = None) -> int:
        """The epochs a run of this config trains in all, its family's pretraining phases included
        (Model.scheduled_epochs), when it asks for `epochs` (None: train.epochs); no model is built."""
        return FAMILIES[self.family].model.scheduled_epochs(self.model, self.train.epochs if epochs is None else epochs)

    def check_memory(self, data: DataSplits) -> None:
        """A one-sentence ConfigError where training this config's model on `data` would not fit in the memory free
        on its device (models.footprint); counted without building the model, so call it before any is built."""
        footprint.check_training(FAMILIES[self.family].model, self.model, self.train, data,
                                 resolve_device(self.train.device))

    def resume_settings(self) -> dict[str, Any]:
        """The settings this config gives a resumed run, as `engine.resume_run` takes them: family, model, data
        and train as JSON values, without train.epochs (resume_run takes the new total on its own) and without
        the shape and format version, which a run records itself."""
        return self.model_dump(mode="json", exclude={"shape": True, "version": True, "train": {"epochs": True}})

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2)


def build_run_config(values: dict[str, Any], where: str = "the given settings") -> RunConfig:
    """Validate a nested dict {family, model, data, train} into a RunConfig, or raise ConfigError.

    The family's training defaults (on a 2-D toy, its toy ones over them) fill in what `values["train"]` leaves
    out; the model settings are validated by the family's config class, so their errors are located as
    model.<key>."""
    if not isinstance(values, dict):
        raise ConfigError(f"Bad config in {where}: the settings are {shown(values)}, not an object of "
                          "family, model, data and train; give them as one.")
    fam = family(values.get("family"), where)
    for key in [k for k in ("model", "data", "train") if k in values]:  # model None: the defaults
        value = values[key]
        if not isinstance(value, (dict, BaseModel)) and not (key == "model" and value is None):
            raise ConfigError(f"Bad config in {where}: {key} = {shown(value)} is not an object of settings; "
                              f"give {key} as a table of keys and values (a JSON object or a TOML [{key}] table).")
    train = values.get("train", {})
    if isinstance(train, dict):
        data = values.get("data") or {}
        source = data.get("source") if isinstance(data, dict) else getattr(data, "source", None)
        toy = fam.toy_train_defaults if isinstance(source, str) and source in TOYS else {}
        values = {**values, "train": {**fam.train_defaults, **toy, **train}}
    errors: list[tuple[ValidationError, tuple]] = []  # every mistake, the model's and the other sections', at once
    try:
        values = {**values, "model": _model_config(fam.name, values.get("model"))}
    except ValidationError as err:
        errors.append((err, ("model",)))
        values = {**values, "model": fam.config()}  # the defaults stand in while the rest is checked
    try:
        config = RunConfig.model_validate(values)
    except ValidationError as err:
        errors.append((err, ()))
    if errors:
        raise ConfigError(one_sentence(errors, where)) from None
    return config
