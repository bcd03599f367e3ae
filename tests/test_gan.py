"""The GAN: losses against their formulas, the k-step schedule, a two-mode toy, resume, the CLI."""

import json

import pytest
import torch

from genmodels import GAN, ConfigError, GANConfig, build_run_config, losses, train
from genmodels.cli import main
from genmodels.data import Dataset, DataSplits
from genmodels.optim import StepContext


def tiny_gan_config(**over):
    values = {
        "family": "gan",
        "model": {"latent_dim": 4, "hidden": [32], **over.pop("model", {})},
        "data": {"source": "digits"},
        "train": {"epochs": 1, "batch_size": 64, "log_every": 5, **over.pop("train", {})},
    }
    return build_run_config(values)


def test_losses_equal_their_formulas():
    real, fake = torch.tensor([2.0, -1.0, 0.3]), torch.tensor([-3.0, 0.5, 1.5])
    d_real, d_fake = torch.sigmoid(real), torch.sigmoid(fake)
    d = -(torch.log(d_real) + torch.log(1 - d_fake)).mean()
    assert torch.allclose(losses.gan_discriminator_loss(real, fake), d, atol=1e-6)
    smoothed = -(0.9 * torch.log(d_real) + 0.1 * torch.log(1 - d_real) + torch.log(1 - d_fake)).mean()
    assert torch.allclose(losses.gan_discriminator_loss(real, fake, label_smoothing=0.1), smoothed, atol=1e-6)
    assert torch.allclose(losses.gan_generator_loss(fake, "minimax"), torch.log(1 - d_fake).mean(), atol=1e-6)
    assert torch.allclose(losses.gan_generator_loss(fake, "non-saturating"), -torch.log(d_fake).mean(), atol=1e-6)
    extreme = torch.tensor([-200.0, 200.0])  # logits whose sigmoid rounds to 0 and 1: still finite
    assert torch.isfinite(losses.gan_discriminator_loss(extreme, extreme))


def test_saturating_gradient_vanishes_where_non_saturating_does_not():
    for logit in (-5.0, -20.0):  # D(G(z)) about 7e-3 and 2e-9: the samples are confidently rejected
        grads = {}
        for kind in ("minimax", "non-saturating"):
            fl = torch.tensor([logit], requires_grad=True)
            losses.gan_generator_loss(fl, kind).backward()
            grads[kind] = fl.grad.abs().item()
        assert grads["minimax"] < 1e-2 and grads["non-saturating"] > 0.99, grads


