"""The shared maths against independent computations."""

import math

import torch
from torch.distributions import Bernoulli, Normal

from genmodels import losses


def test_gaussian_kl_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g) * 0.5
    std = torch.exp(0.5 * logvar)
    z = mu + std * torch.randn(200_000, 4, 3, generator=g)
    mc = (losses.log_normal_diag(z, mu, logvar) - losses.log_standard_normal(z)).mean(0)
    exact = losses.gaussian_kl_standard(mu, logvar)
    assert torch.allclose(mc, exact, atol=0.02, rtol=0.02), (mc, exact)


def test_latent_densities_match_torch_distributions():
    g = torch.Generator().manual_seed(1)
    z, mu, logvar = (torch.randn(5, 7, 3, generator=g) for _ in range(3))
    ref = Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
    assert torch.allclose(losses.log_normal_diag(z, mu, logvar), ref, atol=1e-5)
    assert torch.allclose(losses.log_standard_normal(z), Normal(0.0, 1.0).log_prob(z).sum(-1), atol=1e-5)


def test_image_likelihoods_match_torch_distributions():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(6, 1, 4, 4, generator=g).round()
    logits = torch.randn(6, 1, 4, 4, generator=g) * 3
    ref = Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(losses.bernoulli_log_likelihood(logits, x), ref, atol=1e-4)
    mean, log_std = torch.rand(6, 1, 4, 4, generator=g), torch.full((1, 4, 4), math.log(0.3))
    ref = Normal(mean, 0.3).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(losses.gaussian_log_likelihood(x, mean, log_std), ref, atol=1e-4)
    assert torch.allclose(losses.gaussian_log_likelihood(x, mean, math.log(0.3)), ref, atol=1e-4)


def test_image_likelihoods_broadcast_over_leading_sample_dimensions():
    # The IW bound scores K decoder outputs (K, B, ...) per image x (B, ...) without copying x.
    g = torch.Generator().manual_seed(3)
    x = torch.rand(6, 1, 4, 4, generator=g)  # grey levels, as evaluation passes them
    logits, log_std = torch.randn(5, 6, 1, 4, 4, generator=g) * 3, torch.full((1, 4, 4), math.log(0.3))
    for ll in (losses.bernoulli_log_likelihood, lambda logit, x: losses.gaussian_log_likelihood(x, logit, log_std),
               lambda logit, x: losses.gaussian_log_likelihood(x, logit, math.log(0.3))):
        ref = torch.stack([ll(logits[k], x) for k in range(5)])  # one (B, ...) call per sample
        assert torch.allclose(ll(logits, x), ref, atol=1e-4)
