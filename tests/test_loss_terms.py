"""Every loss term and every option that changes training reaches the gradient (issue 28): for each family of the
registry, on a fixed batch, the loss the training step minimises equals the documented sum of its terms written
out here in closed form, each term is logged with its value, and the gradients the optimizers are handed equal
autograd's on that closed form (weight decay: plus 2 beta W, analytically). A term multiplied by zero, detached,
skipped, or a hyper-parameter ignored, changes one of these. The harness is tests/loss_terms.py; the GAN and the
training settings are in tests/test_loss_terms_gan.py. `test_every_training_field_is_checked` fails for a family or
a config field that has no such check, so a new option cannot arrive unchecked."""

from __future__ import annotations

import math
import sys

import pytest
import torch
import torch.nn.functional as F

from genmodels.config import TrainConfig
from genmodels.models.pca import fit_pca
from genmodels.models.registry import FAMILIES
from loss_terms import (
    assert_close,
    batch,
    check_no_stray_gradients,
    check_parts,
    check_step,
    minimised,
    tiny,
)

ACT = {"linear": lambda t: t, "sigmoid": torch.sigmoid, "relu": torch.relu}


# -- the closed forms --------------------------------------------------------------------------------------------
def corrupted(x: torch.Tensor, specs: list[str]) -> torch.Tensor:
    """Vincent et al. 2008's corruptions in the order given, drawing as regularisers.py documents them."""
    for spec in specs:
        name, level = spec.split(":")[0], float(spec.split(":")[1])
        if name == "mask":
            x = x * (torch.rand_like(x) >= level)
        elif name == "gauss":
            x = x + level * torch.randn_like(x)
        else:
            hit, salt = torch.rand_like(x) < level, (torch.rand_like(x) < 0.5).float()
            x = torch.where(hit, salt, x)
    return x


def pixel_error(out: torch.Tensor, x: torch.Tensor, kind: str) -> torch.Tensor:
    """Per image: squared error, or Bernoulli cross-entropy with `out` as logits."""
    if kind == "bce":
        return -(x * F.logsigmoid(out) + (1 - x) * F.logsigmoid(-out)).flatten(1).sum(1)
    return (out - x).pow(2).flatten(1).sum(1)


def jacobian_rows(encode, x: torch.Tensor) -> torch.Tensor:
    """J_f(x) per image, (B, D, P), one autograd pass per code unit (the encoder treats images independently)."""
    x = x.detach().requires_grad_(True)
    h = encode(x)
    rows = [torch.autograd.grad(h[:, i].sum(), x, create_graph=True)[0].flatten(1) for i in range(h.shape[1])]
    return torch.stack(rows, 1)


def ae_closed_form(m, x):
    c = m.config
    encode = lambda t: ACT[c.code_activation](m.encoder[1](m.encoder[0](t)))  # noqa: E731
    h = encode(corrupted(x, c.corrupt))
    terms = {"rec": pixel_error(m.decoder(h), x, c.loss).mean()}
    if c.contractive:
        jac = jacobian_rows(encode, x)
        if c.contractive_method == "projection":  # E_v ||v^T J||^2, v ~ N(0, I), as many v as asked
            v = [torch.randn(x.shape[0], c.latent_dim) for _ in range(c.contractive_projections)]
            norm = sum(torch.einsum("bd,bdp->bp", vi, jac).pow(2).sum(1) for vi in v) / len(v)
        else:  # the exact ||J||_F^2, which the closed form of a one-layer sigmoid encoder must equal
            norm = jac.pow(2).sum((1, 2))
        terms["contractive"] = c.contractive * norm.mean()
    if c.sparse_l1:
        terms["sparse_l1"] = c.sparse_l1 * h.abs().sum(1).mean()
    if c.sparse_kl:
        rho, rho_hat = c.sparse_rho, h.mean(0)
        kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
        terms["sparse_kl"] = c.sparse_kl * kl.sum()
    weights = [p for n, p in m.named_parameters() if n.endswith("weight") and p.ndim > 1]
    if c.weight_decay:  # its value is logged; its gradient is checked as the analytic 2 beta W
        terms["weight_decay"] = c.weight_decay * sum(w.pow(2).sum() for w in weights).detach()
    loss = sum(v for k, v in terms.items() if k != "weight_decay")
    decay = {id(w) for w in weights}
    extra = lambda p: 2 * c.weight_decay * p.detach() if id(p) in decay else torch.zeros_like(p)  # noqa: E731
    return {"main": loss + terms.get("weight_decay", 0)}, terms, {"main": (loss, extra)}


