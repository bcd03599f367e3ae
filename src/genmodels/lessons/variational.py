"""Lessons on the variational autoencoder's objective: the ELBO is a lower bound that importance sampling tightens
(`elbo-is-a-bound`), and the reparameterisation trick is what makes the encoder's gradient usable
(`reparameterisation`)."""

from __future__ import annotations

from typing import cast

import torch

from ..models import VAE
from .lesson import Context, Lesson, Outcome
from .measures import agreement, gradient_estimates, iw_bounds, total_variance
from .pictures import histograms, line_plot

MODEL = {"latent_dim": 8, "hidden": [128]}
TRAIN = {"epochs": 100, "batch_size": 64, "lr": 2e-3}
KS = (1, 10, 100, 1000, 5000)
IMAGES, REPEATS = 100, 5
SIGNIFICANT = 3.0  # standard errors


def _vae(ctx: Context) -> VAE:
    model = cast(VAE, ctx.train(VAE.family, VAE.family, MODEL, TRAIN).model)  # the family just named
    return model.eval()


def elbo_is_a_bound(ctx: Context) -> Outcome:
    model = _vae(ctx)
    x = ctx.images()[:IMAGES]
    with torch.no_grad():
        bounds = iw_bounds(lambda k: model.importance_weighted_bound(x, k), KS, REPEATS, seed=ctx.seed)
        torch.manual_seed(ctx.seed)
        elbos = torch.tensor([float(model.elbo(x).double().mean()) for _ in range(REPEATS * 20)])
    elbo, elbo_se = float(elbos.mean()), float(elbos.std() / len(elbos) ** 0.5)
    means, errors = [bounds[k][0] for k in KS], [bounds[k][1] for k in KS]
    falls = [f"K={a} to K={b}" for a, b in zip(KS, KS[1:])
             if bounds[b][0] < bounds[a][0] - SIGNIFICANT * (bounds[a][1] ** 2 + bounds[b][1] ** 2) ** 0.5]
    gap = means[-1] - elbo
    gap_se = (errors[-1] ** 2 + elbo_se ** 2) ** 0.5
    holds = not falls and gap > SIGNIFICANT * gap_se
    picture = line_plot(ctx.picture("bound"), KS, {"importance-weighted bound": (means, errors)},
                        "K (importance samples)", "nats per image (mean of test images)", log_x=True,
                        lines={"ELBO": elbo})
    numbers = {"images": IMAGES, "repeats": REPEATS, "elbo": round(elbo, 4), "elbo_stderr": round(elbo_se, 4),
               "bound_by_k": {str(k): round(m, 4) for k, m in zip(KS, means)},
               "bound_stderr_by_k": {str(k): round(e, 4) for k, e in zip(KS, errors)},
               "gap_at_largest_k": round(gap, 4), "gap_stderr": round(gap_se, 4)}
    if holds:
        reason = (f"the bound rises from {means[0]:.2f} (K=1) to {means[-1]:.2f} nats (K={KS[-1]}), above the ELBO "
                  f"{elbo:.2f} by {gap:.2f} nats ({gap / max(gap_se, 1e-12):.0f} standard errors): a lower "
                  "estimate of the mean KL(q(z|x) || p(z|x))")
    elif falls:
        reason = f"the bound falls significantly from {', '.join(falls)}"
    else:
        reason = f"the K={KS[-1]} bound is above the ELBO by only {gap:.3f} nats ({gap_se:.3f} standard error)"
    return Outcome(numbers, holds, reason, [("the bound against K, with the standard error of 5 repeats; the "
                                             "dashed line is the ELBO", picture)])


BATCH, ESTIMATES = 16, 400
MIN_RATIO, MIN_AGREEMENT = 10.0, 0.95


def reparameterisation(ctx: Context) -> Outcome:
    model = _vae(ctx)
    x = ctx.images()[:BATCH]
    params = [p for m in (model.encoder, model.mu_head, model.logvar_head) for p in m.parameters()]

    def log_likelihood(z: torch.Tensor) -> torch.Tensor:
        return model.log_likelihood(x, model.decoder(z))

    found = {kind: gradient_estimates(params, lambda: model.posterior(x), log_likelihood, ESTIMATES, kind,
                                      seed=ctx.seed) for kind in ("reparameterised", "score-function")}
    rep, score = found["reparameterised"], found["score-function"]
    variances = {kind: total_variance(g) for kind, g in found.items()}
    ratio = variances["score-function"] / variances["reparameterised"]
    agree = agreement(rep, score)
    direction = rep.mean(0) / rep.mean(0).norm()
    picture = histograms(ctx.picture("estimates"), {k: g @ direction for k, g in found.items()},
                         "each estimate along the mean reparameterised gradient")
    numbers = {"images": BATCH, "estimates": ESTIMATES, "parameters": rep.shape[1],
               "total_variance_reparameterised": variances["reparameterised"],
               "total_variance_score_function": variances["score-function"], "variance_ratio": round(ratio, 2),
               "coordinates_agreeing_within_3_stderr": round(agree, 4)}
    holds = ratio >= MIN_RATIO and agree >= MIN_AGREEMENT
    reason = (f"the score-function estimator's variance is {ratio:.0f} times the reparameterised one's "
              f"(criterion {MIN_RATIO:g}), and their means agree within 3 standard errors on {agree:.1%} of "
              f"the {rep.shape[1]} coordinates (criterion {MIN_AGREEMENT:.0%})")
    return Outcome(numbers, holds, reason, [("the estimates projected on the mean reparameterised gradient: same "
                                             "centre, very different spread", picture)])


LESSONS = (
    Lesson("elbo-is-a-bound",
           "The ELBO is a lower bound on log p(x); the importance-weighted bound rises with K toward log p(x), "
           "and its gap to the ELBO estimates KL(q(z|x) || p(z|x)).",
           "Burda, Grosse & Salakhutdinov 2016, Importance weighted autoencoders",
           f"On {IMAGES} test images, {REPEATS} repeats: the mean bound never falls significantly (by more than "
           f"{SIGNIFICANT:g} combined standard errors) from one K to the next of {', '.join(map(str, KS))}, and "
           f"at K = {KS[-1]} it is above the ELBO by more than {SIGNIFICANT:g} standard errors.",
           "Train a VAE (code 8, one hidden layer of 128); compute the ELBO and the importance-weighted bound at "
           "each K on the first test images.",
           elbo_is_a_bound, seconds=12),
    Lesson("reparameterisation",
           "The reparameterisation trick gives an unbiased gradient of the ELBO with respect to the encoder with "
           "far less variance than the score-function (REINFORCE) estimator.",
           "Kingma & Welling 2014, Auto-encoding variational Bayes, section 2.4",
           f"With one sample per image, {ESTIMATES} estimates each at the same parameters: the means agree within "
           f"3 standard errors on at least {MIN_AGREEMENT:.0%} of the coordinates, and the score-function "
           f"estimator's total variance is at least {MIN_RATIO:g} times the reparameterised one's.",
           "Train a VAE; at its trained parameters, estimate the gradient of E_q[log p(x|z)] over the encoder's "
           f"parameters for {BATCH} test images by both estimators (the KL term is analytic, its gradient "
           "exact and the same for both).",
           reparameterisation, seconds=12),
)
