"""The interface every model meets, so the engine never asks which family it trains.

A model's forward takes a batch of images in [0, 1], shape (B, C, H, W), and
returns a `StepOutput`: the scalar loss to minimise plus named parts for the
logs (DESIGN.md rule 1). Capabilities a family lacks (a GAN has no encoder)
raise a GenmodelsError that says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from ..errors import DataError, GenmodelsError

if TYPE_CHECKING:
    from ..config import TrainConfig
    from ..data import Dataset
    from ..engine import StepContext


@dataclass
class StepOutput:
    loss: torch.Tensor  # scalar, what the optimiser minimises
    parts: dict[str, torch.Tensor] = field(default_factory=dict)  # scalar terms for the logs, detached


def require_labels(data: "Dataset", classes: int, why: str, fix: str) -> None:
    """A one-sentence DataError unless every image of `data` has a label in [0, classes).
    why: what needs the labels ("Supervised fine-tuning"); fix: what to do without them."""
    if data.labels is None:
        raise DataError(f"{why} needs labels, and {data.name} has none; {fix}.")
    if len(data) and int(data.labels.max()) >= classes:
        top = int(data.labels.max())
        raise DataError(f"{data.name} has label {top} but the model has {classes} classes; give --classes {top + 1}.")


def make_adam(params, train: "TrainConfig", device: torch.device) -> torch.optim.Adam:
    # The fused kernel does the whole update in one pass: on 2 CPU cores it is the
    # largest single saving in a small model's step (benchmarks/vae_throughput.py).
    return torch.optim.Adam(params, lr=train.lr, betas=train.betas, fused=device.type in ("cpu", "cuda"))


class GenerativeModel(nn.Module):
    family: ClassVar[str]

    def __init__(self, config: Any, shape: tuple[int, int, int]):
        super().__init__()
        self.config = config
        self.shape = tuple(shape)

    # -- training -------------------------------------------------------------
    # Labels reach train_step (as ctx.labels) and eval_parts only for models that ask for them.
    needs_labels: bool = False
    # Everything a step changes is in the checkpoint, so training can stop and resume inside an epoch.
    resumes_mid_epoch: bool = True

    def make_optimizers(self, train: "TrainConfig", device: torch.device) -> dict[str, torch.optim.Optimizer]:
        return {"main": make_adam(self.parameters(), train, device)}

    def total_epochs(self, epochs: int) -> int:
        """Epochs the engine runs when the config asks for `epochs`; a model with pretraining
        phases (the stacked denoising autoencoder) runs them before the asked-for epochs."""
        return epochs

    def start_epoch(self, epoch: int) -> None:
        """Called before each epoch's steps (0-based), also on resume: models with phases pick theirs."""

    def finish_epoch(self) -> None:
        """Called after each epoch's steps, before evaluation (PCA solves for its components here)."""

    def check_data(self, data: "Dataset") -> None:
        """Raise a one-sentence DataError if this model cannot train on `data` (missing labels, say)."""

    def train_step(self, x: torch.Tensor, ctx: "StepContext") -> dict[str, torch.Tensor]:
        """One optimisation step on batch x; returns the detached parts to log.

        Families with several optimisers (GAN) override this and use ctx.step(...)."""
        out = ctx.forward(x)
        ctx.step(out.loss, "main")
        return out.parts

    def eval_input(self, x: torch.Tensor) -> torch.Tensor:
        """Held-out images as the model is evaluated on them (a fixed binarisation, say)."""
        return x

    @torch.inference_mode()
    def eval_parts(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The logged parts on a held-out batch, without gradients."""
        return self(x, labels).parts if self.needs_labels else self(x).parts

    def check_logged(self, means: dict[str, float]) -> None:
        """Called by the engine with each logged interval's mean parts, already on the host: a model may
        warn about its own failure modes here (a GAN's collapsed discriminator) at no extra sync."""

    # -- capabilities ---------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        raise GenmodelsError(f"This {self.family} model has no latent code; use a model that encodes.")

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n codes from the prior p(z), (n, latent_dim): N(0, I) unless a family says otherwise."""
        dev = next(self.parameters()).device
        return torch.randn(n, self.latent_dim, generator=generator, device=dev)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        raise GenmodelsError(f"This {self.family} model cannot sample; train a generative model (vae, gan).")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        raise GenmodelsError(f"This {self.family} model has no encoder, so it cannot encode or reconstruct.")

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise GenmodelsError(f"This {self.family} model has no decoder.")

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def evaluate(self, x: torch.Tensor, **options: Any) -> dict[str, float]:
        """Family-specific test metrics on held-out images x (B, C, H, W)."""
        return {}