def vae_closed_form(m, x, labels=None):
    c = m.config
    if c.binarize:
        x = torch.bernoulli(x)
    hidden = m.encoder(x)
    y = F.one_hot(labels, c.classes).float() if c.conditional else x.new_zeros(x.shape[0], 0)
    hidden = torch.cat([hidden, y], 1)  # the conditional VAE: y one-hot beside the encoder's features and beside z
    mu, logvar = m.mu_head(hidden), m.logvar_head(hidden)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    out = m.decoder(torch.cat([z, y], 1))
    if c.likelihood == "bernoulli":
        nll = pixel_error(out, x, "bce")
    else:
        log_std = m.log_std if c.learn_std else torch.tensor(math.log(c.gaussian_std))
        if c.learn_std:  # learned from the given std
            assert_close(m.log_std.detach(), torch.full(m.shape, math.log(c.gaussian_std)), "initial log std")
        nll = (0.5 * ((x - torch.sigmoid(out)) / log_std.exp()).pow(2) + log_std
               + 0.5 * math.log(2 * math.pi)).flatten(1).sum(1)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
    loss = nll.mean() + c.beta * kl.mean()
    terms = {"loss": loss, "rec": nll.mean(), "kl": kl.mean(), "nelbo": nll.mean() + kl.mean()}
    return {"main": loss}, terms, {"main": (loss, None)}


def sdae_closed_form(m, x, labels):
    c, k = m.config, len(m.config.layers)
    act = [ACT[c.code_activation if i == k - 1 else c.activation] for i in range(k)]

    def up(h, depth):
        for i in range(depth):
            h = act[i](m.enc[i](h))
        return h

    flat = x.flatten(1)
    if m.phase < k:  # layer phase+1 alone, a denoising autoencoder of the clean output below it
        i = m.phase
        h = up(flat, i).detach()
        hidden = act[i](m.enc[i](corrupted(h, c.corrupt)))
        out = m.dec[i](hidden) if i == 0 else ACT[c.activation](m.dec[i](hidden))
        rec = (pixel_error(out.view_as(x), x, c.loss) if i == 0 else (out - h).pow(2).sum(1)).mean()
        return {f"layer{i + 1}": rec}, {"loss": rec, f"layer{i + 1}_rec": rec}, {f"layer{i + 1}": (rec, None)}
    code = up(flat, k)
    if c.finetune == "supervised":
        logits = m.head(code)
        xent = -torch.log_softmax(logits, 1).gather(1, labels[:, None]).mean()
        return {"finetune": xent}, {"loss": xent, "xent": xent}, {"finetune": (xent, None)}
    h = code
    for i in reversed(range(k)):
        h = m.dec[i](h) if i == 0 else ACT[c.activation](m.dec[i](h))
    rec = pixel_error(h.view_as(x), x, c.loss).mean()
    return {"finetune": rec}, {"loss": rec, "rec": rec}, {"finetune": (rec, None)}


def classifier_closed_form(m, x, labels):
    logits = m.head(m.body(x))
    xent = -torch.log_softmax(logits, 1).gather(1, labels[:, None]).mean()
    return {"main": xent}, {"loss": xent, "xent": xent}, {"main": (xent, None)}


