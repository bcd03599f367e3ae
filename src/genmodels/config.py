"""Typed configs, validated once at the boundary and saved as JSON in the run directory.

A run is described entirely by a `RunConfig`: which family, its model config,
the data source and the training settings. Any command rebuilds the model from
`RUN/config.json` alone (DESIGN.md rule 5).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError


class _Strict(BaseModel):
    # Unknown keys are errors, not silently ignored: a typo must not train the wrong model.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Strict):
    source: str = "digits"  # digits | fashion-mnist | mnist | path to an IDX folder, .npy/.npz or image folder
    data_dir: str | None = None  # folder of IDX files for fashion-mnist / mnist


class TrainConfig(_Strict):
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(100, ge=1)
    lr: float = Field(1e-3, gt=0)  # Adam learning rate
    lr_schedule: Literal["constant", "cosine"] = "constant"  # cosine: lr * (1 + cos(pi * epoch / epochs)) / 2 per epoch
    betas: tuple[float, float] = (0.9, 0.999)  # Adam betas
    grad_clip: float | None = Field(None, gt=0)  # clip each optimizer's gradient norm to this before its step
    seed: int = 0  # seeds weights, batch order and every sample drawn in training
    device: str = "cpu"  # cpu | cuda | cuda:N | auto
    threads: int | None = Field(None, ge=1)  # torch intra-op threads; None keeps torch's default (one per core)
    log_every: int = Field(50, ge=1)  # steps between logged records (one host sync each)
    eval_batch_size: int = Field(1000, ge=1)
    # torch.compile the model's forward for training steps: opt-in, as it costs a compile (12 s for the
    # MLP VAE on 2 CPU cores, cold cache) and paid 1.07x for the MLP VAE but lost for the conv VAE and
    # the DCGAN (README, Performance)
    compile: bool = False

    @model_validator(mode="after")
    def _check_betas(self) -> "TrainConfig":
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"Adam betas must lie in [0, 1), got {self.betas}")
        return self


class VAEConfig(_Strict):
    """Variational autoencoder (Kingma & Welling 2013)."""

    arch: Literal["mlp", "conv"] = "mlp"
    latent_dim: int = Field(16, ge=1)
    hidden: list[int] = Field(default_factory=lambda: [512])  # MLP hidden widths, input side first
    channels: list[int] = Field(default_factory=lambda: [32, 64])  # conv channels, input side first
    likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"  # p(x|z)
    binarize: bool = False  # dynamic binarisation: x ~ Bernoulli(pixel) afresh each batch (bernoulli only)
    gaussian_std: float = Field(1.0, gt=0)  # fixed std of p(x|z) for the gaussian likelihood (initial if learned)
    learn_std: bool = False  # learn one std per pixel instead of the fixed value
    beta: float = Field(1.0, ge=0)  # weight of the KL term (beta-VAE, Higgins et al. 2017); 1 is the ELBO

    @model_validator(mode="after")
    def _check(self) -> "VAEConfig":
        if any(h < 1 for h in self.hidden) or any(c < 1 for c in self.channels):
            raise ValueError("hidden widths and channels must be positive integers")
        if self.arch == "conv" and not self.channels:
            raise ValueError("a conv network needs at least one entry in channels")
        if self.binarize and self.likelihood != "bernoulli":
            raise ValueError("binarize applies to the bernoulli likelihood only")
        return self


class AEConfig(_Strict):
    """Autoencoder with optional regularisers, combinable in one run."""

    arch: Literal["mlp", "conv"] = "mlp"
    latent_dim: int = Field(30, ge=1)  # code size: below the input size is undercomplete, above overcomplete
    hidden: list[int] = Field(default_factory=lambda: [512])  # MLP hidden widths, input side first
    channels: list[int] = Field(default_factory=lambda: [32, 64])  # conv channels, input side first
    code_activation: Literal["linear", "sigmoid", "relu"] = "linear"  # h = act(W x + b) at the code layer
    loss: Literal["mse", "bce"] = "mse"  # ||x - g(f(x))||^2, or Bernoulli cross-entropy on logits
    weight_decay: float = Field(0.0, ge=0)  # beta in beta * ||w||^2, reported as its own term
    corrupt: list[str] = Field(default_factory=list)  # denoising q_D, e.g. ["mask:0.25", "gauss:0.1"]
    contractive: float = Field(0.0, ge=0)  # lambda in lambda * ||J_f(x)||_F^2 (Rifai et al. 2011)
    contractive_method: Literal["auto", "exact", "projection"] = "auto"  # auto: closed form where it applies
    contractive_projections: int = Field(1, ge=1)  # random projections per image for the estimate
    sparse_l1: float = Field(0.0, ge=0)  # weight of sum_j |h_j|
    sparse_kl: float = Field(0.0, ge=0)  # beta in beta * sum_j KL(rho || rho_hat_j); needs sigmoid codes
    sparse_rho: float = Field(0.05, gt=0, lt=1)  # target mean activation rho

    @model_validator(mode="after")
    def _check(self) -> "AEConfig":
        from .models.regularisers import parse_corruption

        for spec in self.corrupt:
            parse_corruption(spec)  # raises a ConfigError naming the bad corruption
        if self.sparse_kl > 0 and self.code_activation != "sigmoid":
            raise ValueError("sparse_kl needs code_activation = sigmoid (rho_hat is a mean activation in (0, 1))")
        return self


class SDAEConfig(_Strict):
    """Stacked denoising autoencoder (Vincent et al. 2010): greedy layer-wise denoising pretraining,
    then fine-tuning of the whole stack. train.epochs counts the fine-tuning epochs; the
    len(layers) * pretrain_epochs pretraining epochs run before them."""

    layers: list[int] = Field(default_factory=lambda: [1000, 500, 250, 30])  # widths, input side first; last = code
    activation: Literal["sigmoid", "relu"] = "sigmoid"  # hidden units (Vincent et al. 2010 use sigmoid)
    code_activation: Literal["linear", "sigmoid", "relu"] = "linear"  # the code layer (Hinton & Salakhutdinov 2006: linear)
    corrupt: list[str] = Field(default_factory=lambda: ["mask:0.25"])  # q_D applied to each layer's input in pretraining
    pretrain_epochs: int = Field(5, ge=0)  # per layer; 0 skips pretraining (a randomly initialised deep AE)
    loss: Literal["mse", "bce"] = "mse"  # in pixel space: layer 1's pretraining and unsupervised fine-tuning
    finetune: Literal["reconstruction", "supervised"] = "reconstruction"  # unrolled AE, or encoder + softmax head
    classes: int = Field(10, ge=2)  # softmax outputs for supervised fine-tuning

    @model_validator(mode="after")
    def _check(self) -> "SDAEConfig":
        from .models.regularisers import parse_corruption

        if not self.layers or any(w < 1 for w in self.layers):
            raise ValueError("layers must be one or more positive widths, e.g. 1000,500,250,30")
        for spec in self.corrupt:
            parse_corruption(spec)
        return self


class PCAConfig(_Strict):
    """Principal component analysis: the linear autoencoder, solved exactly (one pass over the data)."""

    latent_dim: int = Field(30, ge=1)  # number of principal components kept


class GANConfig(_Strict):
    """Generative adversarial network (Goodfellow et al. 2014): generator G(z), discriminator D(x)."""

    arch: Literal["mlp", "conv"] = "mlp"  # conv: DCGAN-style nets (Radford et al. 2015)
    latent_dim: int = Field(100, ge=1)  # size of z
    hidden: list[int] = Field(default_factory=lambda: [512, 256])  # MLP widths, image side first: D x-512-256-1, G mirrors it
    channels: list[int] = Field(default_factory=lambda: [64, 128])  # conv channels, image side first (D); G mirrors them
    prior: Literal["normal", "uniform"] = "normal"  # p_z: N(0, I), or uniform on [-1, 1]^latent_dim
    loss: Literal["minimax", "non-saturating"] = "non-saturating"  # generator loss (Goodfellow et al. 2014, section 3)
    d_steps: int = Field(1, ge=1)  # k: discriminator updates per generator update (Algorithm 1)
    label_smoothing: float = Field(0.0, ge=0, lt=1)  # one-sided: D's target for real images is 1 - this (Salimans et al. 2016)
    lr_d: float | None = Field(None, gt=0)  # discriminator learning rate; None uses train.lr for both nets

    @model_validator(mode="after")
    def _check(self) -> "GANConfig":
        if any(h < 1 for h in self.hidden) or any(c < 1 for c in self.channels):
            raise ValueError("hidden widths and channels must be positive integers")
        if self.arch == "conv" and not self.channels:
            raise ValueError("a conv network needs at least one entry in channels")
        return self


class ClassifierConfig(_Strict):
    """The feature network of the sample-quality metrics: a small classifier trained per dataset
    (genmodels.features); its penultimate activations are the features FID, KID, precision/recall and
    density/coverage compare, and its predictions give the class histogram of samples."""

    arch: Literal["auto", "conv", "mlp"] = "auto"  # auto: conv for images of 16 px a side or more, else mlp
    channels: list[int] = Field(default_factory=lambda: [32, 64])  # conv: 3x3 conv + 2x2 max-pool per entry
    hidden: list[int] = Field(default_factory=lambda: [256])  # mlp: hidden widths before the feature layer
    feature_dim: int = Field(128, ge=2)  # width of the penultimate layer: the features
    classes: int = Field(10, ge=2)  # softmax outputs

    @model_validator(mode="after")
    def _check(self) -> "ClassifierConfig":
        if any(h < 1 for h in self.hidden) or any(c < 1 for c in self.channels):
            raise ValueError("hidden widths and channels must be positive integers")
        if self.arch == "conv" and not self.channels:
            raise ValueError("a conv network needs at least one entry in channels")
        return self


# family name -> its model config; the model classes register in genmodels.models.
MODEL_CONFIGS: dict[str, type[BaseModel]] = {
    "vae": VAEConfig, "ae": AEConfig, "sdae": SDAEConfig, "pca": PCAConfig, "gan": GANConfig,
    "classifier": ClassifierConfig,
}
# Training defaults that differ by family; values given in flags or a config file still win, and the
# run's config.json records the values used. GAN: Adam lr 2e-4, beta1 0.5 (Radford et al. 2015, section 4).
# PCA: one pass gathers the statistics of its exact solution; more epochs change nothing.
FAMILY_TRAIN_DEFAULTS: dict[str, dict[str, Any]] = {"gan": {"lr": 2e-4, "betas": (0.5, 0.999)}, "pca": {"epochs": 1}}
# The feature classifier: 5 cosine-annealed epochs reach >= 0.90 test accuracy on Fashion-MNIST (README).
FAMILY_TRAIN_DEFAULTS["classifier"] = {"epochs": 5, "lr_schedule": "cosine"}


class RunConfig(_Strict):
    family: str
    model: Any
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    shape: tuple[int, int, int] | None = None  # (C, H, W) of the data, filled in when training starts
    version: str = "1"  # run directory format

    @model_validator(mode="before")
    @classmethod
    def _model_for_family(cls, values: Any) -> Any:
        if isinstance(values, dict):
            family = values.get("family")
            if family not in MODEL_CONFIGS:
                raise ValueError(f"unknown model family {family!r}; known: {', '.join(MODEL_CONFIGS)}")
            model = values.get("model") or {}
            if isinstance(model, dict):
                values = {**values, "model": MODEL_CONFIGS[family].model_validate(model)}
        return values

    def with_epochs(self, epochs: int) -> "RunConfig":
        """The same run trained for `epochs` in all: the one setting a resumed run may change."""
        return self.model_copy(update={"train": self.train.model_copy(update={"epochs": epochs})})

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2)


def _one_sentence(err: ValidationError, where: str, prefix: tuple = ()) -> str:
    items = []
    for e in err.errors():
        loc = ".".join(str(p) for p in (*prefix, *e["loc"])) or "config"
        msg = e["msg"].removeprefix("Value error, ")
        items.append(f"{loc} ({msg})" if "input" not in e else f"{loc} = {e['input']!r} ({msg})")
    return f"Bad config in {where}: {'; '.join(items)}; fix these values and run again."


def build_run_config(values: dict[str, Any], where: str = "the given settings") -> RunConfig:
    """Validate a nested dict {family, model, data, train} into a RunConfig, or raise ConfigError."""
    family, model = values.get("family"), values.get("model") or {}
    if not isinstance(family, str) or family not in MODEL_CONFIGS:
        raise ConfigError(f"Bad config in {where}: unknown model family {family!r}; "
                          f"use one of {', '.join(MODEL_CONFIGS)}.")
    if family in FAMILY_TRAIN_DEFAULTS and isinstance(values.get("train", {}), dict):
        values = merge({"train": FAMILY_TRAIN_DEFAULTS[family]}, values)  # the family's defaults; given values win
    if family in MODEL_CONFIGS and isinstance(model, dict):
        try:  # validated on its own first, so its errors are located as model.<key>
            values = {**values, "model": MODEL_CONFIGS[family].model_validate(model)}
        except ValidationError as err:
            raise ConfigError(_one_sentence(err, where, ("model",))) from None
    try:
        return RunConfig.model_validate(values)
    except ValidationError as err:
        raise ConfigError(_one_sentence(err, where)) from None


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML config file with optional [model], [data] and [train] tables."""
    path = Path(path)
    try:
        values = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"Config file {path} does not exist; check the path given to --config.") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"Config file {path} is not valid TOML ({err}); fix its syntax.") from None
    unknown = set(values) - {"family", "model", "data", "train"}
    if unknown:
        raise ConfigError(
            f"Config file {path} has unknown tables {sorted(unknown)}; use only [model], [data] and [train]."
        )
    return values


def load_run_config(path: str | Path) -> RunConfig:
    """Read RUN/config.json."""
    path = Path(path)
    try:
        values = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist; is {path.parent} a genmodels run directory?") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConfigError(f"{path} is not valid JSON; the run directory is damaged, retrain it.") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path} does not hold a JSON object; the run directory is damaged, retrain it.")
    return build_run_config(values, where=str(path))


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Nested dict merge: values in override win; None in override means 'not given'."""
    out = dict(base)
    for key, value in override.items():
        if value is None:
            continue
        if isinstance(value, dict):
            out[key] = merge(out.get(key) if isinstance(out.get(key), dict) else {}, value)
        else:
            out[key] = value
    return out
