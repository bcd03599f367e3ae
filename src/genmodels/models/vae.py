"""Variational autoencoder (Kingma & Welling 2013, "Auto-Encoding Variational Bayes").

q(z|x) = N(mu(x), diag(sigma(x)^2)), p(z) = N(0, I), p(x|z) Bernoulli (logits)
or Gaussian (fixed or learned std). The loss is the negative ELBO in nats per
image: summed over pixels and latent dimensions, averaged over the batch.
On vector data (standardised, unbounded) p(x|z) is Gaussian with a linear mean
(a Bernoulli decoder and binarisation are refused; the likelihood defaults to gaussian).

conditional: the conditional VAE (Sohn et al. 2015, "Learning Structured Output Representation using Deep
Conditional Generative Models"; the generative part of Kingma et al. 2014's M2): the label y, one-hot, enters
the encoder q(z|x,y) (beside its features, before the mean and log-variance heads) and the decoder p(x|z,y)
(beside z); p(z) stays N(0, I), so the loss is the negative ELBO of log p(x|y).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from pydantic import Field, model_validator
from torch import nn
from tqdm.auto import tqdm

from .. import losses
from ..config import check_nets
from ..errors import ConfigError
from ..nn import build_decoder, build_encoder
from . import factories
from .base import (
    EVAL_DEFAULTS,
    EvalOptions,
    Family,
    GenerativeModel,
    Images,
    StepOutput,
    check_conditional,
    class_counts_field,
    classes_field,
    conditional_field,
)


class VAEConfig(factories.FactorySlots):
    """Variational autoencoder (Kingma & Welling 2013)."""

    arch: Literal["mlp", "conv"] = Field("mlp", description="mlp | conv")
    latent_dim: int = Field(16, ge=1, description="size of z")
    hidden: list[int] = Field([512], description="MLP hidden widths, input side first, e.g. 512,256")
    channels: list[int] = Field([32, 64], description="conv channels, input side first, e.g. 32,64")
    likelihood: Literal["bernoulli", "gaussian"] = Field("bernoulli", description="p(x|z)")
    binarize: bool = Field(False, description="dynamic binarisation: x ~ Bernoulli(pixel) afresh each batch "
                                              "(bernoulli only)")
    gaussian_std: float = Field(1.0, gt=0, description="std of the gaussian likelihood (its initial value if learned)")
    learn_std: bool = Field(False, description="learn one std per pixel for the gaussian likelihood")
    beta: float = Field(1.0, ge=0, description="weight of the KL term (beta-VAE, Higgins et al. 2017); 1 is the ELBO")
    encoder: str | None = factories.target_field("encoder")
    encoder_kwargs: str = factories.kwargs_field("encoder")
    decoder: str | None = factories.target_field("decoder")
    decoder_kwargs: str = factories.kwargs_field("decoder")
    factory_packages: dict[str, str] = factories.packages_field()
    conditional: bool = conditional_field()
    classes: int | None = classes_field()
    class_counts: list[int] | None = class_counts_field()

    @model_validator(mode="after")
    def _check(self) -> VAEConfig:
        check_nets(self.arch, self.hidden, self.channels)
        check_conditional(self)
        if self.binarize and self.likelihood != "bernoulli":
            raise ValueError("binarize applies to the bernoulli likelihood only")
        return self


# Elements of decoder output allowed at once when evaluating the importance-weighted bound.
_IW_CHUNK_ELEMENTS = 1 << 24


class VAE(GenerativeModel):
    family = "vae"
    encodes = samples = True
    takes_vectors = True

    @classmethod
    def for_vectors(cls, config: VAEConfig) -> VAEConfig:
        cls.refuse_for_vectors(config, "arch", "conv", "is a network of images", "use --arch mlp")
        cls.refuse_for_vectors(config, "binarize", True, "draws binary pixels", "drop --binarize")
        # The default likelihood, Bernoulli, models pixels in [0, 1]; a Gaussian of std 1 in standardised units
        # spreads ring8's samples between its modes (0 of 8 covered). VECTOR_MODEL, each setting not given.
        unset = {k: v for k, v in VECTOR_MODEL.items() if k not in config.model_fields_set}
        config = config.model_copy(update=unset) if unset else config
        cls.refuse_for_vectors(config, "likelihood", "bernoulli", "models values in [0, 1], not unbounded "
                               "standardised vectors", "use --likelihood gaussian")
        return config

    def __init__(self, config: VAEConfig, shape: tuple[int, ...]):
        super().__init__(config, shape)
        c = config
        if c.conditional and c.classes is None:
            raise ConfigError("A conditional VAE needs its number of classes; give --classes N, or train it, which "
                              "takes the data's.")
        self.needs_labels = c.conditional
        y = (c.classes or 0) if c.conditional else 0  # the one-hot label's width beside the features and z
        self.encoder, feat = (factories.encoder(c, self.shape) if c.encoder
                              else build_encoder(c.arch, self.shape, c.hidden, c.channels))
        self.mu_head = nn.Linear(feat + y, c.latent_dim)
        self.logvar_head = nn.Linear(feat + y, c.latent_dim)
        self.decoder = (factories.decoder(c, self.shape, c.latent_dim + y) if c.decoder
                        else build_decoder(c.arch, self.shape, c.hidden, c.channels, c.latent_dim + y))
        # log std of p(x|z): one learned value per pixel, or a fixed float (the cheaper path)
        self.log_std: nn.Parameter | float = math.log(c.gaussian_std)
        if c.likelihood == "gaussian" and c.learn_std:
            self.log_std = nn.Parameter(torch.full(self.shape, math.log(c.gaussian_std)))

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    # -- the model --------------------------------------------------------------
    def posterior(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x) (conditional: q(z|x,y)): mean and log-variance, each (B, D)."""
        h = self.encoder(x)
        rows = self.label_rows(labels, h)
        if rows is not None:  # Sohn et al. 2015: the recognition network takes y beside x
            h = torch.cat([h, rows], 1)
        return self.mu_head(h), self.logvar_head(h)

    def _decoded(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """The decoder's output for codes z (B, D) (conditional: p(x|z,y), y one-hot beside z)."""
        rows = self.label_rows(labels, z)
        return self.decoder(z if rows is None else torch.cat([z, rows], 1))

    def log_likelihood(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per image (B,), from decoder output (B, C, H, W)."""
        if self.config.likelihood == "bernoulli":
            return losses.bernoulli_log_likelihood(out, x)
        # Gaussian mean squashed into the image range [0, 1]; linear for vectors.
        return losses.gaussian_log_likelihood(x, self._mean(out), self.log_std)

    def _mean(self, out: torch.Tensor) -> torch.Tensor:
        return out if self.vectors else torch.sigmoid(out)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        # Dynamic binarisation: a fresh Bernoulli draw of every training image each time it is seen.
        return torch.bernoulli(x) if self.config.binarize and self.training else x

    def eval_input(self, x: torch.Tensor) -> torch.Tensor:
        # Binarised models are evaluated on binary data; the caller seeds the draw so it is fixed.
        return torch.bernoulli(x) if self.config.binarize else x

    def _terms(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """-log p(x|z) for one z ~ q(z|x), and KL(q(z|x) || p(z)), each per image (B,) (conditional: given y)."""
        mu, logvar = map(losses.upcast, self.posterior(x, labels))  # float32 under mixed precision: eps and z too
        # Reparameterisation (Kingma & Welling 2013, eq. 10): z = mu + sigma * eps, eps ~ N(0, I).
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        rec = -self.log_likelihood(x, self._decoded(z, labels))  # -log p(x|z), one-sample estimate (eq. 10)
        kl = losses.gaussian_kl_standard(mu, logvar)  # KL(q(z|x) || p(z)), analytic (Appendix B)
        return rec, kl

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> StepOutput:
        rec, kl = self._terms(self._prepare(x), labels)
        rec, kl = rec.mean(), kl.mean()
        loss = rec + self.config.beta * kl  # negative ELBO (eq. 10) when beta = 1
        nelbo = (rec + kl).detach()
        return StepOutput(loss, {"loss": loss.detach(), "rec": rec.detach(), "kl": kl.detach(), "nelbo": nelbo})

    # -- capabilities -------------------------------------------------------------
    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The posterior mean, (B, D): the code used for plots and probes (float32 under mixed precision)."""
        return losses.upcast(self.posterior(x, labels)[0])

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The mean image E[x|z] (conditional: E[x|z,y]) in [0, 1], (B, C, H, W) (vectors: the mean (B, D),
        standardised)."""
        return self._mean(self._decoded(z, labels))

    # -- evaluation -----------------------------------------------------------------
    def log_weights(self, x: torch.Tensor, k: int, posterior: tuple[torch.Tensor, torch.Tensor] | None = None,
                    labels: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x, z_k) - log q(z_k|x) for k posterior samples per image: (k, B) (conditional: every density given
        the labels y (B,)). posterior: q(z|x)'s (mu, logvar) for x, when the caller has them already."""
        b = x.shape[0]
        mu, logvar = map(losses.upcast, self.posterior(x, labels) if posterior is None else posterior)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(k, *mu.shape, device=mu.device)  # (k, B, D)
        flat = None if labels is None else labels.repeat(k)  # sample-major, as z.reshape(k * b, -1) lies
        out = self._decoded(z.reshape(k * b, -1), flat).reshape(k, b, *self.shape)  # (k, B, C, H, W)
        log_px_z = self.log_likelihood(x, out)  # (k, B): x broadcast over the k samples, not copied
        # float32 whatever the precision (losses upcasts), so the log-sum-exp over K below is too.
        return log_px_z + losses.log_standard_normal(z) - losses.log_normal_diag(z, mu, logvar)

    def iw_chunk(self, batch: int) -> int:
        """Samples per image that importance_weighted_bound draws at once for a batch of `batch` images."""
        per_sample = batch * math.prod(self.shape) * 2  # the decoder output and the likelihood's one temporary
        return max(1, _IW_CHUNK_ELEMENTS // per_sample)

    def importance_weighted_bound(self, x: torch.Tensor, k: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x) >= log (1/K) sum_k p(x, z_k) / q(z_k|x), z_k ~ q(z|x) (Burda et al. 2015, eq. 8): (B,)
        (conditional: the bound on log p(x|y) for the labels y (B,)).

        Vectorised over K, chunked so that at most _IW_CHUNK_ELEMENTS decoder outputs live at once;
        the encoder runs once per image, not once per chunk."""
        chunk, posterior = self.iw_chunk(x.shape[0]), self.posterior(x, labels)
        parts = [self.log_weights(x, min(chunk, k - i), posterior, labels) for i in range(0, k, chunk)]
        return torch.logsumexp(torch.cat(parts, 0), 0) - math.log(k)

    def elbo(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """The evidence lower bound per image (B,), one-sample reconstruction term, analytic KL."""
        rec, kl = self._terms(x, labels)
        return -(rec + kl)

    def class_scores(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """log p(x|y) + log p(y) for every class y, (B, classes): log p(x|y) the importance-weighted bound with k
        samples, p(y) the training split's class proportions (class_counts). By Bayes' rule, their argmax over y
        is that of p(y|x): the generative model as a classifier (one bound per class, in class order)."""
        log_prior = torch.log(self.class_prior(x.device))
        bounds = [self.importance_weighted_bound(x, k, torch.full((x.shape[0],), y, dtype=torch.long, device=x.device))
                  for y in range(self.classes)]
        return torch.stack(bounds, 1) + log_prior

    @torch.inference_mode()
    def evaluate(self, x: Images, labels: torch.Tensor | None = None,
                 options: EvalOptions = EVAL_DEFAULTS) -> dict[str, float]:
        """Test ELBO and importance-weighted log-likelihood, nats per image (higher is better); a conditional
        model's given each image's label (log p(x|y)), and its Bayes classifier's accuracy and confusion matrix
        (class_scores, with options.bayes_samples samples per bound)."""
        importance_samples, batch_size = options.importance_samples, options.batch_size
        bayes = self.conditional and labels is not None and options.bayes_samples > 0
        elbo, iw, predicted = [], [], []
        starts = range(0, x.shape[0], batch_size)
        for i in tqdm(starts, desc=f"log p(x), K={importance_samples}", unit="batch",
                      disable=None if options.progress else True):  # None: a bar on a terminal only
            xb = x[i : i + batch_size]
            yb = labels[i : i + batch_size].to(xb.device) if self.conditional and labels is not None else None
            given = [] if yb is None else [yb]  # an unconditional model's calls stay as they were
            elbo.append(self.elbo(xb, *given))
            iw.append(self.importance_weighted_bound(xb, importance_samples, *given))
            if bayes:
                predicted.append(self.class_scores(xb, options.bayes_samples).argmax(1))
        elbo_t, iw_t = torch.cat(elbo), torch.cat(iw)
        n = elbo_t.numel()
        found: dict[str, Any] = {  # Any: bayes_confusion is a matrix beside the numbers
            "elbo": elbo_t.mean().item(),
            "log_likelihood_iw": iw_t.mean().item(),
            "log_likelihood_iw_stderr": (iw_t.std() / math.sqrt(n)).item() if n > 1 else 0.0,
            "importance_samples": importance_samples,
        }
        if bayes and labels is not None:
            truth, guess = labels[:n].to(elbo_t.device).long(), torch.cat(predicted)
            confusion = torch.bincount(truth * self.classes + guess, minlength=self.classes**2)
            found.update({"bayes_accuracy": (guess == truth).float().mean().item(),
                          "bayes_samples": options.bayes_samples,
                          "bayes_confusion": confusion.view(self.classes, self.classes).tolist()})
        return found


# The defaults on vector data (N, D), each where it is not given (VAE.for_vectors): a Gaussian decoder of fixed std
# 0.05 in standardised units (a learned std stays wide: 0 of ring8's modes), two layers of 256 and a 2-D code; with
# TOY_TRAIN's epochs on the 2-D toys' 10,000 points they cover ring8's 8 modes (benchmarks/toy_modes.py).
VECTOR_MODEL: dict[str, object] = {"likelihood": "gaussian", "gaussian_std": 0.05, "hidden": [256, 256],
                                   "latent_dim": 2}
TOY_TRAIN: dict[str, object] = {"epochs": 40}

FAMILY = Family("vae", VAE, VAEConfig, "variational autoencoder", toy_train_defaults=TOY_TRAIN)