# -- the cases: each sets the fields it checks away from their defaults ---------------------------------------------
AE = {"hidden": [7], "latent_dim": 3}
CASES = {
    "ae": [
        {**AE, "loss": "mse"},
        {**AE, "loss": "bce", "code_activation": "relu"},
        {**AE, "weight_decay": 0.03},
        {**AE, "corrupt": ["mask:0.3", "gauss:0.2", "saltpepper:0.1"]},
        {**AE, "contractive": 0.7, "contractive_method": "exact", "corrupt": ["gauss:0.1"]},
        {"hidden": [], "latent_dim": 3, "code_activation": "sigmoid", "contractive": 0.7},  # the closed form
        {**AE, "contractive": 0.7, "contractive_method": "projection", "contractive_projections": 3},
        {**AE, "sparse_l1": 0.4},
        {**AE, "code_activation": "sigmoid", "sparse_kl": 0.6, "sparse_rho": 0.2},
        {**AE, "loss": "bce", "code_activation": "sigmoid", "weight_decay": 0.01, "contractive": 0.5,
         "sparse_l1": 0.2, "sparse_kl": 0.3, "sparse_rho": 0.3, "corrupt": ["mask:0.2"]},  # all at once
    ],
    "vae": [
        {"hidden": [7], "latent_dim": 2},
        {"hidden": [7], "latent_dim": 2, "beta": 3.5, "binarize": True},
        {"hidden": [7], "latent_dim": 2, "likelihood": "gaussian", "gaussian_std": 0.3},
        {"hidden": [7], "latent_dim": 2, "likelihood": "gaussian", "gaussian_std": 0.4, "learn_std": True,
         "beta": 0.5},
        {"hidden": [7], "latent_dim": 2, "conditional": True, "classes": 3, "beta": 2.0},
        {"channels": [3], "arch": "conv", "latent_dim": 2, "conditional": True, "classes": 4},
    ],
    # (settings, epoch): the epoch picks the phase of the schedule
    "sdae": [
        ({"layers": [6, 3], "pretrain_epochs": 1, "corrupt": ["mask:0.3"]}, 0),
        ({"layers": [6, 3], "pretrain_epochs": 1, "corrupt": ["gauss:0.2"], "activation": "relu"}, 1),
        ({"layers": [6, 3], "pretrain_epochs": 2, "loss": "bce", "code_activation": "sigmoid"}, 4),
        ({"layers": [6, 3], "pretrain_epochs": 2, "loss": "bce"}, 0),
        ({"layers": [6, 3], "pretrain_epochs": 0, "finetune": "supervised", "classes": 3}, 0),
    ],
    "classifier": [{"arch": "mlp", "hidden": [7], "feature_dim": 4, "classes": 3}],
}
CLOSED = {"ae": ae_closed_form, "vae": vae_closed_form, "sdae": sdae_closed_form, "classifier": classifier_closed_form}


def _cases():
    for family, cases in CASES.items():
        for i, case in enumerate(cases):
            settings, epoch = case if isinstance(case, tuple) else (case, None)
            yield pytest.param(family, settings, epoch, id=f"{family}-{i}")


@pytest.mark.parametrize("family, settings, epoch", list(_cases()))
def test_the_minimised_loss_is_the_sum_of_its_terms_and_its_gradient_theirs(family, settings, epoch):
    model = tiny(family, settings)
    if epoch is not None:
        assert model.config.pretrain_epochs * len(model.config.layers) + 1 > epoch
        model.start_epoch(epoch)
    b = batch(labelled=model.needs_labels)
    stepped = minimised(model, b)
    torch.manual_seed(1234)  # loss_terms.SEED: the same draws, in the same order, as the step's
    args = (model, b.x, b.labels) if family in ("sdae", "classifier", "vae") else (model, b.x)
    losses, terms, grads = CLOSED[family](*args)
    for name, loss in losses.items():
        assert_close(stepped.parts[0]["loss"], loss.detach(), f"the loss {name!r} minimised")
        closed, extra = grads[name]
        check_step(model, stepped, 0, name, closed, extra)
    check_parts(stepped.parts[0], terms)
    check_no_stray_gradients(model, stepped)


def test_weight_decay_adds_two_beta_w_to_the_weights_gradient_and_nothing_to_the_biases():
    """The analytic form, on its own: the gradient with weight decay minus the gradient without, same weights."""
    with_decay, without = (tiny("ae", {**AE, "weight_decay": beta}) for beta in (0.25, 0.0))
    without.load_state_dict(with_decay.state_dict())
    got, base = minimised(with_decay, batch()), minimised(without, batch())
    for (name, p), g, g0 in zip(with_decay.named_parameters(), got.recorders["main"].steps[0],
                                base.recorders["main"].steps[0]):
        want = 2 * 0.25 * p.detach() if name.endswith("weight") else torch.zeros_like(p)
        assert_close(g - g0, want, f"weight decay's gradient of {name}")


def test_pca_reconstruction_error_is_the_sum_of_the_discarded_eigenvalues():
    """PCA is solved, not trained by gradient: its one setting, latent_dim, sets how many directions it keeps, and
    the training images' mean squared error is then the sum of the covariance's other eigenvalues."""
    from genmodels.data import Dataset

    x = batch(40).x
    eigen = torch.linalg.eigvalsh(torch.cov(x.flatten(1).double().T, correction=0)).flip(0)
    for k in (1, 4):
        model = fit_pca(Dataset(x, None, "forty images"), k)
        assert model.components.shape[0] == k
        assert_close(model(x).loss.double(), eigen[k:].sum(), f"rec of PCA with {k} components", rtol=1e-4)