def test_d_steps_three_makes_three_d_updates_per_g_update(digits, tmp_path, monkeypatch):
    calls = []
    original = StepContext.step
    monkeypatch.setattr(StepContext, "step",
                        lambda self, loss, name="main": (calls.append(name), original(self, loss, name)))
    result = train(tiny_gan_config(model={"d_steps": 3}), tmp_path / "run", progress=False, data=digits)
    batches = -(-len(digits.train) // 64)
    assert calls == (["d", "d", "d", "g"] * batches)[: batches + batches // 3]
    assert int(result.model.d_updates) == batches
    # The optimisers agree: Adam counts its own steps.
    opts = result.model.make_optimizers(build_run_config({"family": "gan"}).train, torch.device("cpu"))
    from genmodels.checkpoint import restore_checkpoint

    restore_checkpoint(tmp_path / "run" / "checkpoint.safetensors", result.model, opts)
    steps = {k: int(next(iter(o.state_dict()["state"].values()))["step"]) for k, o in opts.items()}
    assert steps == {"d": batches, "g": batches // 3}
    train_records = [r for r in result.history if r["split"] == "train"]
    assert {"d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm", "g_grad_norm"} <= set(train_records[-1])


def _mixture(n: int, seed: int) -> torch.Tensor:
    """1-pixel images from 0.5 N(0.25, 0.02^2) + 0.5 N(0.75, 0.02^2), clamped to [0, 1]: (n, 1, 1, 1)."""
    g = torch.Generator().manual_seed(seed)
    centre = torch.where(torch.rand(n, generator=g) < 0.5, 0.25, 0.75)
    return (centre + 0.02 * torch.randn(n, generator=g)).clamp(0, 1).view(n, 1, 1, 1)


def test_gan_covers_both_modes_of_a_mixture(tmp_path):
    data = DataSplits(Dataset(_mixture(2000, 0), None, "mix-train"), Dataset(_mixture(200, 1), None, "mix-test"), "mix")
    # The lecture's plain GAN (no spectral normalisation, one learning rate): 400 steps on 1-pixel images.
    cfg = build_run_config({"family": "gan", "model": {"latent_dim": 2, "hidden": [32, 32], "spectral_norm": False},
                            "train": {"epochs": 10, "batch_size": 50, "lr": 1e-3, "log_every": 20}})
    def near_each_mode(model) -> list[float]:
        with torch.inference_mode():
            s = model.sample(2000, torch.Generator().manual_seed(0)).flatten()
        return [((s - m).abs() < 0.1).float().mean().item() for m in (0.25, 0.75)]

    torch.manual_seed(cfg.train.seed)  # the generator training starts from (the engine seeds it so)
    untrained = GAN(cfg.model, (1, 1, 1))
    assert min(near_each_mode(untrained)) < 0.05  # the modes are not covered by chance: training covers them
    near = near_each_mode(train(cfg, tmp_path / "run", progress=False, data=data).model)
    assert min(near) >= 0.2, near


@pytest.mark.parametrize("model", [
    # conv: BatchNorm running statistics; d_steps 2 over 7 batches an epoch: the k-cycle crosses epochs.
    {"arch": "conv", "channels": [4, 8], "d_steps": 2, "label_smoothing": 0.1},
    # the MLP default: spectral normalisation's power-iteration vectors and the moving average of G.
    {"ema": 0.9}])
def test_resume_equals_uninterrupted_run(digits, tmp_path, model):
    small = DataSplits(Dataset(digits.train.images[:400], None, "train"),
                       Dataset(digits.test.images[:100], None, "test"), "digits")
    over = {"model": model}
    full = train(tiny_gan_config(train={"epochs": 4}, **over), tmp_path / "full", progress=False, data=small)
    train(tiny_gan_config(train={"epochs": 2}, **over), tmp_path / "part", progress=False, data=small)
    resumed = train(tiny_gan_config(train={"epochs": 4}, **over), tmp_path / "part", resume=True,
                    progress=False, data=small)
    assert resumed.history == full.history
    for (k, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), k


def test_priors_and_seeded_sampling():
    model = GAN(GANConfig(latent_dim=3, hidden=[8], prior="uniform"), (1, 8, 8)).eval()
    z = model.prior_sample(1000, torch.Generator().manual_seed(0))
    assert z.min() >= -1 and z.max() <= 1 and z.min() < -0.99 and z.max() > 0.99
    a, b = (model.sample(4, torch.Generator().manual_seed(5)) for _ in range(2))
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1


def test_collapsed_discriminator_warns_once():
    model = GAN(GANConfig(latent_dim=2, hidden=[8]), (1, 8, 8))
    with pytest.warns(RuntimeWarning, match="rejects every sample") as record:
        for _ in range(8):
            model.check_logged({"d_fake": 0.001})
    assert len(record) == 1
    model.check_logged({"d_fake": 0.5})
    assert model._collapsed == 0


def test_collapse_warning_at_its_threshold_on_both_sides():
    import warnings

    from genmodels.models.gan import COLLAPSE_INTERVALS

    def logged(model, values):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            for v in values:
                model.check_logged({"d_fake": v})
        return [str(w.message) for w in record]

    assert COLLAPSE_INTERVALS == 5
    model = GAN(GANConfig(latent_dim=2, hidden=[8]), (1, 8, 8))
    # Four intervals outside, one inside: the count starts again. The bounds 0.01 and 0.99 are inside.
    assert logged(model, [0.001] * 4 + [0.5] + [0.999] * 4 + [0.99] + [0.01] * 6 + [0.9999] * 4) == []
    seen = logged(model, [0.9999])  # the fifth in a row above 0.99
    assert len(seen) == 1 and "accepts every sample (mean D(G(z)) = 0.9999 for 5 logged intervals" in seen[0]
    assert logged(model, [0.9999] * 3) == []  # once per stretch
    seen = logged(model, [0.5] + [0.002] * 5)
    assert len(seen) == 1 and "rejects every sample (mean D(G(z)) = 0.0020" in seen[0]
    critic = GAN(GANConfig(latent_dim=2, hidden=[8], loss="hinge"), (1, 8, 8))  # a score, not a probability
    assert logged(critic, [5.0] * 10) == []


@pytest.mark.parametrize("bad, match", [({"d_steps": 0}, "d_steps"), ({"label_smoothing": 1.0}, "label_smoothing"),
                                        ({"label_smoothing": -0.1}, "label_smoothing"),
                                        ({"loss": "wasserstein"}, "loss"), ({"prior": "cauchy"}, "prior")])
def test_bad_config_values_are_config_errors(bad, match):
    with pytest.raises(ConfigError, match=f"model.{match}"):
        build_run_config({"family": "gan", "model": bad})


def test_cli_train_sample_interpolate_evaluate_and_no_reconstruct(tmp_path, capsys):
    out = tmp_path / "gan"
    assert main(["train", "gan", "--latent-dim", "8", "--hidden", "32", "--epochs", "1", "--batch-size", "64",
                 "--prior", "uniform", "--d-steps", "2", "--out", str(out), "--no-progress"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["betas"] == [0.5, 0.999] and config["train"]["lr"] == 2e-4
    assert (out / "images" / "samples.png").is_file()
    assert main(["sample", str(out), "-n", "16", "--out", str(tmp_path / "s.png")]) == 0
    for mode in ("linear", "slerp"):
        assert main(["interpolate", str(out), "--mode", mode, "--out", str(tmp_path / f"{mode}.png")]) == 0
    assert main(["evaluate", str(out), "--parzen-samples", "500"]) == 0
    results = json.loads((out / "eval.json").read_text())
    assert results["parzen_samples"] == 500 and "parzen_log_likelihood" in results and "d_real" in results
    capsys.readouterr()
    for command in ("reconstruct", "encode", "latent"):
        assert main([command, str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "no encoder" in err


def test_separate_adam_optimisers_with_gan_defaults_and_lr_d():
    cfg = build_run_config({"family": "gan", "model": {"hidden": [8], "lr_d": 1e-3}})
    assert cfg.train.lr == 2e-4 and cfg.train.betas == (0.5, 0.999)
    assert build_run_config({"family": "gan", "train": {"lr": 1e-3}}).train.lr == 1e-3  # given values win
    model = GAN(cfg.model, (1, 8, 8))
    opts = model.make_optimizers(cfg.train, torch.device("cpu"))
    groups = {k: o.param_groups[0] for k, o in opts.items()}
    assert groups["d"]["lr"] == 1e-3 and groups["g"]["lr"] == 2e-4 and groups["g"]["betas"] == (0.5, 0.999)
    assert {id(p) for p in groups["d"]["params"]} == {id(p) for p in model.discriminator.parameters()}


def test_hinge_and_wasserstein_losses_equal_their_formulas():
    real, fake = torch.tensor([2.0, -1.0, 0.3]), torch.tensor([-3.0, 0.5, 1.5])
    hinge_d = (torch.clamp(1 - real, min=0) + torch.clamp(1 + fake, min=0)).mean()  # (1+0.. )
    assert torch.allclose(losses.gan_discriminator_loss(real, fake, "hinge"), hinge_d)
    hinge = (0 + 2 + 0.7) / 3 + (0 + 1.5 + 2.5) / 3
    assert losses.gan_discriminator_loss(real, fake, "hinge").item() == pytest.approx(hinge)
    assert losses.gan_discriminator_loss(real, fake, "wgan-gp").item() == pytest.approx(fake.mean() - real.mean())
    for kind in ("hinge", "wgan-gp"):
        assert losses.gan_generator_loss(fake, kind).item() == pytest.approx(-fake.mean().item())


def test_gradient_penalty_of_a_linear_critic_is_its_weight_norm_minus_one_squared():
    # D(x) = w . x has gradient w at every point, so the penalty is (||w|| - 1)^2 whatever eps draws.
    w = torch.tensor([3.0, 0.0, 4.0, 0.0]).view(1, 1, 2, 2)  # ||w|| = 5
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    real, fake = torch.rand(6, 1, 2, 2), torch.rand(6, 1, 2, 2)
    assert losses.gradient_penalty(critic, real, fake).item() == pytest.approx(16.0)
    # And it is differentiable in the critic's weights (create_graph), as training needs.
    v = torch.ones(1, 1, 2, 2, requires_grad=True)  # ||v|| = 2: penalty 1, d/dv = 2 (||v|| - 1) v / ||v|| = v
    losses.gradient_penalty(lambda x: (x * v).flatten(1).sum(1), real, fake).backward()
    assert torch.allclose(v.grad, torch.ones_like(v))


def test_spectral_norm_makes_each_layer_of_d_have_largest_singular_value_one(digits, tmp_path):
    small = DataSplits(Dataset(digits.train.images[:256], None, "train"),
                       Dataset(digits.test.images[:64], None, "test"), "digits")
    for arch in ("mlp", "conv"):
        cfg = tiny_gan_config(model={"arch": arch, "channels": [4, 8], "spectral_norm": True, "loss": "hinge"},
                              train={"epochs": 3})
        model = train(cfg, tmp_path / arch, progress=False, data=small).model
        layers = [m for m in model.discriminator.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
        assert layers and not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.discriminator.modules())
        raw = []
        for layer in layers:
            sigma = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2).item()
            assert sigma == pytest.approx(1.0, abs=0.05), (arch, layer)
            raw.append(torch.linalg.matrix_norm(layer.parametrizations.weight.original.detach().flatten(1), ord=2))
        assert max(abs(r.item() - 1) for r in raw) > 0.2  # the weights themselves are not normalised


def test_moving_average_follows_its_formula_and_is_what_samples(digits, tmp_path):
    cfg = tiny_gan_config(model={"ema": 0.9}, train={"epochs": 1})
    model = train(cfg, tmp_path / "run", progress=False, data=digits).model
    g_steps = int(model.d_updates)
    before = [p.detach().clone() for p in model.generator_ema.parameters()]
    batch = digits.train.take(torch.arange(64))
    ctx = StepContext(model, model.make_optimizers(cfg.train, torch.device("cpu")))
    model.train_step(batch, ctx)  # d_steps 1: one D and one G update, then the average moves
    beta = min(0.9, (1 + g_steps + 1) / (10 + g_steps + 1))
    for old, new, g in zip(before, model.generator_ema.parameters(), model.generator.parameters()):
        assert torch.allclose(new, beta * old + (1 - beta) * g.detach(), atol=1e-6)
    model.eval()
    z = model.prior_sample(5, torch.Generator().manual_seed(0))
    assert torch.equal(model.decode(z), torch.sigmoid(model.generator_ema(z)))
    assert not torch.equal(model.decode(z), torch.sigmoid(model.generator(z)))
    assert not any(p.requires_grad for p in model.generator_ema.parameters())
    plain = GAN(GANConfig(latent_dim=4, hidden=[8], ema=0.0), (1, 8, 8)).eval()
    assert plain.generator_ema is None and torch.equal(plain.decode(z[:, :4]), torch.sigmoid(plain.generator(z[:, :4])))


def _spectral(d: torch.nn.Module) -> bool:
    return any(hasattr(m, "parametrizations") for m in d.modules())


def test_auto_arch_and_what_each_option_builds():
    train = build_run_config({"family": "gan"}).train
    mlp = GAN(GANConfig(), (1, 8, 8))  # digits: too small for the conv nets; a spectrally normalised MLP D
    assert mlp.arch == "mlp" and _spectral(mlp.discriminator)
    lrs = {k: o.param_groups[0]["lr"] for k, o in mlp.make_optimizers(train, torch.device("cpu")).items()}
    assert lrs == {"d": 4 * train.lr, "g": train.lr}  # two time-scales beside spectral normalisation
    conv = GAN(GANConfig(), (1, 28, 28))  # DCGAN: BatchNorm in D, one learning rate
    assert conv.arch == "conv" and any(isinstance(m, torch.nn.BatchNorm2d) for m in conv.discriminator.modules())
    assert not _spectral(conv.discriminator)
    lrs = {k: o.param_groups[0]["lr"] for k, o in conv.make_optimizers(train, torch.device("cpu")).items()}
    assert lrs == {"d": train.lr, "g": train.lr}
    assert not _spectral(GAN(GANConfig(spectral_norm=False), (1, 8, 8)).discriminator)
    assert not _spectral(GAN(GANConfig(loss="wgan-gp"), (1, 8, 8)).discriminator)  # the penalty bounds D instead
    for options in ({"loss": "wgan-gp"}, {"spectral_norm": True}):  # no BatchNorm in D beside these
        d = GAN(GANConfig(**options), (1, 28, 28)).discriminator
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules()), options
    dropped = GAN(GANConfig(hidden=[16, 8], d_dropout=0.3), (1, 8, 8)).discriminator
    assert [m.p for m in dropped.modules() if isinstance(m, torch.nn.Dropout)] == [0.3, 0.3]
    with pytest.raises(ConfigError, match="label smoothing"):
        build_run_config({"family": "gan", "model": {"loss": "hinge", "label_smoothing": 0.1}})


@pytest.mark.parametrize("loss", ["hinge", "wgan-gp"])
def test_critic_losses_train_and_log_the_game(digits, tmp_path, loss):
    result = train(tiny_gan_config(model={"loss": loss}, train={"epochs": 2}), tmp_path / loss, progress=False,
                   data=digits)
    records = [r for r in result.history if r["split"] == "train"]
    last, test = records[-1], [r for r in result.history if r["split"] == "test"][-1]
    assert ("gradient_penalty" in last) == (loss == "wgan-gp")
    for r in records:  # each logged interval's D loss is its formula of the logged means
        if loss == "wgan-gp":  # E[D(G(z))] - E[D(x)] + lambda GP (Gulrajani et al. 2017, eq. 3), lambda = 10
            assert r["d_loss"] == pytest.approx(r["d_fake"] - r["d_real"] + 10 * r["gradient_penalty"], rel=1e-4)
        else:  # a mean of hinges is at least the hinge of the means (Jensen)
            assert r["d_loss"] >= max(0.0, 1 - r["d_real"]) + max(0.0, 1 + r["d_fake"]) - 1e-6
    for r in (h for h in result.history if h["split"] == "test"):  # held out: both players at the same samples
        assert r["g_loss"] == pytest.approx(-r["d_fake"], abs=1e-6)
        assert loss != "wgan-gp" or r["d_loss"] == pytest.approx(r["d_fake"] - r["d_real"], abs=1e-6)  # no penalty
    assert last["d_loss"] < 0.9 * records[0]["d_loss"]  # the critic learns its side of the game
    # Every curve the loss plot draws is logged: both losses, D's mean outputs, the samples' diversity.
    for keys in result.model.curves.values():
        assert all(k in last or k in test for k in keys), keys
    assert 0 <= test["diversity"] and (tmp_path / loss / "loss.png").is_file()


def test_diversity_warning_fires_when_it_falls_or_ends_low_not_while_warming_up():
    import warnings

    from genmodels.collapse import CollapseWatch

    t = CollapseWatch("gan", "try X")
    seen = []
    for epoch, value in enumerate([0.05, 0.1, 0.8, 0.1, 0.05, 0.9, 0.2]):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            t.check(epoch, value, last=False)
        seen += [(epoch + 1, str(w.message)) for w in record]
    assert [e for e, _ in seen] == [4, 7]  # the two falls; not the warm-up, not twice in one stretch
    assert "fell to 0.10" in seen[0][1] and "try X" in seen[0][1]
    fresh = CollapseWatch("gan", "try X")
    with pytest.warns(RuntimeWarning, match="ended at 0.05"):
        fresh.check(9, 0.05, last=True)


@pytest.mark.filterwarnings("ignore:After epoch:RuntimeWarning")  # 3 steps: its samples look alike
def test_conv_gan_trains_when_the_last_batch_holds_one_image(tmp_path):
    def make(n, g):
        return Dataset((torch.rand(n, 1, 16, 16, generator=g) * 255).to(torch.uint8), None, "tiny")

    g = torch.Generator().manual_seed(0)
    data = DataSplits(make(2 * 8 + 1, g), make(8, g), "tiny")
    config = build_run_config({"family": "gan", "model": {"arch": "conv", "channels": [4, 8], "latent_dim": 4},
                               "train": {"epochs": 1, "batch_size": 8}})
    result = train(config, tmp_path / "run", progress=False, data=data)
    assert [r["step"] for r in result.history if r["split"] == "test"] == [3]
