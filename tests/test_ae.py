"""The autoencoder family: each regulariser against an independent computation."""

import math

import pytest
import torch

from genmodels import ConfigError, build_run_config, train
from genmodels.models import AEConfig, AutoEncoder
from genmodels.models import regularisers as reg


def _jacobian_norms(encoder, x):
    """||J||_F^2 per image with torch.autograd.functional.jacobian, one image at a time."""
    out = []
    for xi in x:
        jac = torch.autograd.functional.jacobian(lambda v: encoder(v.unsqueeze(0)).squeeze(0), xi)
        out.append(jac.pow(2).sum())
    return torch.stack(out)


def _model(**kw):
    torch.manual_seed(0)
    return AutoEncoder(AEConfig(**{"latent_dim": 5, **kw}), (1, 4, 4)).double()


def test_contractive_closed_form_equals_jacobian_norm():
    m = _model(hidden=[], code_activation="sigmoid", contractive=1.0)
    assert m.one_layer_sigmoid
    x = torch.rand(6, 1, 4, 4, dtype=torch.float64)
    closed = reg.contractive_sigmoid_closed_form(m.encoder(x), m.code_layer.weight)
    assert torch.allclose(closed, _jacobian_norms(m.encoder, x), atol=1e-5)
    assert torch.allclose(m.contractive_penalty(x, m.encoder(x)), closed.mean(), atol=1e-5)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_contractive_exact_path_equals_jacobian_norm_for_deep_encoders(arch):
    m = _model(arch=arch, hidden=[16, 12], channels=[2], code_activation="sigmoid", contractive=1.0)
    x = torch.rand(4, 1, 4, 4, dtype=torch.float64)
    exact = reg.contractive_exact(m.encoder, x)
    assert torch.allclose(exact, _jacobian_norms(m.encoder, x), atol=1e-5)
    assert exact.sum() > 0  # not a comparison of zeros


def test_contractive_exact_penalty_trains_the_encoder():
    """The loss's gradient is the reconstruction's plus lambda times that of the Jacobian norm, each found here
    on its own (autograd.functional.jacobian, differentiated again): a penalty logged but cut from the loss, or
    detached from the encoder's weights, leaves the reconstruction's gradient alone and fails."""
    m = _model(hidden=[7], code_activation="sigmoid", contractive=0.8, contractive_method="exact")
    x = torch.rand(4, 1, 4, 4, dtype=torch.float64)
    params = list(m.encoder.parameters())
    got = torch.autograd.grad(m(x).loss, params)
    rec = (m.decoder(m.encoder(x)) - x).pow(2).flatten(1).sum(1).mean()
    jac = torch.stack([torch.autograd.functional.jacobian(lambda v: m.encoder(v.unsqueeze(0)).squeeze(0), xi,
                                                          create_graph=True).pow(2).sum() for xi in x]).mean()
    want = [a + 0.8 * b for a, b in zip(torch.autograd.grad(rec, params),
                                             torch.autograd.grad(jac, params, retain_graph=True))]
    for g, w in zip(got, want):
        assert torch.allclose(g, w, atol=1e-10)
    assert torch.autograd.grad(jac, m.code_layer.weight)[0].abs().sum() > 0.01  # the penalty pulls on its own


def test_contractive_projection_estimate_is_unbiased():
    m = _model(hidden=[7], code_activation="sigmoid")
    x = torch.rand(3, 1, 4, 4, dtype=torch.float64)
    torch.manual_seed(1)
    estimate = reg.contractive_projection(m.encoder, x, projections=4000)
    exact = reg.contractive_exact(m.encoder, x)
    assert torch.allclose(estimate, exact, rtol=0.08), (estimate, exact)


def test_sparse_kl_equals_its_formula():
    code = torch.tensor([[0.1, 0.5], [0.3, 0.7]])
    rho = 0.05
    expected = sum(rho * math.log(rho / r) + (1 - rho) * math.log((1 - rho) / (1 - r)) for r in (0.2, 0.6))
    assert reg.sparse_kl(code, rho).item() == pytest.approx(expected, rel=1e-6)
    assert reg.sparse_kl(torch.full((4, 3), rho), rho).item() == pytest.approx(0.0, abs=1e-6)