# -- completeness: a family or a field without a check fails here ----------------------------------------------------
# Fields that only shape the networks: the closed forms above run the model's own layers, so these cannot change the
# closed form against the step; their effect is on what is built (tests/test_vae.py, test_gan.py, test_registry.py).
# The factory slots (your own networks by import path, their kwargs and the recorded package) only choose the
# modules; the losses run on whatever they build (tests/test_factories.py trains each).
ENCODER_DECODER_SLOTS = {"encoder", "encoder_kwargs", "decoder", "decoder_kwargs", "factory_packages"}
GAN_SLOTS = {"generator", "generator_kwargs", "discriminator", "discriminator_kwargs", "factory_packages"}
NETWORK = {
    "ae": {"arch", "hidden", "channels", "latent_dim", *ENCODER_DECODER_SLOTS},
    # classes sizes the label's one-hot; class_counts only weighs the labels of samples drawn without a class
    "vae": {"arch", "hidden", "channels", "latent_dim", "classes", "class_counts", *ENCODER_DECODER_SLOTS},
    "sdae": {"layers", "classes"},
    "classifier": {"arch", "channels", "hidden", "feature_dim", "classes"},
    "gan": {"arch", "hidden", "channels", "latent_dim", "classes", "class_counts", *GAN_SLOTS},
    "pca": set(),
}
# Fields checked by a test of their own, beside the parametrised cases (test name -> what it checks).
OWN_TESTS = {
    "ae": {"weight_decay": "test_weight_decay_adds_two_beta_w_to_the_weights_gradient_and_nothing_to_the_biases"},
    "sdae": {"pretrain_epochs": "test_sdae_schedule_in_closed_form"},
    "pca": {"latent_dim": "test_pca_reconstruction_error_is_the_sum_of_the_discarded_eigenvalues"},
}


def varied(family: str) -> set[str]:
    """The fields some parametrised case of `family` sets away from its default."""
    from test_loss_terms_gan import GAN_CASES

    cases = GAN_CASES if family == "gan" else [c[0] if isinstance(c, tuple) else c for c in CASES.get(family, [])]
    defaults = FAMILIES[family].config()
    return {k for case in cases for k, v in case.items() if v != getattr(defaults, k)}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_training_field_is_checked(family):
    from test_loss_terms_gan import OWN_TESTS_GAN

    assert family in CASES or family in ("gan", "pca"), f"{family} has no closed form in tests/test_loss_terms*.py"
    own = {**OWN_TESTS.get(family, {}), **(OWN_TESTS_GAN if family == "gan" else {})}
    fields = set(FAMILIES[family].config.model_fields)
    unchecked = fields - varied(family) - set(own) - NETWORK[family]
    assert not unchecked, (f"{family}'s fields {sorted(unchecked)} have no loss-and-gradient check: add a case "
                           "that sets each (tests/test_loss_terms*.py), or list it with the test that checks it")
    import test_gan
    import test_loss_terms_gan

    for name in own.values():
        assert any(hasattr(module, name) for module in (sys.modules[__name__], test_gan, test_loss_terms_gan)), name


def test_sdae_schedule_in_closed_form():
    """pretrain_epochs p: epoch e trains layer e // p + 1 while e < p * layers, then fine-tunes; p = 0: fine-tuning
    from the first epoch; and each phase steps only its own optimizer (the parametrised cases check its loss)."""
    for p in (0, 1, 3):
        model = tiny("sdae", {"layers": [6, 4, 3], "pretrain_epochs": p})
        assert model.total_epochs(2) == 3 * p + 2
        for e in range(3 * p + 2):
            model.start_epoch(e)
            assert model.phase_name == (f"layer{e // p + 1}" if e < 3 * p else "finetune")
            stepped = minimised(model, batch())
            assert [n for n, r in stepped.recorders.items() if r.steps] == [model.phase_name]


def test_train_config_has_no_family_field_unlisted():
    """TrainConfig's fields are checked in tests/test_loss_terms_gan.py (TRAIN_CHECKS); listed here so that the
    completeness check covers them too."""
    from test_loss_terms_gan import TRAIN_CHECKS

    assert set(TrainConfig.model_fields) == set(TRAIN_CHECKS), set(TrainConfig.model_fields) ^ set(TRAIN_CHECKS)
