"""The memory a model of given settings takes, counted before it is built (docs/ARCHITECTURE.md, "Configs").

The model is built on torch's meta device, which gives every tensor its shape and allocates nothing: a latent_dim
of 10**8 is counted in milliseconds where building it for real would claim hundreds of GB before any check. From
the count come two estimates, each compared with the memory free where it will be allocated:

- the weights (and buffers) alone, which every command that builds the model allocates on the host
  (`check_weights`, called by `registry.build_model`);
- training: the weights, a gradient and Adam's two moments for each trained parameter, a batch's activations and,
  off the host, the data moved to the device (`check_training`, called before a run directory is touched).

The activations are counted generously (each layer's output at most at the image's resolution, three copies of
it, see `activations_per_image`), so an estimate is meant to err large; a refusal names the estimate, the memory
free and the settings that size the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..config import TrainConfig, flag_name
from ..errors import ConfigError, GenmodelsError
from ..runtime import free_memory

if TYPE_CHECKING:
    from ..dataset import DataSplits
    from .base import Model

FLOAT_BYTES = 4  # weights, gradients, Adam's moments and activations are float32 (checkpoints too)
ADAM_MOMENTS = 2
# Values a training step keeps per layer output: the output itself (saved for backward), the activation
# function's output, and its gradient in the backward pass.
ACTIVATION_COPIES = 3


@dataclass(frozen=True)
class Footprint:
    """What a model of some settings holds, counted on the meta device."""

    family: str
    parameters: int  # every parameter's values
    trained: int  # of them, those with requires_grad (a GAN's moving average of G has none)
    buffer_bytes: int  # BatchNorm statistics, PCA's components and sums, ...
    activations: int  # values a forward computes for one image, an upper bound (activations_per_image)

    @property
    def weights(self) -> int:
        """Bytes of the weights and buffers, what building the model allocates."""
        return FLOAT_BYTES * self.parameters + self.buffer_bytes

    def activation_bytes(self, batch: int) -> int:
        return FLOAT_BYTES * ACTIVATION_COPIES * batch * self.activations

    def training(self, batch: int) -> int:
        """Bytes a training step with `batch` images takes: the weights, each trained parameter's gradient and
        Adam moments, and the batch's activations."""
        optimizer = FLOAT_BYTES * (1 + ADAM_MOMENTS) * self.trained
        return self.weights + optimizer + self.activation_bytes(batch)


def activations_per_image(model: nn.Module, shape: tuple[int, ...]) -> int:
    """Values the linear and convolutional layers of `model` output for one image of `shape`: a linear layer's
    out_features; a convolution's channels times the image's area over its stride's (an up-convolution's at the
    image's area). No layer of genmodels' networks outputs more than that, so the sum bounds the activations
    from above without running a forward (a meta forward first loads torch's decompositions, about a second)."""
    area = math.prod(shape[1:])  # 1 for vectors (D,)
    total = 0
    for module in model.modules():
        if isinstance(module, nn.Linear):
            total += module.out_features
        elif isinstance(module, nn.ConvTranspose2d):
            total += module.out_channels * area
        elif isinstance(module, nn.Conv2d):
            total += module.out_channels * max(1, area // math.prod(module.stride))
    return total


def footprint(model_class: type[Model], config: Any, shape: tuple[int, ...]) -> Footprint | None:
    """The footprint of `model_class(config, shape)`, built on the meta device; None for a model whose
    constructor computes with its tensors' values, which the meta device cannot (such a model is not refused).
    A constructor's own refusal (a ConfigError) comes out as it would from the real build."""
    try:
        with torch.device("meta"):
            model = model_class(config, shape)
    except (RuntimeError, NotImplementedError):
        return None
    parameters = list(model.parameters())
    return Footprint(
        model_class.family,
        parameters=sum(p.numel() for p in parameters),
        trained=sum(p.numel() for p in parameters if p.requires_grad),
        buffer_bytes=sum(b.numel() * b.element_size() for b in model.buffers()),
        activations=activations_per_image(model, shape),
    )


def size_flags(model_class: type[Model], config: Any, shape: tuple[int, ...], found: Footprint) -> list[str]:
    """The flags of the integer settings (and lists of them) that size the model `found` counts: those whose
    doubling adds weights, found by counting again on the meta device rather than by a list that would drift
    from the families' configs."""
    flags = []
    for key, info in type(config).model_fields.items():
        value = getattr(config, key)
        if isinstance(value, int) and not isinstance(value, bool):
            bigger: Any = 2 * value
        elif isinstance(value, list) and value and all(type(v) is int for v in value):
            bigger = [2 * v for v in value]
        else:
            continue
        try:
            more = footprint(model_class, config.model_copy(update={key: bigger}), shape)
        except GenmodelsError:  # doubled, the setting breaks a constraint of the model (more codes than pixels)
            continue
        flag = flag_name(key, info)
        if more is not None and more.weights > found.weights and flag is not None:
            flags.append(flag)
    return flags


def sized(size: int) -> str:
    """Bytes as a message gives them: GB (10**9) with one decimal, or MB below a GB."""
    return f"{size / 1e9:,.1f} GB" if size >= 10**9 else f"{max(1, round(size / 1e6))} MB"


def _smaller(flags: list[str], extra: str = "") -> str:
    names = [*flags, *([extra] if extra else [])]
    if not names:
        return "choose a smaller model"
    return "choose a smaller " + (names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1])


