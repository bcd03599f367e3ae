"""Gaussian Parzen-window log-likelihood of held-out data under a model's samples.

The estimate of Goodfellow et al. 2014 (Table 1, after Breuleux et al. 2011): fit an isotropic
Gaussian kernel density with bandwidth sigma on S generated samples s_i, choose sigma on a
validation set, and report the mean log-density of the test images:

    log p(x) = logsumexp_i(-||x - s_i||^2 / (2 sigma^2)) - log S - (d/2) log(2 pi sigma^2)

Known weaknesses (Theis, van den Oord & Bethge 2016, "A note on the evaluation of generative
models", section 3.2): high variance, very far from the true log-likelihood in high dimensions
even with many samples, and it can rank a model that memorises its training data, or a trivial
k-means model, above real generative models. Read it as a rough comparison, never as log p(x).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

# Entries of the (sigmas, test points, samples) block of scaled squared distances held at once.
_CHUNK_ELEMENTS = 1 << 22
_SAMPLE_CHUNK = 4096


def default_sigmas() -> torch.Tensor:
    """The bandwidth grid: 10 values log-spaced from 0.1 to 1.0."""
    return torch.logspace(-1, 0, 10, dtype=torch.float64)


@dataclass
class ParzenResult:
    log_likelihood: float  # mean log p(x) over the test images, nats per image
    stderr: float  # standard error of that mean
    sigma: float  # bandwidth chosen on the validation images
    samples: int  # kernel centres S
    validation: dict[float, float] = field(default_factory=dict)  # sigma -> mean validation log-likelihood

    def as_dict(self) -> dict[str, float | int]:
        return {"parzen_log_likelihood": self.log_likelihood, "parzen_log_likelihood_stderr": self.stderr,
                "parzen_sigma": self.sigma, "parzen_samples": self.samples}


@torch.inference_mode()
def parzen_log_density(x: torch.Tensor, samples: torch.Tensor, sigmas) -> torch.Tensor:
    """log p(x) under the Parzen window on `samples`, for every bandwidth: (K, N) float64.

    x (N, ...) and samples (S, ...) flatten to d dimensions; sigmas is a float or K floats.
    Squared distances come from one matmul per block, ||x||^2 + ||s||^2 - 2 x.s (clamped at 0,
    which rounding could cross), in float64; blocks over test points and samples bound the memory,
    and per-block logsumexps are combined exactly with logaddexp."""
    x, s = x.flatten(1).double(), samples.flatten(1).double()
    if not len(s):  # the density of no kernels is log 0 everywhere
        raise ValueError("the Parzen window needs at least one sample")
    sig = torch.as_tensor(sigmas, dtype=torch.float64, device=x.device).flatten()
    inv = (-0.5 / sig.pow(2))[:, None, None]  # (K, 1, 1)
    x2, s2 = x.pow(2).sum(1), s.pow(2).sum(1)
    sc = min(len(s), _SAMPLE_CHUNK)
    bc = max(1, _CHUNK_ELEMENTS // (len(sig) * sc))
    out = []
    for i in range(0, len(x), bc):
        xb = x[i : i + bc]
        lse = torch.full((len(sig), len(xb)), -math.inf, dtype=torch.float64, device=x.device)
        for j in range(0, len(s), sc):
            d2 = (x2[i : i + bc, None] + s2[None, j : j + sc] - 2.0 * xb @ s[j : j + sc].T).clamp_min_(0)  # (B, Sc)
            lse = torch.logaddexp(lse, torch.logsumexp(d2[None] * inv, -1))
        out.append(lse)
    d = x.shape[1]
    return torch.cat(out, 1) - math.log(len(s)) - 0.5 * d * torch.log(2 * math.pi * sig.pow(2))[:, None]


def select_sigma(x_valid: torch.Tensor, samples: torch.Tensor, sigmas=None) -> tuple[float, dict[float, float]]:
    """The bandwidth of the grid with the highest mean validation log-likelihood, and every grid score."""
    sig = default_sigmas() if sigmas is None else torch.as_tensor(sigmas, dtype=torch.float64).flatten()
    scores = parzen_log_density(x_valid, samples, sig).mean(1).cpu()
    table = {float(a): float(b) for a, b in zip(sig, scores)}
    return float(sig[int(scores.argmax())]), table


def parzen_estimate(samples: torch.Tensor, x_valid: torch.Tensor, x_test: torch.Tensor, sigmas=None) -> ParzenResult:
    """Sigma chosen on x_valid, then the mean test log-likelihood with its standard error (0 for one test image).
    Identical samples and test images are defined: the smallest sigma wins and the estimate is finite."""
    if not len(x_test) or not len(x_valid):
        raise ValueError("the Parzen estimate needs at least one validation and one test image")
    sigma, table = select_sigma(x_valid, samples, sigmas)
    # x_test: a tensor, or anything sliced like one (evaluation.SplitView): read 10,000 images at a time.
    ll = torch.cat([parzen_log_density(x_test[i : i + 10_000], samples, sigma)[0]
                    for i in range(0, len(x_test), 10_000)])
    stderr = (ll.std() / math.sqrt(len(ll))).item() if len(ll) > 1 else 0.0
    return ParzenResult(ll.mean().item(), stderr, sigma, len(samples), table)
