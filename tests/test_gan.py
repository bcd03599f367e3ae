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
    assert torch.allclose(losses.gan_discriminator_loss(real, fake, 0.1), smoothed, atol=1e-6)
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
    monkeypatch.setattr(StepContext, "step", lambda self, loss, name="main": (calls.append(name), original(self, loss, name)))
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
    cfg = build_run_config({"family": "gan", "model": {"latent_dim": 2, "hidden": [32, 32]},
                            "train": {"epochs": 10, "batch_size": 50, "lr": 1e-3, "log_every": 20}})
    model = train(cfg, tmp_path / "run", progress=False, data=data).model
    with torch.inference_mode():
        s = model.sample(2000, torch.Generator().manual_seed(0)).flatten()
    near = [((s - m).abs() < 0.1).float().mean().item() for m in (0.25, 0.75)]
    assert min(near) >= 0.2, near


def test_resume_equals_uninterrupted_run(digits, tmp_path):
    # conv: BatchNorm running statistics; d_steps 2 over 7 batches an epoch: the k-cycle crosses epochs.
    small = DataSplits(Dataset(digits.train.images[:400], None, "train"), Dataset(digits.test.images[:100], None, "test"),
                       "digits")
    over = {"model": {"arch": "conv", "channels": [4, 8], "d_steps": 2, "label_smoothing": 0.1}}
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


@pytest.mark.parametrize("bad, match", [({"d_steps": 0}, "d_steps"), ({"label_smoothing": 1.0}, "label_smoothing"),
                                        ({"label_smoothing": -0.1}, "label_smoothing"), ({"loss": "wasserstein"}, "loss"),
                                        ({"prior": "cauchy"}, "prior")])
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
