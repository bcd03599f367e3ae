"""Stacked denoising autoencoder (Vincent et al. 2010, "Stacked Denoising Autoencoders").

Layers 1..K are MLP layers h_k = s(W_k h_{k-1} + b_k), h_0 = x flattened. Training is a
schedule of phases, one per epoch range, on the one engine:

  phase k = 1..K (pretrain_epochs epochs each), greedy layer-wise pretraining (section 3.5,
    Fig. 3): layer k and its own decoder h_{k-1} ~ g_k(f_k(h~_{k-1})) are trained alone as a
    denoising autoencoder. Their input is the clean output of the frozen layers < k,
    corrupted by q_D; the target is that clean output.
  fine-tuning (train.epochs epochs): the whole stack, either unrolled into a deep
    autoencoder x -> f_K..f_1 -> g_1..g_K -> x^ with the pretrained decoders (Hinton &
    Salakhutdinov 2006), trained on clean inputs, or, with finetune = supervised, the
    encoder and a softmax head trained on labels (Vincent et al. 2010, section 3.5).

Each phase has its own Adam optimiser over exactly the parameters it trains, so the
frozen layers cannot move and every optimiser's state resumes exactly.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from .. import losses
from ..config import Strict
from ..nn import ACTIVATIONS
from ..optim import make_adam
from . import regularisers as reg
from .base import EVAL_DEFAULTS, EvalOptions, Family, GenerativeModel, Images, StepOutput, require_labels


class SDAEConfig(Strict):
    """Stacked denoising autoencoder (Vincent et al. 2010): greedy layer-wise denoising pretraining,
    then fine-tuning of the whole stack. train.epochs counts the fine-tuning epochs; the
    len(layers) * pretrain_epochs pretraining epochs run before them."""

    layers: list[int] = Field([1000, 500, 250, 30], description="layer widths, input side first; the last is the code")
    activation: Literal["sigmoid", "relu"] = Field(
        "sigmoid", description="hidden units (Vincent et al. 2010 use sigmoid)")
    code_activation: Literal["linear", "sigmoid", "relu"] = Field(
        "linear", description="the code layer (Hinton & Salakhutdinov 2006: linear)")
    corrupt: list[str] = Field(["mask:0.25"], description="q_D applied to each layer's input in pretraining, "
                                                          "repeatable: mask:NU, gauss:SIGMA, saltpepper:P")
    pretrain_epochs: int = Field(5, ge=0, description="pretraining epochs per layer, before the --epochs of "
                                                      "fine-tuning; 0 skips pretraining")
    loss: Literal["mse", "bce"] = Field("mse", description="in pixel space: layer 1's pretraining and "
                                                           "unsupervised fine-tuning")
    finetune: Literal["reconstruction", "supervised"] = Field(
        "reconstruction", description="the unrolled autoencoder, or the encoder and a softmax head on labels")
    classes: int = Field(10, ge=2, description="softmax outputs of the supervised head")

    @model_validator(mode="after")
    def _check(self) -> SDAEConfig:
        if not self.layers or any(w < 1 for w in self.layers):
            raise ValueError("layers must be one or more positive widths, e.g. 1000,500,250,30")
        for spec in self.corrupt:
            reg.parse_corruption(spec)
        return self


class StackedDenoisingAutoEncoder(GenerativeModel):
    family = "sdae"
    encodes = True
    takes_vectors = True

    @classmethod
    def for_vectors(cls, config: SDAEConfig) -> SDAEConfig:
        cls.refuse_for_vectors(config, "loss", "bce", "models values in [0, 1], not unbounded standardised vectors",
                               "use --loss mse")
        return config

    def __init__(self, config: SDAEConfig, shape: tuple[int, ...]):
        super().__init__(config, shape)
        c = config
        widths = [math.prod(self.shape), *c.layers]
        k = len(c.layers)
        # Encoder layer i: widths[i] -> widths[i+1]; its decoder maps back widths[i+1] -> widths[i].
        self.enc = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.dec = nn.ModuleList(nn.Linear(b, a) for a, b in zip(widths[:-1], widths[1:]))
        self.enc_act = nn.ModuleList(ACTIVATIONS[c.code_activation if i == k - 1 else c.activation]() for i in range(k))
        # Decoder i reconstructs h_i, which came out of enc_act[i-1]; decoder 0 gives pixel pre-activations.
        self.dec_act = nn.ModuleList(nn.Identity() if i == 0 else ACTIVATIONS[c.activation]() for i in range(k))
        self.head = nn.Linear(c.layers[-1], c.classes) if c.finetune == "supervised" else None
        self.corruptions = [reg.parse_corruption(s) for s in c.corrupt]
        self.needs_labels = c.finetune == "supervised"
        self.phase = k  # 0..k-1: pretraining layer phase+1; k: fine-tuning (also after loading)

    @property
    def latent_dim(self) -> int:
        return self.config.layers[-1]

    @classmethod
    def with_code_size(cls, settings: dict[str, Any], latent_dim: int) -> dict[str, Any]:
        """The code is the last layer: settings["layers"] gives the widths below it (default: the config's)."""
        below = settings.get("layers", SDAEConfig.model_fields["layers"].default[:-1])
        return {**settings, "layers": [*below, latent_dim]}

    # -- the schedule -------------------------------------------------------------
    @property
    def layers(self) -> int:
        return len(self.config.layers)

    @classmethod
    def scheduled_epochs(cls, config: SDAEConfig, epochs: int) -> int:
        return len(config.layers) * config.pretrain_epochs + epochs

    def start_epoch(self, epoch: int) -> None:
        p = self.config.pretrain_epochs
        self.phase = min(epoch // p, self.layers) if p else self.layers

    @property
    def phase_name(self) -> str:
        return f"layer{self.phase + 1}" if self.phase < self.layers else "finetune"

    def make_optimizers(self, train, device) -> dict[str, torch.optim.Optimizer]:
        opts: dict[str, torch.optim.Optimizer] = {}
        if self.config.pretrain_epochs:
            for i in range(self.layers):
                params = [*self.enc[i].parameters(), *self.dec[i].parameters()]
                opts[f"layer{i + 1}"] = make_adam(params, train, device)
        tuned = [*self.enc.parameters(), *(self.head.parameters() if self.head else self.dec.parameters())]
        opts["finetune"] = make_adam(tuned, train, device)
        return opts

    def check_data(self, data) -> None:
        if self.needs_labels:
            require_labels(data, self.config.classes, "Supervised fine-tuning",
                           "use labelled data or --finetune reconstruction")

    # -- the networks ---------------------------------------------------------------
    def encode_to(self, x: torch.Tensor, depth: int) -> torch.Tensor:
        """h_depth, the output of the first `depth` layers, (B, widths[depth])."""
        h = x.flatten(1)
        for i in range(depth):
            h = self.enc_act[i](self.enc[i](h))
        return h

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode_to(x, self.layers)

    def _decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        h = z
        for i in reversed(range(self.layers)):
            h = self.dec_act[i](self.dec[i](h))
        return h.view(-1, *self.shape)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out = self._decode_logits(z)
        return torch.sigmoid(out) if self.config.loss == "bce" else out

    # -- the loss of the current phase ------------------------------------------------
    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> StepOutput:
        if self.phase < self.layers:
            return self._pretrain_loss(x, self.phase)
        if self.head is not None:
            assert labels is not None, "needs_labels: the engine passes each batch's labels (check_data refused none)"
            logits = self.head(self.encode(x))  # (B, classes)
            xent = F.cross_entropy(losses.upcast(logits), labels)  # in float32 under mixed precision
            error = (logits.argmax(1) != labels).float().mean()
            return StepOutput(xent, {"loss": xent.detach(), "xent": xent.detach(), "error": error})
        rec = losses.reconstruction_error(self._decode_logits(self.encode(x)), x, self.config.loss).mean()
        return StepOutput(rec, {"loss": rec.detach(), "rec": rec.detach()})

    def _pretrain_loss(self, x: torch.Tensor, i: int) -> StepOutput:
        """Layer i+1 as a denoising autoencoder on the clean, frozen output of the layers below."""
        with torch.no_grad():
            h = self.encode_to(x, i)  # (B, widths[i]), clean; no gradient reaches layers < i+1
        h_in = reg.corrupt(h, self.corruptions) if self.training and self.corruptions else h
        out = self.dec_act[i](self.dec[i](self.enc_act[i](self.enc[i](h_in))))
        # The target is the clean h (Vincent et al. 2010, eq. 6).
        rec = losses.reconstruction_error(out.view_as(x), x, self.config.loss) if i == 0 else (out - h).pow(2).sum(1)
        rec = rec.mean()
        return StepOutput(rec, {"loss": rec.detach(), f"layer{i + 1}_rec": rec.detach()})

    def train_step(self, batch, ctx) -> dict[str, torch.Tensor]:
        name = self.phase_name  # the optimizer of the current phase
        out = self.step_output(batch, lambda *inputs: ctx.forward(*inputs, name=name))
        ctx.step(out.loss, name)
        return out.parts

    @torch.inference_mode()
    def evaluate(self, x: Images, labels: torch.Tensor | None = None,
                 options: EvalOptions = EVAL_DEFAULTS) -> dict[str, float]:
        """Test classification error of the supervised head (Vincent et al. 2010, Table 3)."""
        if self.head is None or labels is None:
            return {}
        batch_size = options.batch_size
        wrong = sum(int((self.head(self.encode(x[i : i + batch_size])).argmax(1) != labels[i : i + batch_size]).sum())
                    for i in range(0, x.shape[0], batch_size))
        return {"test_error": wrong / x.shape[0]}


FAMILY = Family("sdae", StackedDenoisingAutoEncoder, SDAEConfig,
                "stacked denoising autoencoder: layer-wise pretraining, then fine-tuning")
