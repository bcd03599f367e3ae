"""Generative adversarial network (Goodfellow et al. 2014, "Generative Adversarial Nets").

G maps codes z ~ p_z (N(0, I), or uniform on [-1, 1]^D) to images in [0, 1] (sigmoid output);
D maps images to one output, a logit (D(x) = sigmoid(logit)) for the minimax and non-saturating
losses, an unbounded critic score for the hinge and Wasserstein losses. arch "auto" (the default)
picks DCGAN-style conv nets (Radford et al. 2015: strided convolutions with LeakyReLU(0.2) in D,
transposed convolutions with BatchNorm and ReLU in G, weights from N(0, 0.02)) for images of 16 px a
side or more, MLPs for smaller ones.

The stabilisers, each an option: spectral normalisation of D's layers (Miyato et al. 2018), the
hinge loss (Lim & Ye 2017; Miyato et al. 2018) and WGAN-GP (Gulrajani et al. 2017) beside minimax and
non-saturating, dropout in D (Goodfellow et al. 2014 used it, with maxout), two learning rates
(lr_d; Heusel et al. 2017), and an exponential moving average of G's weights (Yazici et al. 2019),
which is what `decode`, `sample` and every evaluation use; training plays D against G itself.

Algorithm 1 on the engine's batches: every call of `train_step` (one engine batch of N real
images) makes ONE discriminator update, on those N images and N fresh prior samples; every
k-th call (k = d_steps) then also makes one generator update, on N fresh prior samples. So an
epoch of M batches makes M discriminator updates and about M / k generator updates (exactly one
per k discriminator updates, counted across epochs), and the data are seen once per epoch
whatever k is. The call count lives in the buffer `d_updates` (saved
with the weights and the checkpoint), so a resumed run continues the k-cycle exactly where it
stopped, even across epoch boundaries.

conditional: the conditional GAN. G(z, y) takes the label y, one-hot, beside z (Mirza & Osindero 2014,
"Conditional Generative Adversarial Nets", section 3.2); D is the projection discriminator of Miyato & Koyama
2018 ("cGANs with Projection Discriminator", eq. 3): D(x, y) = psi(phi(x)) + embed(y) . phi(x). Both players'
fakes in a step take the labels of that step's real batch, so y follows the data's class frequencies.
"""

from __future__ import annotations

import copy
import math
import warnings
from typing import Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from .. import losses
from ..config import check_nets
from ..data import Batch
from ..errors import ConfigError
from ..nn import ConvDecoder, ConvEncoder, ProjectionDiscriminator, build_decoder, mlp, resolve_arch
from ..optim import make_adam
from . import factories
from .base import (
    DIVERSITY_PANEL,
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

PROBABILISTIC = ("minimax", "non-saturating")  # losses whose D outputs a logit of P(real)


class GANConfig(factories.FactorySlots):
    """Generative adversarial network (Goodfellow et al. 2014): generator G(z), discriminator D(x)."""

    arch: Literal["auto", "mlp", "conv"] = Field(
        "auto", description="auto: conv (DCGAN-style, Radford et al. 2015) for images of 16 px a side or more, "
                            "else mlp")
    latent_dim: int = Field(100, ge=1, description="size of z")
    hidden: list[int] = Field([512, 256], description="MLP widths of D, image side first (D x-512-256-1); "
                                                      "G mirrors them")
    channels: list[int] = Field([64, 128], description="conv channels of D, image side first; G mirrors them")
    prior: Literal["normal", "uniform"] = Field("normal", description="p_z: N(0, I), or uniform on [-1, 1]^latent_dim")
    loss: Literal["minimax", "non-saturating", "hinge", "wgan-gp"] = Field(
        "non-saturating", description="minimax | non-saturating (Goodfellow et al. 2014, section 3) | hinge "
                                      "(Lim & Ye 2017) | wgan-gp (Gulrajani et al. 2017)")
    gp_weight: float = Field(10.0, ge=0, description="wgan-gp: lambda, the gradient penalty's weight "
                                                     "(Gulrajani et al. 2017, eq. 3)")
    spectral_norm: bool | None = Field(
        None, description="spectral normalisation of every layer of D, in place of its BatchNorm (Miyato et al. 2018); "
                          "none: on for the MLP D of images, off for vectors, for the conv D (BatchNorm, as in "
                          "DCGAN) and for wgan-gp")
    d_dropout: float = Field(0.0, ge=0, lt=1, description="dropout after each hidden layer of D "
                                                          "(Goodfellow et al. 2014)")
    ema: float = Field(0.999, ge=0, lt=1, description="decay of the moving average of G's weights that samples and "
                                                      "evaluation use (Yazici et al. 2019); 0: G itself")
    d_steps: int = Field(1, ge=1, description="k: discriminator updates per generator update (Algorithm 1)")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="one-sided: D's target for real images is 1 - this "
                                                                "(Salimans et al. 2016; minimax, non-saturating)")
    lr_d: float | None = Field(
        None, gt=0, description="D's learning rate, two time-scale updates (Heusel et al. 2017); none: 4 x --lr for a "
                                "spectrally normalised D (as Zhang et al. 2019), else --lr")
    generator: str | None = factories.target_field("generator")
    generator_kwargs: str = factories.kwargs_field("generator")
    discriminator: str | None = factories.target_field("discriminator")
    discriminator_kwargs: str = factories.kwargs_field("discriminator")
    factory_packages: dict[str, str] = factories.packages_field()
    conditional: bool = conditional_field()
    classes: int | None = classes_field()
    class_counts: list[int] | None = class_counts_field()

    @model_validator(mode="after")
    def _check(self) -> GANConfig:
        check_nets(self.arch, self.hidden, self.channels)
        check_conditional(self)
        if self.label_smoothing and self.loss not in PROBABILISTIC:
            raise ValueError("label smoothing needs a probabilistic D (loss minimax or non-saturating), "
                             f"not {self.loss}")
        return self

