"""The GAN's options and the training settings reach the gradient (issue 28; the other families are in
tests/test_loss_terms.py, the harness in tests/loss_terms.py). One call of the GAN's train_step makes a
discriminator update and, on every d_steps-th call, a generator update: the gradients each optimizer is handed
equal autograd's on the test's own closed form of Goodfellow et al.'s losses (minimax, non-saturating), the hinge
loss, or WGAN-GP with its gradient penalty, with one-sided label smoothing and either prior, for the same draws."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from genmodels.config import TrainConfig
from genmodels.optim import StepContext, make_adam, set_epoch_lr
from loss_terms import assert_close, batch, check_no_stray_gradients, check_parts, check_step, minimised, tiny

GAN = {"latent_dim": 3, "hidden": [6], "ema": 0.0}
GAN_CASES = [
    {**GAN, "loss": "minimax", "spectral_norm": False},
    {**GAN, "loss": "non-saturating", "label_smoothing": 0.2, "prior": "uniform"},
    {**GAN, "loss": "minimax", "label_smoothing": 0.3, "spectral_norm": True, "d_dropout": 0.4},
    {**GAN, "loss": "hinge"},
    {**GAN, "loss": "wgan-gp", "gp_weight": 3.5},
    {**GAN, "loss": "wgan-gp", "gp_weight": 0.0, "prior": "uniform", "d_steps": 2},
    {**GAN, "loss": "hinge", "d_steps": 3, "ema": 0.9},
    # the conditional GAN: G(z, y) with y one-hot beside z, the projection D (Miyato & Koyama 2018, eq. 3)
    {**GAN, "loss": "non-saturating", "conditional": True, "classes": 3},
    {**GAN, "loss": "wgan-gp", "gp_weight": 2.0, "conditional": True, "classes": 3, "spectral_norm": False},
]
# Fields checked by a test of their own (in tests/test_gan.py): what is built or averaged, not a loss term.
OWN_TESTS_GAN = {
    "ema": "test_moving_average_follows_its_formula_and_is_what_samples",
    "lr_d": "test_separate_adam_optimisers_with_gan_defaults_and_lr_d",
    "spectral_norm": "test_spectral_norm_makes_each_layer_of_d_have_largest_singular_value_one",
    "d_dropout": "test_auto_arch_and_what_each_option_builds",
}


def gan_step_losses(m, x, calls: int, labels=None) -> tuple[list[torch.Tensor], list[torch.Tensor],
                                                             dict[str, torch.Tensor]]:
    """D's loss at each call and G's at each d_steps-th, in the order the step draws its noise; a conditional GAN's
    with the batch's labels: G(z, y) takes y one-hot beside z, D(x, y) = psi(phi(x)) + embed(y) . phi(x)."""
    c, n = m.config, x.shape[0]
    disc = m.discriminator
    if c.conditional:
        def disc(t):
            h = m.discriminator.body(t)
            return m.discriminator.linear(h)[:, 0] + (m.discriminator.embed.weight[labels] * h).sum(1)

    def fake() -> torch.Tensor:
        z = torch.rand(n, c.latent_dim) * 2 - 1 if c.prior == "uniform" else torch.randn(n, c.latent_dim)
        if c.conditional:
            z = torch.cat([z, F.one_hot(labels, c.classes).float()], 1)
        return torch.sigmoid(m.generator(z))

    d_losses, g_losses, terms = [], [], {}
    for call in range(1, calls + 1):
        with torch.no_grad():
            fake_d = fake()
        real, fake_out = disc(x), disc(fake_d)
        if c.loss in ("minimax", "non-saturating"):  # -[(1 - s) log D(x) + s log(1 - D(x))] - log(1 - D(G(z)))
            s = c.label_smoothing
            d = -((1 - s) * F.logsigmoid(real) + s * F.logsigmoid(-real)).mean() - F.logsigmoid(-fake_out).mean()
            score = torch.sigmoid
        elif c.loss == "hinge":
            d, score = torch.relu(1 - real).mean() + torch.relu(1 + fake_out).mean(), (lambda t: t)
        else:
            d, score = fake_out.mean() - real.mean(), (lambda t: t)
            eps = torch.rand(n, 1, 1, 1)
            x_hat = (eps * x + (1 - eps) * fake_d).requires_grad_(True)
            (grad,) = torch.autograd.grad(disc(x_hat).sum(), x_hat, create_graph=True)
            penalty = (grad.flatten(1).pow(2).sum(1).sqrt() - 1).pow(2).mean()
            d = d + c.gp_weight * penalty
            terms["gradient_penalty"] = penalty
        d_losses.append(d)
        terms.update({"d_loss": d, "d_real": score(real).mean(), "d_fake": score(fake_out).mean()})
        if call % c.d_steps == 0:
            out = disc(fake())
            g = {"minimax": F.logsigmoid(-out).mean(), "non-saturating": -F.logsigmoid(out).mean()}.get(
                c.loss, -out.mean())
            g_losses.append(g)
    return d_losses, g_losses, terms


@pytest.mark.parametrize("settings", GAN_CASES,
                         ids=lambda s: f"{s['loss']}-{s.get('d_steps', 1)}{'-conditional' * s.get('conditional', 0)}")