def test_weight_decay_is_sum_of_squared_weights_without_biases():
    m = _model(hidden=[3])
    expected = sum(p.pow(2).sum() for n, p in m.named_parameters() if n.endswith("weight"))
    assert torch.allclose(reg.weight_decay(m), expected)
    m2 = _model(hidden=[3], weight_decay=0.5)
    x = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    out = m2(x)
    assert torch.allclose(out.parts["weight_decay"], 0.5 * expected)
    # The minimised loss carries it: its gradient is the plain model's plus 2 beta W on the weights, 0 on biases.
    grads = torch.autograd.grad(out.loss, list(m2.parameters()))
    plain = torch.autograd.grad(m(x).loss, list(m.parameters()))  # same weights (same seed), no decay
    for (name, p), g, g0 in zip(m2.named_parameters(), grads, plain):
        assert torch.allclose(g - g0, 2 * 0.5 * p if name.endswith("weight") else torch.zeros_like(p)), name


def test_denoising_target_is_the_clean_input():
    m = _model(hidden=[8], corrupt=["mask:0.5"])
    x = torch.rand(5, 1, 4, 4, dtype=torch.float64)
    torch.manual_seed(7)
    out = m(x)
    torch.manual_seed(7)
    x_tilde = reg.corrupt(x, m.corruptions)
    assert not torch.equal(x_tilde, x)
    recon = m.decoder(m.encoder(x_tilde))
    assert torch.allclose(out.parts["rec"], (recon - x).pow(2).flatten(1).sum(1).mean())
    assert not torch.allclose(out.parts["rec"], (recon - x_tilde).pow(2).flatten(1).sum(1).mean())


def test_corruptions_compose_and_leave_the_input_alone():
    torch.manual_seed(0)
    x = torch.full((200, 1, 10, 10), 0.5)
    before = x.clone()
    masked = reg.parse_corruption("mask:0.25")(x)
    assert torch.equal(x, before)
    assert (masked == 0).float().mean().item() == pytest.approx(0.25, abs=0.02)
    sp = reg.parse_corruption("saltpepper:0.3")(x)
    assert ((sp == 0) | (sp == 1)).float().mean().item() == pytest.approx(0.3, abs=0.02)
    noisy = reg.parse_corruption("gauss:0.1")(x)
    assert (noisy - x).std().item() == pytest.approx(0.1, rel=0.05)
    both = reg.corrupt(x, [reg.Masking(0.5), reg.Gaussian(0.1)])
    assert (both - x).abs().min() > 0  # masked entries got noise too: composition, not replacement


@pytest.mark.parametrize("values, match", [
    ({"contractive": -1.0}, r"model\.contractive"),
    ({"sparse_rho": 1.5}, r"model\.sparse_rho"),
    ({"sparse_rho": 0.0}, r"model\.sparse_rho"),
    ({"corrupt": ["blur:0.2"]}, r"Unknown corruption 'blur:0.2'"),
    ({"corrupt": ["mask:1.5"]}, r"must lie in"),
    ({"corrupt": ["gauss:x"]}, r"needs a number"),
    ({"sparse_kl": 0.1}, r"sigmoid"),
])
def test_bad_regulariser_values_give_a_clear_error(values, match):
    with pytest.raises(ConfigError, match=match) as err:
        build_run_config({"family": "ae", "model": values})
    assert "\n" not in str(err.value)


def test_regularised_autoencoder_trains_on_digits(digits, tmp_path):
    cfg = build_run_config({
        "family": "ae",
        "model": {"latent_dim": 8, "hidden": [32], "code_activation": "sigmoid", "corrupt": ["mask:0.2"],
                  "contractive": 0.01, "sparse_kl": 0.5, "weight_decay": 1e-5},
        "train": {"epochs": 4, "batch_size": 64, "lr": 3e-3, "log_every": 5},
    })
    result = train(cfg, tmp_path / "run", progress=False, data=digits)
    tests = [r for r in result.history if r["split"] == "test"]
    assert tests[-1]["rec"] < 0.7 * tests[0]["rec"]
    terms = ("rec", "contractive", "sparse_kl", "weight_decay")
    for record in result.history:  # what is minimised is the sum of what is logged, in every record
        assert record["loss"] == pytest.approx(sum(record[k] for k in terms), rel=1e-5), record
    # The sparsity penalty reached the encoder: the mean code activation went from a sigmoid's 0.5 towards rho.
    with torch.no_grad():
        active = result.model.encode(digits.test.batch(slice(0, 200))).mean().item()
    assert active < 0.2, active
    assert not (tmp_path / "run" / "images" / "samples.png").exists()  # an autoencoder does not sample ...
    assert (tmp_path / "run" / "images" / "reconstructions.png").is_file()  # ... it shows reconstructions