# A discriminator whose mean D(G(z)) stays outside [COLLAPSE, 1 - COLLAPSE] this many logged
# intervals in a row has won (or lost) the game outright: the run is warned once per stretch.
COLLAPSE, COLLAPSE_INTERVALS = 0.01, 5


def _dcgan_init(module: nn.Module) -> None:
    """Radford et al. 2015, section 4: weights from N(0, 0.02); BatchNorm scales from N(1, 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:  # every layer of G and D has one
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def _grad_norm(module: nn.Module) -> torch.Tensor:
    """L2 norm of all gradients of a module, as a device tensor (no host sync)."""
    return torch.nn.utils.get_total_norm([p.grad for p in module.parameters() if p.grad is not None]).detach()


def build_discriminator(c: GANConfig, arch: str, shape: tuple[int, ...], spectral: bool) -> nn.Module:
    """Images (B, C, H, W) -> outputs (B,). BatchNorm (conv D) only where nothing else constrains D:
    spectral normalisation replaces it (Miyato et al. 2018), and the gradient penalty is defined per
    image, which batch statistics break (Gulrajani et al. 2017, section 4)."""
    def hidden_activation() -> nn.Module:
        leaky = nn.LeakyReLU(0.2)
        return nn.Sequential(leaky, nn.Dropout(c.d_dropout)) if c.d_dropout else leaky

    if arch == "conv":
        norm = not spectral and c.loss != "wgan-gp"
        body = ConvEncoder(shape, c.channels, activation=hidden_activation, norm=norm)
        return nn.Sequential(body, nn.Linear(body.out_features, 1), nn.Flatten(0))
    # mlp calls `activation()` once per layer, so a function making a module serves (its annotation: a class).
    return nn.Sequential(nn.Flatten(), mlp([math.prod(shape), *c.hidden, 1],
                                           activation=hidden_activation),  # type: ignore[arg-type]
                         nn.Flatten(0))


def build_projection_discriminator(c: GANConfig, arch: str, shape: tuple[int, ...], spectral: bool) -> nn.Module:
    """The conditional D: the unconditional one's body as phi (build_discriminator), the projection on top."""
    def hidden_activation() -> nn.Module:
        leaky = nn.LeakyReLU(0.2)
        return nn.Sequential(leaky, nn.Dropout(c.d_dropout)) if c.d_dropout else leaky

    assert c.classes is not None, "GAN.__init__ refuses a conditional config without classes"
    if arch == "conv":
        body = ConvEncoder(shape, c.channels, activation=hidden_activation, norm=not spectral and c.loss != "wgan-gp")
        return ProjectionDiscriminator(body, body.out_features, c.classes)
    layers: list[nn.Module] = [nn.Flatten()]
    if c.hidden:  # mlp calls `activation()` once per layer (see build_discriminator)
        layers += [mlp([math.prod(shape), *c.hidden], activation=hidden_activation),  # type: ignore[arg-type]
                   hidden_activation()]
    return ProjectionDiscriminator(nn.Sequential(*layers), c.hidden[-1] if c.hidden else math.prod(shape),
                                   c.classes)