def _listed(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + ", and " + parts[-1]


def _weights(found: Footprint, optimizer: bool) -> list[str]:
    """What the weights are, in words: the parameters (with what training adds to them) and the buffers."""
    parts = []
    if found.parameters:
        parts.append(f"{found.parameters:,} parameters"
                     + (" with their gradients and Adam's two moments" if optimizer and found.trained else ""))
    if found.buffer_bytes:
        parts.append(f"{sized(found.buffer_bytes)} of buffers")
    return parts


def check_weights(model_class: type[Model], config: Any, shape: tuple[int, ...]) -> None:
    """A one-sentence ConfigError where the weights of `model_class(config, shape)` alone exceed the host's free
    memory (the model is built there, then moved)."""
    found = footprint(model_class, config, shape)
    free = free_memory(torch.device("cpu"))
    if found is None or free is None or found.weights <= free:
        return
    raise ConfigError(
        f"This {found.family} model needs about {sized(found.weights)} for its weights alone "
        f"({_listed(_weights(found, optimizer=False))}), more than the {sized(free)} of memory free on this machine; "
        f"{_smaller(size_flags(model_class, config, shape, found))}, or use a machine with more memory.")


def check_training(model_class: type[Model], config: Any, train: TrainConfig, data: DataSplits,
                   device: torch.device) -> None:
    """A one-sentence ConfigError where training `model_class(config, data.shape)` on `data` with `train`'s batch
    size needs more memory than is free on `device` (the host for the cpu): the estimate, the memory free and
    the settings to make smaller."""
    found = footprint(model_class, config, data.shape)
    free = free_memory(device)
    if found is None or free is None:
        return
    batch = min(train.batch_size, len(data.train))
    # off the host, both splits are copied to the device (training.Training moves them); on it they are loaded
    moved = 0 if device.type == "cpu" else sum(s.images.numel() * s.images.element_size()
                                               for s in (data.train, data.test))
    need = found.training(batch) + moved
    if need <= free:
        return
    parts = _weights(found, optimizer=True)
    if found.activations:
        parts.append(f"{sized(found.activation_bytes(batch))} of activations for a batch of {batch}")
    if moved:
        parts.append(f"{sized(moved)} of data on the device")
    where = "on this machine" if device.type == "cpu" else f"on {device}"
    raise ConfigError(
        f"Training this {found.family} model needs about {sized(need)} ({_listed(parts)}), more than the "
        f"{sized(free)} of memory free {where}; "
        f"{_smaller(size_flags(model_class, config, data.shape, found), '--batch-size')}.")
