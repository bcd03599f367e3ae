"""The zoo's table (docs/ARCHITECTURE.md, "The zoo"): one `Entry` per model of the lecture, holding everything
the zoo knows of it: its family, its settings on digits and on Fashion-MNIST, how its settings follow another
dataset's image shape, its cost constant, its share of a time budget, its probe weight and its pilot size.
The fixed presets (PRESETS) and the derived ones (zoo.plan.derive_plan) are both read from ENTRIES."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ..models import RunConfig, build_run_config, family
from ..nn import resolve_arch


@dataclass(frozen=True)
class Preset:
    """One model of the zoo: its family, model settings and training settings."""

    family: str
    model: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)

    def config(self, source: str, **data: Any) -> RunConfig:
        """The run config of this preset on `source`; data: more data settings (a toy's toy_size)."""
        return build_run_config({"family": self.family, "model": self.model, "data": {"source": source, **data},
                                 "train": self.train}, where=f"the zoo preset for {self.family}")


@dataclass(frozen=True)
class Sizes:
    """What a derived entry's settings follow: the D = C*H*W values of an image, the training images, and
    whether the GAN's arch "auto" gives the DCGAN-style nets for this shape (16 px a side or more)."""

    d: int
    n_train: int
    conv: bool

    @property
    def k(self) -> int:
        """The code: about sqrt(D) (30 for 28x28, 8 for 8x8), 2 to 64, never above D."""
        return min(self.d, max(2, min(64, round(math.sqrt(self.d)))))

    @property
    def hidden(self) -> int:
        """An MLP's width: the power of two from 2D, up to 512."""
        return min(512, 2 ** math.ceil(math.log2(2 * self.d)))

    @property
    def layers(self) -> list[int]:
        """The stacked-dae's widths: as Fashion-MNIST's [1000, 500, 250, 30], scaled down by D, down to the code."""
        d, k = self.d, self.k
        return [max(k, min(1000, 2 * d)), max(k, min(500, d)), max(k, min(250, d // 2)), k]


@dataclass(frozen=True)
class VectorSizes:
    """What an entry's settings on vector data (N, D) follow: D alone. Points of a few values need wider nets
    than the image rule gives (2D wide: 4 units for a 2-D toy), so widths start at 128."""

    d: int

    @property
    def k(self) -> int:
        """The code: about sqrt(D), 2 to 64 (a 2-D code draws the latent map and the learned manifold), never
        above D."""
        return min(self.d, max(2, min(64, round(math.sqrt(self.d)))))

    @property
    def hidden(self) -> int:
        """An MLP's width: the power of two from 2D, 128 to 512."""
        return min(512, max(128, 2 ** math.ceil(math.log2(2 * self.d))))


def sizes(shape: tuple[int, ...], n_train: int) -> Sizes:
    gan: Any = family("gan").config()  # the family's defaults: what arch "auto" means for this shape
    conv = resolve_arch(gan.arch, shape, gan.channels) == "conv"
    c, h, w = shape
    return Sizes(c * h * w, n_train, conv)


def _values(shape: tuple[int, ...], model: dict[str, Any]) -> float:
    """An MLP's cost against a 28x28 grey image's: it reads all C*H*W values."""
    c, h, w = shape
    return c * h * w / 784


def _pixels(shape: tuple[int, ...], model: dict[str, Any]) -> float:
    """A DCGAN's cost against a 28x28 grey image's: H*W pixels, the first layer alone seeing the channels."""
    c, h, w = shape
    return h * w / 784 * (c + 3) / 4 if model.get("arch") == "conv" else _values(shape, model)


# How an entry trains: "zoo": the zoo's batch size and learning rate; "family": the family's own (the GAN's
# Adam settings), the zoo's epochs; "fit": fitted once (PCA), no epochs.
Training = Literal["zoo", "family", "fit"]
_NOT_TAKEN = {"zoo": (), "family": ("batch_size", "lr"), "fit": ("epochs", "batch_size", "lr")}


@dataclass(frozen=True)
class Entry:
    """One model of the zoo. seconds_per_image: training per image per epoch at 784 values an image (28x28
    grey), batch 100, on the constants' machine (zoo.plan); share: of the training time a budget leaves;
    probe_weight: the cost of a linear probe on its codes per probe image (None: no codes to probe);
    pilot_images: trained in the pilot that measures the machine (zoo.plan.measure_speed), 0: not."""

    name: str
    family: str
    fixed: dict[str, dict[str, Any]]  # dataset -> model settings of its fixed presets
    derive: Callable[[Sizes], dict[str, Any]]  # model settings for another dataset's images
    training: Training = "zoo"
    seconds_per_image: float = 0.0
    share: float = 0.0
    probe_weight: float | None = None
    pilot_images: int = 0
    importance_weighted: bool = False  # evaluated by a log-likelihood bound of importance samples per test image
    cost_scale: Callable[[tuple[int, ...], dict[str, Any]], float] = _values
    # (epochs per layer, layers) of a pretraining before the epochs, from the model settings; None: none.
    pretraining: Callable[[dict[str, Any]], tuple[int, int]] | None = None
    # Vector data (N, D): model settings from D (VectorSizes) and the epochs of the zoo on vectors.
    vectors: Callable[[VectorSizes], dict[str, Any]] = lambda v: {}  # the family's defaults
    vector_epochs: int = 10
    labels: bool = False  # conditioned on the class label: in a zoo only where the data have labels

    @property
    def bayes(self) -> bool:
        """Evaluated as a classifier by Bayes' rule too (a conditional model with a likelihood bound)."""
        return self.labels and self.importance_weighted

    @property
    def trained(self) -> bool:
        """Trained in epochs, so a budget sets how many."""
        return self.training != "fit"

    def preset(self, model: dict[str, Any], train: dict[str, Any]) -> Preset:
        """The preset of these model settings under a dataset's training settings, less those it does not take."""
        return Preset(self.family, model, {k: v for k, v in train.items() if k not in _NOT_TAKEN[self.training]})


SDAE_PRETRAIN_EPOCHS = 1  # per layer: half the Fashion-MNIST preset's, which had 7.5 times the images
# The derived GAN's DCGAN nets: half the default channels, 0.6 times the time a step (measured), so a
# short budget buys more steps, which matter more to a young GAN than width.
GAN_CHANNELS = [32, 64]
_MASK = ["mask:0.25"]
# On vectors (standardised: unit std a column) masking a value is a large jump; small Gaussian noise is the
# denoising criterion of a point (Vincent et al. 2010 use both).
_NOISE = ["gauss:0.1"]
# The zoo on vectors: the GAN and the VAE, whose samples the lecture's claim is about, train longest; the rest
# VECTOR_EPOCHS (Entry.vector_epochs), at VECTOR_TRAIN's batch. Sized for ring8's 10,000 points in about two
# minutes on two cores; the GAN keeps its family's own settings but for the epochs, as on images.
GAN_VECTOR_EPOCHS, VAE_VECTOR_EPOCHS = 30, 20
VECTOR_TRAIN: dict[str, Any] = {"batch_size": 100, "threads": 1}  # as digits: a second thread only spins


def _sdae_pretraining(model: dict[str, Any]) -> tuple[int, int]:
    return model["pretrain_epochs"], len(model["layers"])


# Digits: 1,437 training images of 8x8 pixels, so every net is small; codes of 8 (an 8x compression) except
# where the idea needs more units: the contractive AE's one sigmoid layer and the sparse AE's overcomplete
# code, of which only a fraction rho should be active. Fashion-MNIST: 60,000 images of 28x28, the README's
# sizes. Derived: sizes scaled from Fashion-MNIST's by D (Sizes): the contractive AE's one sigmoid layer D/3
# up to 256, the sparse AE's code 1.5D up to 1000; the autoencoders and the VAE MLPs, whose C*H*W inputs carry
# colour; the GAN as arch "auto" gives it. Costs measured on the project's shared 2-core machine while two
# other jobs ran; the GAN and the VAE have the largest shares. The GAN keeps its defaults, as the README's
# command trains it (benchmarks/gan_quality.py).
ENTRIES: tuple[Entry, ...] = (
    Entry("pca", "pca", {"digits": {"latent_dim": 8}, "fashion-mnist": {"latent_dim": 30}},
          lambda s: {"latent_dim": min(s.k, s.n_train)}, training="fit", probe_weight=0.3,
          vectors=lambda v: {"latent_dim": v.k}),
    Entry("ae", "ae", {"digits": {"latent_dim": 8, "hidden": [128]},
                       "fashion-mnist": {"latent_dim": 30, "hidden": [512]}},
          lambda s: {"latent_dim": s.k, "hidden": [s.hidden]},
          seconds_per_image=0.35e-3, share=0.06, probe_weight=0.3, pilot_images=2000,
          vectors=lambda v: {"latent_dim": v.k, "hidden": [v.hidden, v.hidden]}),
    Entry("denoising-ae", "ae", {"digits": {"latent_dim": 8, "hidden": [128], "corrupt": _MASK},
                                 "fashion-mnist": {"latent_dim": 30, "hidden": [512], "corrupt": _MASK}},
          lambda s: {"latent_dim": s.k, "hidden": [s.hidden], "corrupt": _MASK},
          seconds_per_image=0.35e-3, share=0.06, probe_weight=0.3,
          vectors=lambda v: {"latent_dim": v.k, "hidden": [v.hidden, v.hidden], "corrupt": _NOISE}),
    Entry("contractive-ae", "ae",
          {"digits": {"latent_dim": 32, "hidden": [], "code_activation": "sigmoid", "contractive": 0.1},
           "fashion-mnist": {"latent_dim": 256, "hidden": [], "code_activation": "sigmoid", "contractive": 0.1}},
          lambda s: {"latent_dim": min(256, max(s.k, s.d // 3)), "hidden": [], "code_activation": "sigmoid",
                     "contractive": 0.1},
          seconds_per_image=0.2e-3, share=0.04, probe_weight=2.0,
          vectors=lambda v: {"latent_dim": min(256, max(16, 4 * v.d)), "hidden": [], "code_activation": "sigmoid",
                             "contractive": 0.1}),
    Entry("sparse-ae", "ae",
          {"digits": {"latent_dim": 100, "hidden": [128], "code_activation": "sigmoid", "sparse_kl": 0.5,
                      "sparse_rho": 0.05},
           "fashion-mnist": {"latent_dim": 1000, "hidden": [512], "code_activation": "sigmoid", "sparse_kl": 0.5,
                             "sparse_rho": 0.05}},
          lambda s: {"latent_dim": min(1000, 3 * s.d // 2), "hidden": [s.hidden], "code_activation": "sigmoid",
                     "sparse_kl": 0.5, "sparse_rho": 0.05},
          seconds_per_image=0.7e-3, share=0.06, probe_weight=15.0,  # the wide sigmoid codes: slowest to probe
          vectors=lambda v: {"latent_dim": min(1000, max(64, 8 * v.d)), "hidden": [v.hidden],
                             "code_activation": "sigmoid", "sparse_kl": 0.5, "sparse_rho": 0.05}),
    Entry("stacked-dae", "sdae", {"digits": {"layers": [128, 64, 8], "pretrain_epochs": 50, "corrupt": _MASK},
                                  "fashion-mnist": {"layers": [1000, 500, 250, 30], "pretrain_epochs": 2}},
          lambda s: {"layers": s.layers, "pretrain_epochs": SDAE_PRETRAIN_EPOCHS},
          seconds_per_image=0.75e-3, share=0.1, probe_weight=0.3, pretraining=_sdae_pretraining,
          vectors=lambda v: {"layers": [v.hidden, v.hidden // 2, v.k], "pretrain_epochs": SDAE_PRETRAIN_EPOCHS,
                             "corrupt": _NOISE}),
    Entry("vae", "vae", {"digits": {"latent_dim": 8, "hidden": [128]},
                         "fashion-mnist": {"latent_dim": 16, "hidden": [512]}},
          lambda s: {"latent_dim": min(16, s.k), "hidden": [s.hidden]},
          seconds_per_image=0.35e-3, share=0.18, probe_weight=0.3, importance_weighted=True,
          vectors=lambda v: {"latent_dim": v.k, "hidden": [v.hidden, v.hidden]}, vector_epochs=VAE_VECTOR_EPOCHS),
    Entry("gan", "gan", {"digits": {}, "fashion-mnist": {}},
          lambda s: {"arch": "conv", "channels": GAN_CHANNELS} if s.conv else {"arch": "mlp"},
          training="family", seconds_per_image=1.8e-3, share=0.5, pilot_images=1000, cost_scale=_pixels,
          vectors=lambda v: {"arch": "mlp"}, vector_epochs=GAN_VECTOR_EPOCHS),
)


def conditional(entry: Entry, name: str) -> Entry:
    """`entry` conditioned on the class label (model.conditional, as `genmodels train FAMILY --conditional`), its
    settings, cost and share otherwise the same: a measurement of the preset is one of the family's conditional
    model. Not on vectors: a toy's label is the mixture component, so it would hand the model the very modes the
    toy's finding counts (and ring8's zoo keeps to its two minutes)."""
    return replace(entry, name=name, labels=True, pilot_images=0,
                   fixed={data: {**model, "conditional": True} for data, model in entry.fixed.items()},
                   derive=lambda s: {**entry.derive(s), "conditional": True})


# The conditional VAE (Sohn et al. 2015) and GAN (Mirza & Osindero 2014), wherever the data have labels.
ENTRY = {entry.name: entry for entry in ENTRIES}
ENTRIES += (conditional(ENTRY["vae"], "cvae"), conditional(ENTRY["gan"], "cgan"))
ENTRY = {entry.name: entry for entry in ENTRIES}

# The fixed datasets' training settings. Digits: every epoch a fraction of a second, one torch thread (a second
# only spins on nets this small). Fashion-MNIST: a few epochs each (tens of seconds to a few minutes per model
# on two cores; the GAN within 15 minutes), all cores.
FIXED_TRAIN: dict[str, dict[str, Any]] = {"digits": {"epochs": 200, "batch_size": 64, "lr": 2e-3, "threads": 1},
                                          "fashion-mnist": {"epochs": 10, "batch_size": 100}}
PRESETS: dict[str, dict[str, Preset]] = {data: {e.name: e.preset(e.fixed[data], train) for e in ENTRIES}
                                         for data, train in FIXED_TRAIN.items()}
DIGITS, FASHION_MNIST = PRESETS["digits"], PRESETS["fashion-mnist"]

def vector_presets(d: int, epochs: int | None = None) -> dict[str, Preset]:
    """The zoo on vector data (N, D): an entry for each family whose model declares it takes_vectors, its
    settings from D (Entry.vectors), VECTOR_TRAIN and its vector_epochs (or `epochs` for every entry: tests);
    no conditional entry (`conditional`)."""
    size = VectorSizes(d)
    return {e.name: e.preset(e.vectors(size), {**VECTOR_TRAIN, "epochs": epochs or e.vector_epochs})
            for e in ENTRIES if family(e.family).model.takes_vectors and not e.labels}


# Moderate evaluation: K=200 importance samples for the VAE's log-likelihood, Parzen on for every
# model that samples (evaluation.evaluate's defaults otherwise).
EVALUATE: dict[str, Any] = {"importance_samples": 200, "parzen_samples": 10_000}


# The conditional VAE's Bayes classifier (bayes_accuracy) in a zoo: classes x K decoder passes a test image, on
# every test image (evaluate takes no subset). K = importance_samples * BAYES_COST // classes: 5 for ten classes at
# the zoo's K = 200, 1 at a derived plan's 50. Its argmax over the classes needs far fewer samples than a tight
# bound: the digits preset classified 98.6 to 99.2% of the test images right with K = 1, 5, 20 and 100 alike (two
# seeds each). Its cost is mostly an encoder pass and a small decoder batch per class, not K: on a Fashion-MNIST-
# sized CVAE (code 16, 512 hidden, 2,000 images, two threads) K = 5 took 18 CPU seconds, K = 1 12, and the K = 200
# log-likelihood bound 12.6; so a plan counts it as BAYES_IW_EQUIVALENT importance samples a test image.
BAYES_COST, BAYES_IW_EQUIVALENT = 0.25, 280
def bayes_samples(importance_samples: int, classes: int) -> int:
    """K of the Bayes classifier in a zoo: its classes x K decoder passes at most BAYES_COST of the
    log-likelihood bound's importance_samples."""
    return max(1, int(importance_samples * BAYES_COST) // max(classes, 1))
# On vectors: the modes are counted on the Parzen estimate's 10,000 samples (evaluation draws once for both);
# KID and precision/recall on 2,000, as many as a toy's test points they are compared with.
VECTOR_EVALUATE: dict[str, Any] = {"quality_samples": 2000}
