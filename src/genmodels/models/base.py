"""What every family is to the rest of genmodels: a `Model` the engine trains, its declared
capabilities, and the `Family` record that registers it (docs/ARCHITECTURE.md, "Families").

A model's forward takes a batch of images in [0, 1], shape (B, C, H, W) (or, for a family that `takes_vectors`,
standardised vectors (B, D)), and returns a
`StepOutput`: the scalar loss to minimise plus named parts for the logs, so the engine never
asks which family it trains. What a model can do beyond training (encode, sample, ...) is
declared in class attributes that callers read; they never find out by catching an error, so
an exception raised inside `sample()` is a real bug and propagates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import torch
from pydantic import BaseModel, Field
from torch import nn

from ..errors import ConfigError, DataError, GenmodelsError
from ..optim import make_adam

if TYPE_CHECKING:
    from ..config import TrainConfig
    from ..data import Batch, Dataset
    from ..dataset import DataSplits
    from ..optim import StepContext


DIVERSITY_PANEL = "diversity of the 64 fixed-noise samples (1: as varied as 64 test images)"


@dataclass
class StepOutput:
    loss: torch.Tensor  # scalar, what the optimiser minimises
    parts: dict[str, torch.Tensor] = field(default_factory=dict)  # scalar terms for the logs, detached


class Images(Protocol):
    """Held-out images as `evaluate` reads them: a float tensor (N, C, H, W) in [0, 1], or a view sliced like one
    (evaluation.SplitView, which reads each slice from a split that may be memory-mapped)."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def __len__(self) -> int: ...

    def __getitem__(self, rows: slice, /) -> torch.Tensor: ...


@dataclass(frozen=True)
class EvalOptions:
    """How a family's own test metrics are computed (`Model.evaluate`); `genmodels evaluate`'s flags set them."""

    importance_samples: int = 1000  # K of the VAE's importance-weighted log-likelihood bound (Burda et al. 2015)
    batch_size: int = 100  # held-out images per forward pass
    progress: bool = False  # a progress bar on a terminal over a long evaluation (the VAE's bound)
    # K of the conditional VAE's Bayes classifier: every test image costs classes x K decoder passes
    bayes_samples: int = 100


EVAL_DEFAULTS = EvalOptions()  # frozen, so one instance serves as every evaluate's default


def require_labels(data: Dataset, classes: int, why: str, fix: str) -> None:
    """A one-sentence DataError unless every image of `data` has a label in [0, classes).
    why: what needs the labels ("Supervised fine-tuning"); fix: what to do without them."""
    if data.labels is None:
        raise DataError(f"{why} needs labels, and {data.name} has none; {fix}.")
    if len(data) and int(data.labels.max()) >= classes:
        top = int(data.labels.max())
        raise DataError(f"{data.name} has label {top} but the model has {classes} classes; give --classes {top + 1}.")


# -- conditioning on a class label (conditional VAE and GAN: model.conditional) ----------------------------------
def conditional_field() -> Any:
    return Field(False, description="condition on the class label: model p(x | y), sample a class asked for "
                                    "(needs labelled data)")


def classes_field() -> Any:
    return Field(None, ge=2, description="conditional: the number of classes; none: the data's (recorded)")


def class_counts_field() -> Any:
    return Field(None, description="conditional: training images per class, recorded from the data; samples "
                                   "drawn without a class take labels in these proportions",
                 json_schema_extra={"config_only": "recorded by training from the labels of the data it reads"})


def check_conditional(config: Any) -> None:
    """A ValueError (located by the config's validator) for class counts that do not match the classes."""
    counts = config.class_counts
    if counts is not None and (config.classes is None or len(counts) != config.classes or min(counts) < 0
                               or sum(counts) <= 0):
        raise ValueError("class_counts needs one non-negative count per class, not all zero")


