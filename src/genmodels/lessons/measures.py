"""The lessons' measurements as plain functions of tensors and modules, each checked on a case whose answer is
known (tests/test_lessons.py): principal angles between subspaces, the importance-weighted bound against K, the
two gradient estimators of an expectation under a Gaussian, and a generator's gradient under the two GAN losses."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .. import losses


def principal_angles(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The principal angles in degrees, smallest first, between the column spaces of a (D, k) and b (D, m)
    (Bjorck & Golub 1973): the arc-cosines of the singular values of Qa^T Qb, Q orthonormal bases. Computed in
    float64."""
    qa, _ = torch.linalg.qr(a.double())
    qb, _ = torch.linalg.qr(b.double())
    cosines = torch.linalg.svdvals(qa.T @ qb).clamp(0, 1)
    return torch.rad2deg(torch.arccos(cosines))  # singular values descend: angles ascend


def iw_bounds(bound: Callable[[int], torch.Tensor], ks: Sequence[int], repeats: int,
              seed: int = 0) -> dict[int, tuple[float, float]]:
    """For each K, the importance-weighted bound log (1/K) sum_k p(x, z_k) / q(z_k|x) (Burda et al. 2016, eq. 8)
    averaged over the images, repeated `repeats` times with fresh samples: {K: (mean, standard error of that
    mean over the repeats)}. bound(k): the bound of each image with k samples, (B,)."""
    out: dict[int, tuple[float, float]] = {}
    for k in ks:
        torch.manual_seed(seed + k)
        values = torch.tensor([float(bound(k).double().mean()) for _ in range(repeats)], dtype=torch.float64)
        spread = float(values.std() / math.sqrt(repeats)) if repeats > 1 else 0.0
        out[k] = (float(values.mean()), spread)
    return out


def gradient_estimates(params: Sequence[torch.Tensor], posterior: Callable[[], tuple[torch.Tensor, torch.Tensor]],
                       log_likelihood: Callable[[torch.Tensor], torch.Tensor], repeats: int, kind: str,
                       seed: int = 0) -> torch.Tensor:
    """`repeats` independent estimates (repeats, P) of the gradient, with respect to `params`, of
    sum_i E_{z ~ q(z|x_i)} [log_likelihood(z)_i], q = N(mu, diag(exp(logvar))) from `posterior()` (B, D) each,
    with one z per image and estimate.
    kind "reparameterised": z = mu + sigma * eps, differentiated through (Kingma & Welling 2014, eq. 10);
    "score-function": log_likelihood(z) * grad log q(z|x) with z held fixed (REINFORCE; Williams 1992).
    Both are unbiased; the seed fixes the noise, the same for both kinds."""
    if kind not in ("reparameterised", "score-function"):
        raise ValueError(f"unknown gradient estimator {kind!r}")
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(repeats):
        mu, logvar = posterior()
        eps = torch.randn(mu.shape, generator=gen, dtype=mu.dtype).to(mu.device)
        z = mu + torch.exp(0.5 * logvar) * eps
        if kind == "reparameterised":
            objective = log_likelihood(z).sum()
        else:
            z = z.detach()
            objective = (log_likelihood(z).detach() * losses.log_normal_diag(z, mu, logvar)).sum()
        grads = torch.autograd.grad(objective, list(params), allow_unused=True)
        rows.append(torch.cat([(g if g is not None else torch.zeros_like(p)).flatten().double()
                               for g, p in zip(grads, params)]))
    return torch.stack(rows)


def agreement(a: torch.Tensor, b: torch.Tensor, z: float = 3.0) -> float:
    """Share of coordinates whose means over the rows of a and b (repeats, P) agree within z combined standard
    errors: about 0.997 for z = 3 when both estimate the same vector."""
    n_a, n_b = a.shape[0], b.shape[0]
    se = (a.var(0) / n_a + b.var(0) / n_b).sqrt()
    diff = (a.mean(0) - b.mean(0)).abs()
    close = (diff <= z * se) | (diff == 0)
    return float(close.double().mean())


def total_variance(estimates: torch.Tensor) -> float:
    """The trace of the estimates' covariance, (repeats, P) -> sum over coordinates of their variance."""
    return float(estimates.var(0).sum())


def generator_gradient_norms(generator: nn.Module, discriminator: nn.Module, z: torch.Tensor) -> dict[str, float]:
    """The L2 norm of the gradient of G's loss over G's parameters, at the same G, D and codes z, under the
    minimax loss log(1 - D(G(z))) and the non-saturating -log D(G(z)) (Goodfellow et al. 2014, section 3),
    and the mean D(G(z)) there. G ends with a logit, squashed into [0, 1] as the GAN family does."""
    params = [p for p in generator.parameters() if p.requires_grad]
    out: dict[str, float] = {}
    for kind in ("minimax", "non-saturating"):
        logits = discriminator(torch.sigmoid(generator(z)))
        grads = torch.autograd.grad(losses.gan_generator_loss(logits, kind), params, allow_unused=True)
        out[kind] = math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads if g is not None))
    with torch.no_grad():
        out["d_fake"] = float(torch.sigmoid(discriminator(torch.sigmoid(generator(z)))).mean())
    return out
