"""The VAE: shapes, training, the bounds, checkpoints and resume."""

import json
import math

import pytest
import torch

from conftest import tiny_vae_config
from genmodels import VAE, VAEConfig, train
from genmodels.engine import evaluate_parts
from genmodels.rundir import RunDir


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 7, 9)])
@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_decoder_returns_input_shape(shape, arch):
    model = VAE(VAEConfig(arch=arch, latent_dim=3, hidden=[16], channels=[4, 8]), shape)
    x = torch.rand(5, *shape)
    out = model(x)
    assert out.loss.shape == () and torch.isfinite(out.loss)
    assert model.reconstruct(x).shape == x.shape
    assert model.sample(2).shape == (2, *shape)


def test_loss_is_negative_elbo_per_image():
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=2, hidden=[8]), (1, 8, 8))
    x = torch.rand(10, 1, 8, 8)
    torch.manual_seed(1)
    out = model(x)
    torch.manual_seed(1)
    elbo = model.elbo(x)
    assert torch.allclose(out.parts["nelbo"], -elbo.mean(), atol=1e-4)
    assert torch.allclose(out.loss, out.parts["rec"] + out.parts["kl"])


def test_beta_weights_the_kl_term():
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=2, hidden=[8], beta=4.0), (1, 8, 8))
    out = model(torch.rand(10, 1, 8, 8))
    assert torch.allclose(out.loss, out.parts["rec"] + 4.0 * out.parts["kl"])


def test_gaussian_learned_std_trains(digits, tmp_path):
    """The learned log std gets the negative ELBO's gradient, d/d log s of 0.5 ((x - m) / s)^2 + log s, which is
    1 - ((x - m) / s)^2 per pixel, averaged over the batch; trained, s falls from 0.5 towards the residuals."""
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=2, hidden=[8], likelihood="gaussian", learn_std=True, gaussian_std=0.5),
                (1, 4, 4))
    x = torch.rand(5, 1, 4, 4)
    torch.manual_seed(1)
    model(x).loss.backward()
    torch.manual_seed(1)  # the same reparameterisation noise
    mu, logvar = model.posterior(x)
    mean = torch.sigmoid(model.decoder(mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)))
    assert torch.allclose(model.log_std.grad, (1 - ((x - mean) / 0.5).pow(2)).mean(0), atol=1e-5)
    cfg = tiny_vae_config(model={"likelihood": "gaussian", "learn_std": True, "gaussian_std": 0.5})
    result = train(cfg, tmp_path / "run", progress=False, data=digits)
    assert result.model.log_std.requires_grad
    assert (result.model.log_std.exp() < 0.48).all(), result.model.log_std.exp()  # every pixel's (about 0.43)


def test_training_lowers_test_loss(digits, tmp_path):
    cfg = tiny_vae_config(train={"epochs": 4})
    torch.manual_seed(cfg.train.seed)
    untrained = VAE(cfg.model, digits.shape)
    before = evaluate_parts(untrained, digits.test, 1000, 0)["loss"]
    result = train(cfg, tmp_path / "run", progress=False, data=digits)
    tests = [r["loss"] for r in result.history if r["split"] == "test"]
    assert len(tests) == 4
    assert tests[-1] < tests[0] < before
    assert tests[-1] < 0.8 * before


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory):
    cfg = tiny_vae_config(train={"epochs": 5})
    return train(cfg, tmp_path_factory.mktemp("vae") / "run", progress=False, data=digits)


def test_importance_weighted_bound_above_elbo_and_rising_with_k(trained, digits):
    model = trained.model
    x = digits.test.batch(slice(0, 300))
    torch.manual_seed(0)
    with torch.inference_mode():
        elbo = torch.stack([model.elbo(x) for _ in range(20)]).mean().item()
        iw = {k: model.importance_weighted_bound(x, k).mean().item() for k in (1, 10, 200)}
    assert abs(iw[1] - elbo) < 1.0  # K = 1 is the ELBO itself, up to sampling noise
    assert elbo < iw[10] < iw[200]


def test_importance_weighted_bound_is_chunk_invariant(trained, digits, monkeypatch):
    # Chunks draw their noise separately, so the two agree up to Monte Carlo error, which at
    # K = 2000 is far below what a wrong normalisation (log K vs log chunk) would shift.
    import genmodels.models.vae as vae_mod

    x = digits.test.batch(slice(0, 20))
    torch.manual_seed(3)
    whole = trained.model.importance_weighted_bound(x, 2000).mean()
    monkeypatch.setattr(vae_mod, "_IW_CHUNK_ELEMENTS", 20 * 64 * 2 * 7)  # chunks of 7 samples
    torch.manual_seed(4)
    chunked = trained.model.importance_weighted_bound(x, 2000).mean()
    assert abs(whole - chunked) < 0.1, (whole, chunked)


