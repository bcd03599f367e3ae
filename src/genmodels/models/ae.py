"""Autoencoder f (encoder) and g (decoder) with pluggable corruption and penalties.

The loss is L(x, g(f(x~))) + the chosen penalties, x~ ~ q_D(x~|x) (x~ = x without
corruption). Reconstruction is summed over pixels and averaged over the batch,
as squared error (Hinton & Salakhutdinov 2006) or Bernoulli cross-entropy.
"""

from __future__ import annotations

from typing import Literal, cast

import torch
from pydantic import Field, model_validator
from torch import nn

from .. import losses
from ..config import check_nets
from ..nn import ACTIVATIONS, build_decoder, build_encoder
from . import factories
from . import regularisers as reg
from .base import Family, GenerativeModel, StepOutput


class AEConfig(factories.FactorySlots):
    """Autoencoder with optional regularisers, combinable in one run."""

    arch: Literal["mlp", "conv"] = Field("mlp", description="mlp | conv")
    latent_dim: int = Field(30, ge=1,
                            description="code size: below the input size is undercomplete, above overcomplete")
    hidden: list[int] = Field([512], description="MLP hidden widths, input side first, e.g. 512,256")
    channels: list[int] = Field([32, 64], description="conv channels, input side first, e.g. 32,64")
    code_activation: Literal["linear", "sigmoid", "relu"] = Field(
        "linear", description="the code layer: h = act(W x + b)")
    loss: Literal["mse", "bce"] = Field("mse", description="||x - g(f(x))||^2, or Bernoulli cross-entropy on logits")
    weight_decay: float = Field(0.0, ge=0, description="beta of beta * ||w||^2, reported as its own term")
    corrupt: list[str] = Field([], description="denoising corruption q_D, repeatable, applied in order: "
                                               "mask:NU, gauss:SIGMA, saltpepper:P")
    contractive: float = Field(0.0, ge=0, description="lambda of lambda * ||J_f(x)||_F^2 (Rifai et al. 2011)")
    contractive_method: Literal["auto", "exact", "projection"] = Field(
        "auto", description="auto: the closed form where it applies (one sigmoid layer), else exact")
    contractive_projections: int = Field(1, ge=1,
                                         description="random projections per image for the projection estimate")
    sparse_l1: float = Field(0.0, ge=0, description="weight of the L1 penalty sum_j |h_j| on the code")
    sparse_kl: float = Field(0.0, ge=0, description="beta of beta * sum_j KL(rho || rho_hat_j); needs sigmoid codes")
    sparse_rho: float = Field(0.05, gt=0, lt=1, description="target mean activation rho of the KL sparsity penalty")
    encoder: str | None = factories.target_field("encoder")
    encoder_kwargs: str = factories.kwargs_field("encoder")
    decoder: str | None = factories.target_field("decoder")
    decoder_kwargs: str = factories.kwargs_field("decoder")
    factory_packages: dict[str, str] = factories.packages_field()

    @model_validator(mode="after")
    def _check(self) -> AEConfig:
        check_nets(self.arch, self.hidden, self.channels)
        for spec in self.corrupt:
            reg.parse_corruption(spec)  # raises a ConfigError naming the bad corruption
        if self.sparse_kl > 0 and self.code_activation != "sigmoid":
            raise ValueError("sparse_kl needs code_activation = sigmoid (rho_hat is a mean activation in (0, 1))")
        return self


class AutoEncoder(GenerativeModel):
    family = "ae"
    encodes = True
    takes_vectors = True

    @classmethod
    def for_vectors(cls, config: AEConfig) -> AEConfig:
        cls.refuse_for_vectors(config, "arch", "conv", "is a network of images", "use --arch mlp")
        cls.refuse_for_vectors(config, "loss", "bce", "models values in [0, 1], not unbounded standardised vectors",
                               "use --loss mse")
        return config

    def __init__(self, config: AEConfig, shape: tuple[int, ...]):
        super().__init__(config, shape)
        c = config
        body, feat = (factories.encoder(c, self.shape) if c.encoder
                      else build_encoder(c.arch, self.shape, c.hidden, c.channels))
        self.encoder = nn.Sequential(body, nn.Linear(feat, c.latent_dim), ACTIVATIONS[c.code_activation]())
        self.decoder = (factories.decoder(c, self.shape, c.latent_dim) if c.decoder
                        else build_decoder(c.arch, self.shape, c.hidden, c.channels, c.latent_dim))
        self.corruptions = [reg.parse_corruption(s) for s in c.corrupt]
        # Rifai et al.'s closed form holds for h = sigmoid(W x + b) straight from the pixels.
        self.one_layer_sigmoid = (c.arch == "mlp" and not c.hidden and c.code_activation == "sigmoid"
                                  and c.encoder is None)

    @property
    def code_layer(self) -> nn.Linear:
        """The linear map into the code, h = act(W . + b)."""
        return cast(nn.Linear, self.encoder[1])  # built as (body, Linear, activation) in __init__

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        out = self.decoder(z)
        return torch.sigmoid(out) if self.config.loss == "bce" else out

    def reconstruction_error(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per image (B,), summed over pixels: ||x - g(f(.))||^2, or cross-entropy from logits."""
        return losses.reconstruction_error(out, x, self.config.loss)

    def contractive_penalty(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """||J_f(x)||_F^2 averaged over the batch, by the closed form, the exact Jacobian or projections."""
        method = self.config.contractive_method
        if method == "projection":
            return reg.contractive_projection(self.encoder, x, self.config.contractive_projections).mean()
        if method == "auto" and self.one_layer_sigmoid:
            return reg.contractive_sigmoid_closed_form(h, self.code_layer.weight).mean()
        return reg.contractive_exact(self.encoder, x).mean()

    def forward(self, x: torch.Tensor) -> StepOutput:
        c = self.config
        x_in = reg.corrupt(x, self.corruptions) if self.training and self.corruptions else x
        h = self.encoder(x_in)  # (B, D)
        rec = self.reconstruction_error(self.decoder(h), x).mean()  # denoising: the target is the clean x
        parts = {"rec": rec}
        if c.weight_decay:
            parts["weight_decay"] = c.weight_decay * reg.weight_decay(self)
        if c.contractive:
            h_clean = h if x_in is x else self.encoder(x)
            parts["contractive"] = c.contractive * self.contractive_penalty(x, h_clean)
        if c.sparse_l1:
            parts["sparse_l1"] = c.sparse_l1 * losses.upcast(h).abs().sum(1).mean()
        if c.sparse_kl:
            parts["sparse_kl"] = c.sparse_kl * reg.sparse_kl(h, c.sparse_rho)
        loss = cast(torch.Tensor, sum(parts.values()))  # parts holds rec at least, so the sum is a tensor
        return StepOutput(loss, {"loss": loss.detach(), **{k: v.detach() for k, v in parts.items()}})


FAMILY = Family("ae", AutoEncoder, AEConfig, "autoencoder, optionally denoising, contractive, sparse, weight-decayed")