def conditional_for_data(config: Any, data: DataSplits) -> Any:
    """A conditional config with the classes and per-class counts of `data` filled in (those recorded stay); a
    one-sentence DataError where the data have no labels. Any other config as it is."""
    if not getattr(config, "conditional", False) or config.class_counts is not None:
        return config
    if data.num_classes is None or data.train.labels is None:
        raise DataError(f"A conditional model (--conditional) needs labels, and {data.source} has none; use a "
                        "labelled data source (an image folder with one subfolder per class, say) or drop "
                        "--conditional.")
    classes = config.classes or data.num_classes
    require_labels(data.train, classes, "A conditional model", "drop --conditional")
    counts = torch.bincount(data.train.labels.cpu(), minlength=classes).tolist()
    return config.model_copy(update={"classes": classes, "class_counts": counts})


def one_hot(labels: torch.Tensor, classes: int, like: torch.Tensor) -> torch.Tensor:
    """Labels (B,) as one-hot rows (B, classes) of like's dtype and device: how y enters a network."""
    return nn.functional.one_hot(labels.to(like.device).long(), classes).to(like.dtype)


class Model(nn.Module):
    """What the one engine trains: any family, generative or not (the feature classifier)."""

    family: ClassVar[str]

    # -- declared capabilities: read these instead of calling and catching ---------------------------------
    encodes: ClassVar[bool] = False  # encode(x) -> codes (B, latent_dim), decode(z), reconstruct(x)
    samples: ClassVar[bool] = False  # prior_sample(n), sample(n), decode(z)
    needs_labels: bool = False  # each training batch carries its labels (an instance may decide, from its config)
    resumes_mid_epoch: ClassVar[bool] = True  # a step changes nothing the checkpoint lacks: stop and resume anywhere
    # evaluate compares its codes with PCA's of the same size (PCA, the baseline itself: False)
    has_pca_baseline: ClassVar[bool] = True
    # trains on vector data (N, D) as well as images: the shape it is built for is then (D,) (for_vectors)
    takes_vectors: ClassVar[bool] = False

    def __init__(self, config: Any, shape: tuple[int, ...]):
        super().__init__()
        self.config = config
        if len(shape) not in (1, 3):
            raise ConfigError(f"A model is built for images (C, H, W) or vectors (D,), not shape {tuple(shape)}.")
        self.shape: tuple[int, ...] = tuple(int(d) for d in shape)

    @property
    def vectors(self) -> bool:
        """Whether the model was built for vectors (D,): unbounded standardised values, so linear outputs."""
        return len(self.shape) == 1

    @classmethod
    def for_vectors(cls, config: Any) -> Any:
        """The model config `config` as it trains on vector data: a setting whose default suits only images is set
        for vectors (a VAE's likelihood), one set explicitly that cannot work on vectors (a conv network, a
        Bernoulli decoder) is refused in one sentence (ConfigError). Called for a family that takes_vectors."""
        return config

    @staticmethod
    def refuse_for_vectors(config: Any, key: str, value: Any, why: str, fix: str) -> None:
        """A one-sentence ConfigError where config.<key> is `value`, which vector data cannot take."""
        if getattr(config, key) == value:
            raise ConfigError(f"{key} = {value!r} {why}, so it cannot train on vector data (N, D); {fix}.")

    @property
    def decodes(self) -> bool:
        """decode(z) maps codes to images: every model that encodes or samples."""
        return self.encodes or self.samples

    # -- training -------------------------------------------------------------
    def make_optimizers(self, train: TrainConfig, device: torch.device) -> dict[str, torch.optim.Optimizer]:
        return {"main": make_adam(self.parameters(), train, device)}

    @classmethod
    def with_code_size(cls, settings: dict[str, Any], latent_dim: int) -> dict[str, Any]:
        """Model settings `settings` changed to give codes of `latent_dim` dimensions (the scikit-learn
        transformer's latent_dim): its latent_dim field, unless a family keeps the code size elsewhere."""
        return {**settings, "latent_dim": latent_dim}

    @classmethod
    def scheduled_epochs(cls, config: Any, epochs: int) -> int:
        """Epochs the engine runs when a run with this family's model config `config` asks for `epochs`; a
        model with pretraining phases (the stacked denoising autoencoder) runs them before the asked-for
        epochs. A function of the config alone, so it is answered without building a model
        (RunConfig.total_epochs)."""
        return epochs

    def total_epochs(self, epochs: int) -> int:
        """Epochs the engine runs for this model when its config asks for `epochs` (scheduled_epochs)."""
        return self.scheduled_epochs(self.config, epochs)

    def start_epoch(self, epoch: int) -> None:
        """Called before each epoch's steps (0-based), also on resume: models with phases pick theirs."""

    def finish_epoch(self) -> None:
        """Called after each epoch's steps, before evaluation (PCA solves for its components here)."""

    def check_data(self, data: Dataset) -> None:
        """Raise a one-sentence DataError if this model cannot train on `data` (missing labels, say)."""

    def step_output(self, batch: Batch, forward=None) -> StepOutput:
        """The forward on a batch: with its labels for a model that needs them. forward: the (compiled)
        module to call instead of self."""
        forward = forward or self
        return forward(batch.x, batch.labels) if self.needs_labels else forward(batch.x)

    def train_step(self, batch: Batch, ctx: StepContext) -> dict[str, torch.Tensor]:
        """One optimisation step on a batch; returns the detached parts to log.

        Families with several optimisers (GAN) or phases (stacked AE) override this and use ctx.step(...)."""
        out = self.step_output(batch, ctx.forward)
        ctx.step(out.loss, "main")
        return out.parts

    def eval_input(self, x: torch.Tensor) -> torch.Tensor:
        """Held-out images as the model is evaluated on them (a fixed binarisation, say)."""
        return x

    @torch.inference_mode()
    def eval_parts(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The logged parts on a held-out batch, without gradients."""
        return self.step_output(batch).parts

    # What a run's warning suggests when its fixed-noise samples all look alike (engine, "diversity").
    collapse_advice: ClassVar[str] = "look at the loss curve (loss.png) and train longer or with a lower --lr"

    @property
    def curves(self) -> dict[str, tuple[str, ...]]:
        """The panels of loss.png and of the report's training curves: title -> logged keys."""
        panels: dict[str, tuple[str, ...]] = {"loss": ("loss",)}
        if self.samples:
            panels[DIVERSITY_PANEL] = ("diversity",)
        return panels

    def check_logged(self, means: dict[str, float]) -> None:
        """Called by the engine with each logged interval's mean parts, already on the host: a model may
        warn about its own failure modes here (a GAN's collapsed discriminator) at no extra sync."""

    def evaluate(self, x: Images, labels: torch.Tensor | None = None,
                 options: EvalOptions = EVAL_DEFAULTS) -> dict[str, float]:
        """Family-specific test metrics on held-out images x (N, C, H, W) with their labels (N,), if any."""
        return {}


class GenerativeModel(Model):
    """A model of images: it encodes, samples, or both, as its class declares."""

    @property
    def latent_dim(self) -> int:
        raise NotImplementedError  # every generative family has a code size

    @property
    def prior_bounds(self) -> tuple[float, float] | None:
        """The interval each code dimension of the prior lies in; None: unbounded, N(0, I) (the default)."""
        return None

    @property
    def samples_from_average(self) -> bool:
        """decode and sample use a moving average of the trained weights (a GAN's EMA generator), not them."""
        return False

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n codes from the prior p(z), (n, latent_dim): N(0, I) unless a family says otherwise."""
        self._require(self.samples, "has no prior to sample codes from")
        dev = next(self.parameters()).device
        return torch.randn(n, self.latent_dim, generator=generator, device=dev)

    def sample(self, n: int, generator: torch.Generator | None = None,
               labels: torch.Tensor | None = None) -> torch.Tensor:
        """n samples; a conditional model's of the classes `labels` (n,) asks for, or where None of classes drawn
        in the training split's proportions (after the codes, from the same generator)."""
        self._require(self.samples, "cannot sample")
        z = self.prior_sample(n, generator)
        if self.conditional and labels is None:
            labels = self.draw_labels(n, generator)
        return self.decode_with(z, labels)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        raise self._refusal("has no encoder")

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise self._refusal("has no decoder")

    def reconstruct(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The decoded codes of x; a conditional model's with each image's own label (B,), in and out."""
        self._require(self.encodes, "has no encoder, so it cannot reconstruct")
        return self.decode_with(self.encode_with(x, labels), labels)

    def encode_with(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """encode(x), given each image's label (B,) for a conditional model (None for any other)."""
        return self._given(self.encode, x, labels)

    def decode_with(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """decode(z), given each code's label (B,) for a conditional model (None for any other)."""
        return self._given(self.decode, z, labels)

    def _given(self, fn: Callable[..., torch.Tensor], t: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """fn(t) (encode or decode), given the labels for a conditional model, whose encode and decode take them as
        their second argument; labels for any other model are refused in one sentence (label_rows)."""
        if not self.conditional:
            self.label_rows(labels, t)
            return fn(t)
        return fn(t, labels)

    # -- conditioning on a class label ---------------------------------------------------------------------------
    @property
    def conditional(self) -> bool:
        """Whether the model is of p(x | y): its networks take the class label beside the image or code."""
        return bool(getattr(self.config, "conditional", False))

    @property
    def classes(self) -> int:
        """A conditional model's number of classes."""
        return int(self.config.classes)

    def class_prior(self, device: torch.device | None = None) -> torch.Tensor:
        """p(y) (classes,): the training split's class proportions (the recorded class_counts; uniform without)."""
        counts = torch.tensor(self.config.class_counts or [1] * self.classes, dtype=torch.float32, device=device)
        return counts / counts.sum()

    def commonest_class(self) -> int:
        """The commonest training class (the first of equals): what is decoded where no class is asked for."""
        return int(self.class_prior().argmax())

    def draw_labels(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n labels (n,) drawn in the training split's class proportions (class_prior)."""
        prior = self.class_prior(next(self.parameters()).device)
        return torch.multinomial(prior, n, replacement=True, generator=generator)

    def label_rows(self, labels: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
        """The one-hot rows (B, classes) a conditional model's networks take (None for any other model), or a
        one-sentence error for labels missing, given to a model without classes, or outside its classes."""
        if not self.conditional:
            if labels is not None:
                raise GenmodelsError(f"This {self.family} model is not conditional, so it takes no labels; train "
                                     "it with --conditional (model.conditional = true) to ask for a class.")
            return None
        if labels is None:
            raise GenmodelsError(f"This conditional {self.family} model needs the class labels of what it encodes "
                                 "or decodes; pass labels= (one class index per image).")
        # Training batches' labels were checked with the data (check_data): no host sync a step to check them again.
        if not self.training:
            outside = labels[(labels < 0) | (labels >= self.classes)]
            if outside.numel():
                raise GenmodelsError(f"Label {int(outside[0])} is outside this model's classes "
                                     f"0..{self.classes - 1}; ask for one of those.")
        return one_hot(labels, self.classes, like)

    def check_data(self, data: Dataset) -> None:
        if self.conditional:
            require_labels(data, self.classes, "A conditional model (--conditional)", "drop --conditional")

    def _require(self, capable: bool, lacking: str) -> None:
        """The error a caller gets for asking a capability the class does not declare (a bug in the caller,
        or a user's Python call on the wrong family)."""
        if not capable:
            raise self._refusal(lacking)

    def _refusal(self, lacking: str) -> GenmodelsError:
        return GenmodelsError(f"This {self.family} model {lacking}; use a family that can "
                              "(genmodels.models.FAMILIES lists what each one does).")


@dataclass(frozen=True)
class Family:
    """One family, declared once beside its model class; genmodels.models.registry lists them all, and the
    config parser, build_model, the command line and the capability messages derive from these records."""

    name: str  # as in `genmodels train NAME` and config.json's "family"
    model: type[Model]
    config: type[BaseModel]  # the model config, each field described (its flag's help)
    help: str  # one line, for `genmodels train --help`
    # TrainConfig values that differ for this family; values given in flags or a config file still win.
    train_defaults: dict[str, Any] = field(default_factory=dict)
    # TrainConfig values for the 2-D toys (genmodels.toy.TOYS), over train_defaults; flags and config files still win.
    toy_train_defaults: dict[str, Any] = field(default_factory=dict)
    # False: trained only through another command (the feature classifier, by `genmodels features train`).
    trained_by_train_command: bool = True
