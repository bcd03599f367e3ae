"""A small classifier: the feature network of the sample-quality metrics (genmodels.features).

Inception-v3 features (the usual ones for FID) cannot be fetched here and fit 28x28 grey images
poorly, so genmodels trains this network per dataset on the one engine, with labels, and takes
its penultimate activations as features:

  conv: [3x3 conv (padding 1) -> ReLU -> 2x2 max-pool] per entry of channels -> flatten
  mlp:  flatten -> [linear -> ReLU] per entry of hidden
  then  linear -> ReLU (the features, feature_dim wide) -> linear (class logits)

trained on the cross-entropy of its logits. It cannot sample, encode or reconstruct.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from ..config import Strict, check_nets
from ..errors import ConfigError, DataError
from ..losses import upcast
from ..nn import mlp, resolve_arch
from .base import EVAL_DEFAULTS, EvalOptions, Family, Images, Model, StepOutput, require_labels


class ClassifierConfig(Strict):
    """The feature network of the sample-quality metrics: a small classifier trained per dataset
    (genmodels.features); its penultimate activations are the features FID, KID, precision/recall and
    density/coverage compare, and its predictions give the class histogram of samples."""

    arch: Literal["auto", "conv", "mlp"] = Field("auto", description="auto: conv for images of 16 px a side or more, "
                                                                     "else mlp")
    channels: list[int] = Field([32, 64], description="conv: a 3x3 conv + 2x2 max-pool per entry")
    hidden: list[int] = Field([256], description="mlp: hidden widths before the feature layer")
    feature_dim: int = Field(128, ge=2, description="width of the penultimate layer: the features")
    classes: int | None = Field(None, ge=2, description="softmax outputs; none: the data's number of classes "
                                                        "(set by `genmodels features train`)")

    @model_validator(mode="after")
    def _check(self) -> ClassifierConfig:
        check_nets(self.arch, self.hidden, self.channels)
        return self


def _conv_body(shape: tuple[int, ...], channels: list[int]) -> tuple[nn.Module, int]:
    c, h, w = shape
    if min(h, w) < 2 ** len(channels):
        raise ConfigError(f"Images of {h}x{w} are too small for {len(channels)} 2x2 max-pools; "
                          "give fewer channels or use --arch mlp.")
    layers: list[nn.Module] = []
    for out in channels:
        layers += [nn.Conv2d(c, out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        c, h, w = out, h // 2, w // 2
    return nn.Sequential(*layers, nn.Flatten()), c * h * w


class Classifier(Model):
    family = "classifier"
    needs_labels = True

    def __init__(self, config: ClassifierConfig, shape: tuple[int, ...]):
        super().__init__(config, shape)
        c = config
        self.arch = resolve_arch(c.arch, self.shape, c.channels)
        if self.arch == "conv":
            body, width = _conv_body(self.shape, c.channels)
        else:
            width = c.hidden[-1] if c.hidden else math.prod(self.shape)
            hidden = [mlp([math.prod(self.shape), *c.hidden]), nn.ReLU()] if c.hidden else []
            body = nn.Sequential(nn.Flatten(), *hidden)
        self.body = nn.Sequential(body, nn.Linear(width, c.feature_dim), nn.ReLU())  # images -> features
        if c.classes is None:
            raise ConfigError("The classifier's number of classes is not set; give --classes N, or train it with "
                              "`genmodels features train`, which takes the data's.")
        self.head = nn.Linear(c.feature_dim, c.classes)

    def check_data(self, data) -> None:
        require_labels(data, self.config.classes, "A feature network is a classifier and",
                       "use a labelled data source (an image folder with one subfolder per class, say)")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations of images x (B, C, H, W): (B, feature_dim)."""
        return self.body(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B, classes)."""
        return self.head(self.body(x))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> StepOutput:
        if labels is None:
            raise DataError("The classifier's loss needs the batch's labels; pass them as forward(x, labels).")
        logits = self.logits(x)
        xent = F.cross_entropy(upcast(logits), labels)  # mean -log softmax(logits)[label], in float32
        error = (logits.argmax(1) != labels).float().mean()
        return StepOutput(xent, {"loss": xent.detach(), "xent": xent.detach(), "error": error})

    @torch.inference_mode()
    def evaluate(self, x: Images, labels: torch.Tensor | None = None,
                 options: EvalOptions = EVAL_DEFAULTS) -> dict[str, float]:
        """Test accuracy of the classifier."""
        if labels is None:
            return {}
        batch_size = options.batch_size
        right = sum(int((self.logits(x[i : i + batch_size]).argmax(1) == labels[i : i + batch_size]).sum())
                    for i in range(0, x.shape[0], batch_size))
        return {"test_accuracy": right / x.shape[0]}


# 5 cosine-annealed epochs reach >= 0.90 test accuracy on Fashion-MNIST (docs/guide.md, "Sample quality").
FAMILY = Family("classifier", Classifier, ClassifierConfig, "the feature network of FID, KID and precision/recall",
                {"epochs": 5, "lr_schedule": "cosine"}, trained_by_train_command=False)
