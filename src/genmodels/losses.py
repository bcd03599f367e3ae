"""The shared maths, written once: log-densities and divergences used by every family.

Shapes: `x`, `logits`, `mean` are (B, ...) image-shaped; every image
log-likelihood sums over all non-batch dimensions and returns (B,) in nats.
Latent densities take z of shape (..., D) and sum over the last dimension.

Every function here computes in float32 (or float64 where given it): under mixed precision
(genmodels.precision) the networks' outputs arrive in bf16 or fp16, and `upcast` turns them into float32
first, since a sum over 784 pixels in bf16 (8-bit mantissa) loses whole nats. `upcast` returns float32 and
float64 tensors themselves, at no cost.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2.0 * math.pi)


def upcast(t: torch.Tensor) -> torch.Tensor:
    """t in float32 if it is a half-precision tensor (bf16, fp16), else t itself (float32, float64)."""
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t


def gaussian_kl_standard(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)), (B, D) -> (B,).

    Kingma & Welling 2013, Appendix B: -KL = 1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2).
    """
    mu, logvar = upcast(mu), upcast(logvar)
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), (..., D) -> (...): the VAE prior p(z)."""
    z = upcast(z)
    return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)


def log_normal_diag(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))), (..., D) -> (...): the encoder density q(z|x)."""
    z, mu, logvar = upcast(z), upcast(mu), upcast(logvar)
    return -0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI).sum(-1)


def _image_sum(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Sum t (..., B, *image) over the image dimensions of x (B, *image): (..., B)."""
    return t.flatten(1 - x.dim()).sum(-1) if x.dim() > 1 else t


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x|z) for a Bernoulli decoder given by logits, (B, ...) -> (B,). Logits with leading sample
    dimensions, (K, B, ...) -> (K, B), score K decoder outputs per image, x broadcast, never copied.

    Kingma & Welling 2013, Appendix C.1: log p = sum_i x_i log y_i + (1 - x_i) log(1 - y_i),
    computed from logits for stability."""
    logits, x = upcast(logits), upcast(x)
    if logits.dim() == x.dim():  # training's shapes: torch's fused kernel, and its fused backward
        return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(-1)
    # With y = sigmoid(l): log y = l - softplus(l) and log(1 - y) = -softplus(l), so each term is
    # x_i l_i - softplus(l_i). One (K, B, ...) temporary, updated in place; torch's kernel would need
    # x copied K times and several temporaries over the largest tensor of the IW bound.
    nll = F.softplus(logits)
    nll.addcmul_(logits, x, value=-1.0)  # softplus(l) - x l
    return -_image_sum(nll, x)


def gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor | float) -> torch.Tensor:
    """log N(x; mean, diag(exp(log_std)^2)), (B, ...) -> (B,); a tensor log_std broadcasts, and so does a
    mean with leading sample dimensions, (K, B, ...) -> (K, B).

    Kingma & Welling 2013, Appendix C.2 (Gaussian MLP decoder). A float log_std (fixed
    variance) takes a cheaper path: one scaled squared error plus a constant."""
    x, mean = upcast(x), upcast(mean)
    if isinstance(log_std, float):
        sq = _image_sum((x - mean).pow(2), x)
        const = x[0].numel() * (log_std + 0.5 * LOG_2PI)
        return sq * (-0.5 * math.exp(-2.0 * log_std)) - const
    z = (x - mean) * torch.exp(-log_std)
    return -_image_sum(0.5 * z.pow(2) + log_std + 0.5 * LOG_2PI, x)


def reconstruction_error(out: torch.Tensor, x: torch.Tensor, kind: str) -> torch.Tensor:
    """An autoencoder's error per image (B,), summed over pixels: squared error ||x - out||^2
    (kind "mse"; Hinton & Salakhutdinov 2006), or Bernoulli cross-entropy with out as logits
    (kind "bce"; Vincent et al. 2010, eq. 3-4)."""
    if kind == "bce":
        return -bernoulli_log_likelihood(out, x)
    return (upcast(out) - upcast(x)).pow(2).flatten(1).sum(1)


# -- GAN (Goodfellow et al. 2014), on discriminator logits l = logit D(.), so log D = -softplus(-l) and
# log(1 - D) = -softplus(l) never take the log of a rounded-off 0 or 1. Each returns a batch mean.
# The hinge and Wasserstein losses read the same outputs as an unbounded critic score D(x).
GAN_LOSSES = ("minimax", "non-saturating", "hinge", "wgan-gp")


def gan_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str = "non-saturating",
                           label_smoothing: float = 0.0) -> torch.Tensor:
    """What D minimises, from its outputs on real images (B,) and on samples (B',).

    minimax, non-saturating: -[log D(x) + log(1 - D(G(z)))], the discriminator's side of the value
        function V(D, G) (Goodfellow et al. 2014, eq. 1; ascended in Algorithm 1); both generator losses
        play against the same discriminator. label_smoothing s > 0 is one-sided label smoothing (Salimans
        et al. 2016, section 3.4): the target for real images becomes 1 - s, i.e.
        -[(1 - s) log D(x) + s log(1 - D(x))]; fake targets stay 0.
    hinge: E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))] (Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018, eq. 16).
    wgan-gp: E[D(G(z))] - E[D(x)], the critic's estimate of minus the Wasserstein-1 distance (Arjovsky et al.
        2017, eq. 3); its gradient penalty (`gradient_penalty`) is added by the caller (Gulrajani et al. 2017,
        eq. 3)."""
    real_logits, fake_logits = upcast(real_logits), upcast(fake_logits)
    if kind in ("minimax", "non-saturating"):
        real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, 1.0 - label_smoothing))
        return real + F.softplus(fake_logits).mean()  # -log(1 - D(G(z)))
    if kind == "hinge":
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
    if kind == "wgan-gp":
        return fake_logits.mean() - real_logits.mean()
    raise ValueError(f"unknown GAN loss {kind!r}; use one of {', '.join(GAN_LOSSES)}")


def gan_generator_loss(fake_logits: torch.Tensor, kind: str) -> torch.Tensor:
    """What G minimises, from D's outputs on G(z), (B,) -> scalar.

    minimax:        log(1 - D(G(z))), the saturating game of eq. 1 (Algorithm 1, generator step);
                    its gradient vanishes when D confidently rejects the samples (D(G(z)) -> 0).
    non-saturating: -log D(G(z)), the heuristic of section 3 ("maximize log D(G(z))"), same fixed point,
                    strong gradients early in training.
    hinge, wgan-gp: -E[D(G(z))] (Miyato et al. 2018, eq. 17; Gulrajani et al. 2017, Algorithm 1, line 11)."""
    fake_logits = upcast(fake_logits)
    if kind == "minimax":
        return -F.softplus(fake_logits).mean()
    if kind == "non-saturating":
        return F.softplus(-fake_logits).mean()
    if kind in ("hinge", "wgan-gp"):
        return -fake_logits.mean()
    raise ValueError(f"unknown GAN loss {kind!r}; use one of {', '.join(GAN_LOSSES)}")


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E[(||grad_x D(x_hat)||_2 - 1)^2] at x_hat = eps x + (1 - eps) x~, eps ~ U[0, 1] per image
    (Gulrajani et al. 2017, eq. 3 and Algorithm 1, lines 6-8), differentiable in D's weights
    (create_graph): the caller scales it by lambda and adds it to the critic's loss."""
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (upcast(grad).flatten(1).norm(dim=1) - 1.0).pow(2).mean()