def test_each_players_gradient_is_its_closed_form_loss(settings):
    model = tiny("gan", settings)
    if settings.get("d_dropout"):
        dropout = [d.p for d in model.discriminator.modules() if isinstance(d, torch.nn.Dropout)]
        assert dropout == [settings["d_dropout"]]
    calls = model.config.d_steps
    b = batch(labelled=model.needs_labels)
    stepped = minimised(model, b, calls=calls)
    torch.manual_seed(1234)  # loss_terms.SEED
    d_losses, g_losses, terms = gan_step_losses(model, b.x, calls, b.labels)
    assert len(stepped.recorders["d"].steps) == calls and len(stepped.recorders["g"].steps) == len(g_losses) == 1
    for i, d in enumerate(d_losses):
        check_step(model, stepped, i, "d", d)
    check_step(model, stepped, 0, "g", g_losses[0])
    check_parts(stepped.parts[-1], terms)
    assert_close(stepped.parts[-1]["g_loss"], g_losses[0].detach(), "logged g_loss")
    assert all("g_loss" not in p for p in stepped.parts[:-1])  # no generator update before the k-th call
    check_no_stray_gradients(model, stepped)


# -- the training settings ------------------------------------------------------------------------------------------
def test_grad_clip_scales_the_minimised_gradient_to_its_norm():
    """train.grad_clip: the gradient an optimizer is handed is the loss's, scaled to norm grad_clip when larger."""
    from test_loss_terms import vae_closed_form

    model = tiny("vae", {"hidden": [7], "latent_dim": 2})
    for clip in (1e-3, 1e6):  # binding, and too large to bind
        stepped = minimised(model, batch(), grad_clip=clip)
        torch.manual_seed(1234)
        loss = vae_closed_form(model, batch().x)[0]["main"]
        check_step(model, stepped, 0, "main", loss, grad_clip=clip)
        norm = torch.sqrt(sum(g.pow(2).sum() for g in stepped.recorders["main"].steps[0]))
        assert norm <= clip * (1 + 1e-4) and (clip > 1 or norm > 0.99 * clip)


def test_adam_steps_follow_lr_and_betas_in_closed_form():
    """train.lr and train.betas: two steps of the optimizer every family's make_optimizers builds (make_adam), on
    gradients g1, g2, equal Kingma & Ba's update written out."""
    lr, (b1, b2), eps = 0.05, (0.6, 0.9), 1e-8
    w = torch.nn.Parameter(torch.tensor([0.5, -1.0, 2.0]))
    opt = make_adam([w], TrainConfig(lr=lr, betas=(b1, b2)), torch.device("cpu"))
    grads = [torch.tensor([1.0, -2.0, 0.5]), torch.tensor([-3.0, 0.1, 4.0])]
    want, m, v = w.detach().clone(), torch.zeros(3), torch.zeros(3)
    for t, g in enumerate(grads, 1):
        w.grad = g.clone()
        opt.step()
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        want = want - lr * (m / (1 - b1**t)) / ((v / (1 - b2**t)).sqrt() + eps)
        assert_close(w.detach(), want, f"weights after Adam step {t}", rtol=1e-5)


def test_cosine_schedule_sets_each_groups_lr_in_closed_form():
    """train.lr_schedule: cosine sets lr0 (1 + cos(pi e / E)) / 2 in epoch e of E, from each group's own lr;
    constant leaves it."""
    opts = {"d": torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.4),
            "g": torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)}
    for e in (3, 0, 5):
        set_epoch_lr(opts, "cosine", e, 6)
        for lr0, o in zip((0.4, 0.1), opts.values()):
            assert math.isclose(o.param_groups[0]["lr"], lr0 * (1 + math.cos(math.pi * e / 6)) / 2)
    set_epoch_lr(opts, "constant", 2, 6)
    assert opts["g"].param_groups[0]["lr"] == 0.1 * (1 + math.cos(math.pi * 5 / 6)) / 2


def test_the_engine_steps_with_the_configs_clip():
    """The StepContext training builds carries train.grad_clip (the tests above give it their own)."""
    from genmodels.data import Dataset, DataSplits
    from genmodels.distributed import Dist
    from genmodels.models import build_run_config
    from genmodels.training import _build

    x = batch(8).x
    config = build_run_config({"family": "vae", "model": {"hidden": [4], "latent_dim": 2},
                               "train": {"grad_clip": 0.125, "precision": "fp32"}})
    splits = DataSplits(Dataset(x, None, "a"), Dataset(x, None, "b"), "x")
    ctx = _build(config, splits, Dist(), torch.device("cpu"))[2]
    assert isinstance(ctx, StepContext) and ctx.grad_clip == 0.125


# What each TrainConfig field does to the step, and where that is checked: the completeness test of
# tests/test_loss_terms.py fails for a field missing here.
TRAIN_CHECKS = {
    "grad_clip": "test_grad_clip_scales_the_minimised_gradient_to_its_norm, "
                 "test_the_engine_steps_with_the_configs_clip",
    "lr": "test_adam_steps_follow_lr_and_betas_in_closed_form",
    "betas": "test_adam_steps_follow_lr_and_betas_in_closed_form",
    "lr_schedule": "test_cosine_schedule_sets_each_groups_lr_in_closed_form",
    "precision": "not a term: the same loss in float32 (tests/test_precision.py compares it with fp32's)",
    "epochs": "how many steps, not what each minimises (tests/test_engine.py, test_crash_safety.py)",
    "batch_size": "the batch each step sees (the loss is a batch mean: the harness's batch is any batch)",
    "seed": "the draws, which the harness fixes (tests/test_vae.py's resume test checks their reproducibility)",
    "device": "where, not what", "threads": "where, not what", "compile": "the same forward, compiled (test_vae.py)",
    "channels_last": "a memory layout", "log_every": "what is recorded", "eval_batch_size": "held-out evaluation",
    "log": "what is recorded",
}