def spectral_normalise(module: nn.Module) -> None:
    """W / sigma(W) for every linear and conv layer, sigma by one power iteration per training forward
    (Miyato et al. 2018, Algorithm 1), through torch's parametrization."""
    for layer in [m for m in module.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]:
        nn.utils.parametrizations.spectral_norm(layer)


class GAN(GenerativeModel):
    family = "gan"
    samples = True
    takes_vectors = True  # MLPs with a linear output for standardised vectors
    collapse_advice = "try --loss hinge with --spectral-norm, a lower --lr, --arch auto if you chose the nets"
    d_updates: torch.Tensor  # the buffer registered in __init__, typed
    generator: nn.Module

    def __init__(self, config: GANConfig, shape: tuple[int, ...]):
        super().__init__(config, shape)
        c = config
        self.arch = resolve_arch(c.arch, self.shape, c.channels)
        # The defaults that train (benchmarks/gan_quality.py): an MLP D overfits the few pixels of small
        # images and collapses the game unless spectrally normalised; the conv D has BatchNorm instead, and
        # wgan-gp's gradient penalty bounds D itself (Gulrajani et al. 2017 normalise nothing). On a few standardised
        # columns a 1-Lipschitz D barely separates real from fake (ring8, 3000 steps: D(x) 0.51 against D(G(z))
        # 0.50, no mode reached; without it 0.56 against 0.25, the ring drawn), so vectors go without.
        auto = self.arch == "mlp" and c.loss != "wgan-gp" and not self.vectors
        self.spectral = c.spectral_norm if c.spectral_norm is not None else auto
        if c.conditional and (c.classes is None or c.discriminator):
            raise ConfigError("A conditional GAN needs its number of classes (give --classes N, or train it, which "
                              "takes the data's) and genmodels' own projection discriminator (drop --discriminator).")
        self.needs_labels = c.conditional
        y = c.classes if c.conditional and c.classes else 0  # the one-hot label's width beside z
        build = build_projection_discriminator if c.conditional else build_discriminator
        self.discriminator = (factories.discriminator(c, self.shape) if c.discriminator
                              else build(c, self.arch, self.shape, self.spectral))
        if c.generator:
            self.generator = factories.decoder(c, self.shape, c.latent_dim + y, slot="generator")
        elif self.arch == "conv":  # G: linear -> transposed convs, BatchNorm + ReLU between, mirroring D
            self.generator = ConvDecoder(self.shape, c.channels, c.latent_dim + y, norm=True)
        else:  # G: z -> reversed(hidden) -> image, ReLU between
            self.generator = build_decoder("mlp", self.shape, c.hidden, c.channels, c.latent_dim + y)
        if self.arch == "conv":  # DCGAN's initialisation for genmodels' own nets; a factory's keep their own
            for slot in ("discriminator", "generator"):
                if getattr(c, slot) is None:
                    getattr(self, slot).apply(_dcgan_init)
        if self.spectral:
            spectral_normalise(self.discriminator)
        # The moving average of G's weights (Yazici et al. 2019): what decode, sample and evaluation use.
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False) if c.ema else None
        # Discriminator updates made so far: decides which calls also update G (see the module docstring).
        self.register_buffer("d_updates", torch.zeros((), dtype=torch.long))
        self._host_d_updates: int | None = None  # its host copy, so no step syncs with a GPU to read it
        self.register_load_state_dict_post_hook(lambda module, _: setattr(module, "_host_d_updates", None))
        self._collapsed = 0  # consecutive logged intervals with D(G(z)) outside [COLLAPSE, 1 - COLLAPSE]

    @classmethod
    def for_vectors(cls, config: GANConfig) -> GANConfig:
        """The image defaults (D x-512-256-1, z of 100, ema 0.999, non-saturating) cover 0 of ring8's 8 modes in 20
        epochs; VECTOR_MODEL's (two layers of 256 each side, z of 16, a shorter average, the hinge loss) cover all 8
        with TOY_TRAIN (benchmarks/toy_modes.py). Settings given explicitly are kept."""
        cls.refuse_for_vectors(config, "arch", "conv", "is a network of images", "use --arch mlp or auto")
        unset = {k: v for k, v in VECTOR_MODEL.items() if k not in config.model_fields_set}
        return config.model_copy(update=unset) if unset else config

    def _output(self, out: torch.Tensor) -> torch.Tensor:
        """G's output: images in [0, 1] through a sigmoid; vectors (standardised, unbounded) as they are."""
        return out if self.vectors else torch.sigmoid(out)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def curves(self) -> dict[str, tuple[str, ...]]:
        """The game as it goes: both players' losses, D's mean outputs, and the samples' diversity."""
        outputs = "D(x) and D(G(z))" if self.config.loss in PROBABILISTIC else "critic score D(x) and D(G(z))"
        return {"the game: D's and G's losses": ("d_loss", "g_loss"), f"mean {outputs}": ("d_real", "d_fake"),
                DIVERSITY_PANEL: ("diversity",)}

    @property
    def prior_bounds(self) -> tuple[float, float] | None:
        return (-1.0, 1.0) if self.config.prior == "uniform" else None

    @property
    def samples_from_average(self) -> bool:
        return self.generator_ema is not None

    # -- the model --------------------------------------------------------------
    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z ~ p_z, (n, D): N(0, I), or uniform on [-1, 1]^D."""
        dev = self.d_updates.device
        if self.config.prior == "uniform":
            return torch.rand(n, self.latent_dim, generator=generator, device=dev) * 2 - 1
        return torch.randn(n, self.latent_dim, generator=generator, device=dev)

    def _g_input(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """What G takes: z, and for a conditional G the one-hot label beside it (Mirza & Osindero 2014)."""
        rows = self.label_rows(labels, z)
        return z if rows is None else torch.cat([z, rows], 1)

    def _critic(self, labels: torch.Tensor | None):
        """D as a function of images alone: D(., y) for a conditional D with the labels y."""
        return self.discriminator if labels is None else (lambda t: self.discriminator(t, labels))

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """G(z) (conditional: G(z, y)) with the averaged weights (G itself where ema is 0): images in [0, 1],
        (B, C, H, W)."""
        generator = self.generator if self.generator_ema is None else self.generator_ema
        return self._output(generator(self._g_input(z, labels)))

    def _fake(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        """n images from G itself (not its average), from fresh prior draws: the player D trains against.
        The conv G's BatchNorm needs two samples a batch in training, so a batch of one (the last of an
        epoch, say) draws two and keeps one; any other n draws exactly n."""
        if labels is not None and n < 2:
            labels = labels.repeat(2)[:2]
        return self._output(self.generator(self._g_input(self.prior_sample(max(n, 2)), labels)))[:n]

    def _d_output(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[StepOutput, torch.Tensor]:
        """The discriminator's loss on real x (B, C, H, W) and B fakes from fresh prior draws, with the
        fake outputs (B,). G is run without gradients: this is D's half of the game. The gradient penalty
        of wgan-gp needs gradients, so held-out evaluation (inference mode) reports the loss without it."""
        c = self.config
        with torch.no_grad():
            fake = self._fake(x.shape[0], labels)
        critic = self._critic(labels)
        # float32 logits under mixed precision: the losses and D's mean outputs are computed in float32.
        real_logits, fake_logits = losses.upcast(critic(x)), losses.upcast(critic(fake))
        # The loss's paper and equation: losses.gan_discriminator_loss.
        d_loss = losses.gan_discriminator_loss(real_logits, fake_logits, c.loss, c.label_smoothing)
        score = torch.sigmoid if c.loss in PROBABILISTIC else (lambda t: t)  # D(x) as a probability, or the critic
        parts = {"d_real": score(real_logits).mean().detach(),  # mean D(x)
                 "d_fake": score(fake_logits).mean().detach()}  # mean D(G(z))
        if c.loss == "wgan-gp" and torch.is_grad_enabled():
            gp = losses.gradient_penalty(critic, x, fake)  # Gulrajani et al. 2017, eq. 3
            parts["gradient_penalty"] = gp.detach()
            d_loss = d_loss + c.gp_weight * gp
        parts = {"loss": d_loss.detach(), "d_loss": d_loss.detach(), **parts}
        return StepOutput(d_loss, parts), fake_logits.detach()

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> StepOutput:
        """The discriminator step's loss and parts ("loss" is d_loss: a GAN has no single objective)."""
        return self._d_output(x, labels)[0]

    def _generator_step(self, n: int, ctx, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """One update of G on n fresh prior samples (D is frozen so no gradient is spent on it), then
        one update of the moving average. A conditional G's samples take the labels (n,)."""
        self.discriminator.requires_grad_(False)
        try:
            g_loss = ctx.run("g", self._generator_loss, n, *([] if labels is None else [labels]))
            ctx.step(g_loss, "g")
        finally:
            self.discriminator.requires_grad_(True)
        self._update_average()
        parts = {"g_loss": g_loss.detach()}
        if ctx.steps_to_log < self.config.d_steps:  # G's last update before a record: a pass over every gradient
            parts["g_grad_norm"] = _grad_norm(self.generator)  # that every other step is spared
        return parts

    def _generator_loss(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        """G's loss on n fresh prior samples, through D (the loss's paper and equation: losses.gan_generator_loss)."""
        return losses.gan_generator_loss(self._critic(labels)(self._fake(n, labels)), self.config.loss)

    @torch.no_grad()
    def _update_average(self) -> None:
        """ema <- beta ema + (1 - beta) G after each generator update, with beta = min(ema, (1 + t) / (10 + t))
        at the t-th update, so the early average is not held at G's initial weights; buffers (BatchNorm's
        running statistics) are copied."""
        if self.generator_ema is None:
            return
        t = self._host_d_updates // self.config.d_steps
        beta = min(self.config.ema, (1 + t) / (10 + t))
        torch._foreach_lerp_(list(self.generator_ema.parameters()), list(self.generator.parameters()), 1.0 - beta)
        for average, current in zip(self.generator_ema.buffers(), self.generator.buffers()):
            average.copy_(current)

    def train_step(self, batch: Batch, ctx) -> dict[str, torch.Tensor]:
        """One discriminator update on the batch; every d_steps-th call also one generator update.

        Generator parts (g_loss, g_grad_norm) come only from the calls that update G; the engine
        averages each part over the calls that returned it. The gradient norms come only from the last D and G
        updates before each record (ctx.steps_to_log), so a record holds those two norms, not an interval's mean."""
        x, labels = batch.x, batch.labels if self.conditional else None
        out = ctx.forward(x, *([] if labels is None else [labels]), name="d")
        ctx.step(out.loss, "d")
        parts = dict(out.parts)
        if ctx.logged:
            parts["d_grad_norm"] = _grad_norm(self.discriminator)
        if self._host_d_updates is None:  # once after building or loading: the only read of the buffer
            self._host_d_updates = int(self.d_updates)
        self._host_d_updates += 1
        self.d_updates.add_(1)
        if self._host_d_updates % self.config.d_steps == 0:
            parts.update(self._generator_step(x.shape[0], ctx, labels))
        return parts

    # -- training set-up and diagnostics -------------------------------------------
    def make_optimizers(self, train, device: torch.device) -> dict[str, torch.optim.Optimizer]:
        """Separate Adam optimisers for D and G. D's learning rate is lr_d, or by default 4 x train.lr when D
        is spectrally normalised (two time-scales: a Lipschitz-bounded D learns slower; the 1e-4 / 4e-4 of
        Zhang et al. 2019) and train.lr otherwise."""
        lr_d = self.config.lr_d or (4 * train.lr if self.spectral else train.lr)
        train_d = train.model_copy(update={"lr": lr_d})
        return {"d": make_adam(self.discriminator.parameters(), train_d, device),
                "g": make_adam(self.generator.parameters(), train, device)}

    def check_logged(self, means: dict[str, float]) -> None:
        """Warn once when mean D(G(z)) has stayed below 0.01 or above 0.99 for COLLAPSE_INTERVALS intervals
        (a probabilistic D only: a critic's score has no such bounds)."""
        d_fake = means.get("d_fake")
        if d_fake is None or self.config.loss not in PROBABILISTIC:
            return
        self._collapsed = self._collapsed + 1 if not COLLAPSE <= d_fake <= 1 - COLLAPSE else 0
        if self._collapsed == COLLAPSE_INTERVALS:
            side = "rejects every sample" if d_fake < COLLAPSE else "accepts every sample"
            warnings.warn(f"The discriminator {side} (mean D(G(z)) = {d_fake:.4f} for {COLLAPSE_INTERVALS} logged "
                          f"intervals in a row), so the generator may have stopped learning; {self.collapse_advice}, "
                          "--label-smoothing 0.1 or fewer --d-steps.", RuntimeWarning, stacklevel=2)

    # -- evaluation -----------------------------------------------------------------
    @torch.inference_mode()
    def eval_parts(self, batch: Batch) -> dict[str, torch.Tensor]:
        """D on held-out images and on as many fresh samples, no optimisation: loss, d_loss, d_real,
        d_fake, and the generator's loss at those samples."""
        out, fake_logits = self._d_output(batch.x, batch.labels if self.conditional else None)
        return {**out.parts, "g_loss": losses.gan_generator_loss(fake_logits, self.config.loss)}

    @torch.inference_mode()
    def evaluate(self, x: Images, labels: torch.Tensor | None = None,
                 options: EvalOptions = EVAL_DEFAULTS) -> dict[str, float]:
        """Mean D(x) on the held-out images x, mean D(G(z)) on as many samples, and D's loss."""
        sums: dict[str, torch.Tensor] = {}
        batch_size = options.batch_size
        for i in range(0, x.shape[0], batch_size):
            xb = x[i : i + batch_size]
            yb = labels[i : i + batch_size].to(xb.device) if labels is not None and self.conditional else None
            for k, v in self.eval_parts(Batch(xb, yb)).items():
                if k in ("d_real", "d_fake", "d_loss"):
                    sums[k] = sums.get(k, 0.0) + v * xb.shape[0]
        return {k: (v / x.shape[0]).item() for k, v in sums.items()}


# The defaults on vector data (N, D), each where it is not given: GAN.for_vectors applies VECTOR_MODEL (the hinge
# loss: with the non-saturating one, seed 1 collapsed onto 2 of ring8's 8 modes), and TOY_TRAIN are the training
# settings for the 2-D toys' 10,000 points, one set for ring8 and grid25 (benchmarks/toy_modes.py,
# docs/benchmarks.md, seeds 0, 1, 2). 60 epochs of 50 at lr 4e-3 (12,000 updates, about 44 s on two quiet cores)
# cover ring8's 8 modes (0.94-0.95 of the samples within 3 std) and 24 to 25 of grid25's. Fewer updates did not:
# 40 epochs of 100 covered 14 to 24 of grid25's at 4e-3, 9 to 10 at 1e-3; 60 or 80 epochs of 64, 19 for seed 1;
# batch 32 at 4e-3 (12,520 updates) 24 to 25 of grid25's but 6 of ring8's for seed 2. A cosine schedule or beta1 0
# lost modes; Radford et al.'s lr 2e-4 and beta2 0.999 reach 0 to 2 of ring8's.
VECTOR_MODEL: dict[str, object] = {"hidden": [256, 256], "latent_dim": 16, "ema": 0.99, "loss": "hinge"}
TOY_TRAIN: dict[str, object] = {"lr": 4e-3, "betas": (0.5, 0.9), "epochs": 60, "batch_size": 50}

# Adam lr 2e-4, beta1 0.5: Radford et al. 2015, section 4.
FAMILY = Family("gan", GAN, GANConfig, "generative adversarial network (MLP or DCGAN-style)",
                {"lr": 2e-4, "betas": (0.5, 0.999)}, toy_train_defaults=TOY_TRAIN)
