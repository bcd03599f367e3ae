"""Lessons on the adversarial game: the minimax generator loss saturates early, the non-saturating one does not
(`minimax-saturates`)."""

from __future__ import annotations

from typing import cast

import torch

from ..evaluation import pixel_quality
from ..models import GAN
from .lesson import Context, Lesson, Outcome
from .measures import generator_gradient_norms
from .pictures import image_rows

# D alone: a generator update every d_steps discriminator updates, more than the run makes, so G stays as it
# was initialised while D learns to reject its samples.
D_ALONE = {"epochs": 2, "batch_size": 64}
# The paper's D has no spectral normalisation; the family's default MLP D has it (a stabiliser that bounds how
# confident D can get), measured beside as the second number.
D_ALONE_MODEL = {"d_steps": 10_000, "ema": 0.0, "spectral_norm": False}
SHORT = {"epochs": 30, "batch_size": 64}
CODES, MIN_RATIO = 256, 10.0


def _last(history: list[dict], key: str) -> float | None:
    values = [r[key] for r in history if key in r and r.get("split", "train") == "train"]
    return float(values[-1]) if values else None


def _at_start(ctx: Context, run: str, model: dict, prefix: str) -> dict:
    """Both losses' gradient norms over G's weights after D has trained alone against the fresh G."""
    gan = cast(GAN, ctx.train(run, GAN.family, model, D_ALONE).model).eval()  # the family just named
    z = gan.prior_sample(CODES, torch.Generator().manual_seed(ctx.seed))
    found = generator_gradient_norms(gan.generator, gan.discriminator, z)
    return {f"{prefix}mean_d_of_g_z_at_start": round(found["d_fake"], 5),
            f"{prefix}grad_norm_minimax_at_start": found["minimax"],
            f"{prefix}grad_norm_non_saturating_at_start": found["non-saturating"],
            f"{prefix}ratio_at_start": round(found["non-saturating"] / max(found["minimax"], 1e-30), 2)}


def minimax_saturates(ctx: Context) -> Outcome:
    steps = -(-len(ctx.data.train) // D_ALONE["batch_size"]) * ctx.epochs(D_ALONE["epochs"])
    numbers: dict = {"d_steps_before": steps, **_at_start(ctx, "d-alone", D_ALONE_MODEL, ""),
                     **_at_start(ctx, "d-alone-spectral-norm", {**D_ALONE_MODEL, "spectral_norm": True},
                                 "spectral_norm_")}
    ratio = numbers["ratio_at_start"]
    rows = []
    real = ctx.images()
    for loss in ("minimax", "non-saturating"):
        result = ctx.train(loss, GAN.family, {"loss": loss, "spectral_norm": False}, SHORT)
        trained = cast(GAN, result.model).eval()
        with torch.no_grad():
            samples = trained.sample(64, torch.Generator().manual_seed(ctx.seed))
        rows.append(samples[:16])
        quality = pixel_quality(samples, real[:64])
        numbers[f"{loss}_final_mean_d_of_g_z"] = _last(result.history, "d_fake")
        numbers[f"{loss}_final_g_grad_norm"] = _last(result.history, "g_grad_norm")
        numbers.update({f"{loss}_{k}": round(v, 4) for k, v in quality.items()})
    picture = image_rows(rows, ctx.picture("samples"))
    reason = (f"after {steps} discriminator steps against a fresh generator (mean D(G(z)) = "
              f"{numbers['mean_d_of_g_z_at_start']:.4f}), the non-saturating gradient norm is {ratio:.1f} times "
              "the minimax one "
              f"(criterion {MIN_RATIO:g}); with the family's spectrally normalised D, "
              f"{numbers['spectral_norm_ratio_at_start']:.1f} times at mean D(G(z)) = "
              f"{numbers['spectral_norm_mean_d_of_g_z_at_start']:.3f}")
    return Outcome(numbers, ratio >= MIN_RATIO, reason,
                   [("samples after the short training: minimax (top), non-saturating (bottom)", picture)])


LESSONS = (
    Lesson("minimax-saturates",
           "Early in training D rejects G's samples confidently, and the minimax generator loss log(1 - D(G(z))) "
           "then gives G almost no gradient; -log D(G(z)) gives a strong one at the same fixed point.",
           "Goodfellow et al. 2014, Generative adversarial nets, section 3",
           f"With the paper's D (no spectral normalisation) trained alone for {D_ALONE['epochs']} epochs against "
           "a freshly initialised G, G's gradient "
           f"norm under the non-saturating loss is at least {MIN_RATIO:g} times the norm under the minimax loss, "
           f"at the same D, G and {CODES} codes.",
           "Train D alone against a fresh G (a generator update never comes round), measure both losses' "
           "gradient norms over G's weights, and the same with the family's default, spectrally normalised D; "
           f"then train a GAN with each loss for {SHORT['epochs']} epochs and report what each reaches (mean "
           "D(G(z)), G's gradient norm, pixel sharpness and diversity).",
           minimax_saturates, seconds=25),
)