def test_importance_weighted_bound_equals_a_direct_computation(trained, digits, monkeypatch):
    # The same noise, drawn in the same chunks of 7 samples, through torch.distributions and a
    # K-fold copy of x: what the chunked, broadcast computation must equal up to float32 rounding.
    from torch.distributions import Bernoulli, Normal

    import genmodels.models.vae as vae_mod

    model, k = trained.model, 30
    x = digits.test.batch(slice(0, 20))
    monkeypatch.setattr(vae_mod, "_IW_CHUNK_ELEMENTS", 20 * 64 * 2 * 7)
    with torch.inference_mode():
        torch.manual_seed(5)
        bound = model.importance_weighted_bound(x, k)
        torch.manual_seed(5)
        mu, logvar = model.posterior(x)
        eps = torch.cat([torch.randn(min(7, k - i), *mu.shape) for i in range(0, k, 7)])  # (K, B, D)
        q = Normal(mu, torch.exp(0.5 * logvar))
        z = mu + q.scale * eps
        logits = model.decoder(z.reshape(k * len(x), -1)).reshape(k, *x.shape)
        log_px_z = Bernoulli(logits=logits, validate_args=False).log_prob(x.expand(k, *x.shape).clone())
        log_w = log_px_z.flatten(2).sum(-1) + Normal(0.0, 1.0).log_prob(z).sum(-1) - q.log_prob(z).sum(-1)
        ref = torch.logsumexp(log_w, 0) - math.log(k)
    assert torch.allclose(bound, ref, atol=1e-3, rtol=1e-5), (bound - ref).abs().max()


def test_checkpoint_reload_gives_identical_outputs(trained, digits):
    model, cfg = RunDir(trained.run_dir).load_model()
    assert cfg.family == "vae" and cfg.shape == (1, 8, 8)
    x = digits.test.batch(slice(0, 50))
    z = torch.randn(10, 2)
    with torch.inference_mode():
        assert torch.equal(model.encode(x), trained.model.encode(x))
        assert torch.equal(model.decode(z), trained.model.decode(z))


def test_resume_equals_uninterrupted_run(digits, tmp_path):
    # binarize draws fresh noise every batch, so this also checks the RNG state is restored.
    cfg3 = tiny_vae_config(model={"binarize": True}, train={"epochs": 3})
    cfg2 = tiny_vae_config(model={"binarize": True}, train={"epochs": 2})
    full = train(cfg3, tmp_path / "full", progress=False, data=digits)
    train(cfg2, tmp_path / "part", progress=False, data=digits)
    resumed = train(cfg3, tmp_path / "part", resume=True, progress=False, data=digits)
    assert resumed.history == full.history
    for (k, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), k
    lines = (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == full.history


def test_too_many_conv_layers_for_the_image_is_a_clear_error():
    from genmodels import ConfigError

    with pytest.raises(ConfigError, match="8x8 are too small for 4 stride-2"):
        VAE(VAEConfig(arch="conv", channels=[4, 4, 4, 4]), (1, 8, 8))


def test_cosine_schedule_sets_each_epochs_lr_from_the_epoch_alone(digits, tmp_path):
    import math

    from genmodels.checkpoint import read_safetensors

    train(tiny_vae_config(train={"epochs": 3, "lr": 0.01, "lr_schedule": "cosine"}), tmp_path / "c",
          progress=False, data=digits)
    _, meta = read_safetensors(tmp_path / "c" / "checkpoint.safetensors")
    group = json.loads(meta["param_groups"])["main"][0]
    assert group["initial_lr"] == 0.01
    assert group["lr"] == pytest.approx(0.01 * (1 + math.cos(math.pi * 2 / 3)) / 2)  # the last of 3 epochs


def test_compile_opt_in_trains_like_eager_and_saves_plain_weights(digits, tmp_path, monkeypatch):
    # torch.compile draws the reparameterisation noise with its own generator, so the runs match in
    # quality, not bit for bit; the checkpoint holds the model's own weights, not the compiled wrapper's.
    eager = train(tiny_vae_config(train={"epochs": 3}), tmp_path / "eager", progress=False, data=digits)
    # Every training step calls the compiled module (a hook counts the calls), and dynamo compiled a graph.
    steps, compile_ = [], torch.compile

    def counted_compile(model, **options):
        compiled = compile_(model, **options)
        compiled.register_forward_pre_hook(lambda *_: steps.append(1))
        return compiled

    monkeypatch.setattr(torch, "compile", counted_compile)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled = train(tiny_vae_config(train={"epochs": 3, "compile": True}), tmp_path / "compiled", progress=False,
                     data=digits)
    assert len(steps) == 3 * 23  # ceil(1438 / 64) steps an epoch
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1
    tests = [r["loss"] for r in compiled.history if r["split"] == "test"]
    assert tests[-1] < tests[0]
    eager_final = [r["loss"] for r in eager.history if r["split"] == "test"][-1]
    assert abs(tests[-1] - eager_final) < 0.05 * abs(eager_final)
    reloaded, _ = RunDir(tmp_path / "compiled").load_model()
    x = digits.test.batch(slice(0, 8))
    assert torch.equal(reloaded.encode(x), compiled.model.encode(x))
