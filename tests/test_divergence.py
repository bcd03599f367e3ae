"""A loss that is no longer finite, on a training batch or on the held-out split, injected or real, stops
training (exit 1) before the checkpoint, in one sentence naming the term, the step and the checkpoint kept."""

import os
import re
import signal

import pytest
import torch
from safetensors.torch import load_file

from conftest import cli, one_sentence, tiny_vae_config
from genmodels import train
from genmodels.cli import main
from genmodels.errors import TrainingError
from genmodels.rundir import RunDir
from genmodels.runlog import read_history


def test_nan_loss_stops_with_step_and_term_and_keeps_checkpoint(tmp_path, digits, monkeypatch):
    from genmodels.models import vae as vae_mod

    run = tmp_path / "run"
    train(tiny_vae_config(train={"epochs": 1}), run, progress=False, data=digits)
    saved = (run / "checkpoint.safetensors").read_bytes()
    real_forward = vae_mod.VAE.forward

    def bad_forward(self, x):
        out = real_forward(self, x)
        out.parts["kl"] = out.parts["kl"] * float("nan")
        return out

    monkeypatch.setattr(vae_mod.VAE, "forward", bad_forward)
    with pytest.raises(TrainingError, match=r"kl term became nan by step \d+") as err:
        train(tiny_vae_config(train={"epochs": 2}), run, resume=True, progress=False, data=digits)
    assert "\n" not in str(err.value)
    assert (run / "checkpoint.safetensors").read_bytes() == saved


def test_a_real_divergence_stops_with_the_promised_error(tmp_path, capsys):
    """Nothing injected: a learning rate of 1e8 makes the weights overflow within a few steps."""


    run = tmp_path / "run"
    code = main(["train", "ae", "--data", "digits", "--hidden", "32", "--latent-dim", "4", "--lr", "1e8",
                 "--epochs", "2", "--log-every", "5", "--out", str(run), "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    said = r"error: The \w+ term became (nan|inf|-inf) by step \d+; nothing was saved yet, lower --lr"
    assert re.search(said, err), err
    assert err.count("\n") == 1
    assert not (run / "checkpoint.safetensors").exists() and not (run / "model.safetensors").exists()


def test_a_non_finite_test_loss_stops_training(tmp_path, capsys):
    """One step an epoch, so the training loss is logged before the step that ruins the
    weights, and only the held-out loss sees it. Before: exit 0 and NaN weights in the checkpoint."""
    out = tmp_path / "run"
    rc = cli("train", "vae", "--data", "digits", "--hidden", "16", "--latent-dim", "2", "--epochs", "3",
             "--batch-size", "2000", "--lr", "1e6", "--out", out, "--no-progress")
    assert rc == 1
    one_sentence(capsys, "The held-out loss term became nan by step 3", "the last good checkpoint (epoch 2) is kept")
    assert RunDir(out).trained_epochs() == 2
    assert all(torch.isfinite(w).all() for w in load_file(out / "model.safetensors").values())


def test_an_interrupt_after_divergence_keeps_the_last_good_checkpoint(tmp_path, digits, monkeypatch):
    """Weights that went non-finite between two logged steps are never saved by a Ctrl-C."""

    from genmodels.models import VAE

    cfg = tiny_vae_config(train={"epochs": 3, "log_every": 1000})
    original = VAE.train_step
    calls = {"n": 0}

    def step(self, batch, ctx):
        calls["n"] += 1
        parts = original(self, batch, ctx)
        if calls["n"] == 30:  # in epoch 2 (23 steps an epoch), long before its logged step
            with torch.no_grad():
                next(self.parameters()).fill_(float("nan"))
            os.kill(os.getpid(), signal.SIGINT)
        return parts

    monkeypatch.setattr(VAE, "train_step", step)
    out = tmp_path / "run"
    with pytest.raises(TrainingError, match=r"SIGINT stopped training at step 30, but .* is no longer finite; "
                                            r"the last good checkpoint \(epoch 1\) is kept"):
        train(cfg, out, progress=False, data=digits)
    assert RunDir(out).trained_epochs() == 1
    assert all(torch.isfinite(w).all() for w in load_file(out / "checkpoint.safetensors").values())


def test_held_out_nan_is_caught_before_the_checkpoint(tmp_path, digits, monkeypatch):
    import genmodels.training as training

    real = training.evaluate_parts
    calls = {"n": 0}

    def second_epoch_nan(*a, **k):
        calls["n"] += 1
        parts = real(*a, **k)
        return {**parts, "loss": float("nan")} if calls["n"] == 2 else parts

    monkeypatch.setattr(training, "evaluate_parts", second_epoch_nan)
    out = tmp_path / "run"
    with pytest.raises(TrainingError, match=r"held-out loss term became nan .* \(epoch 1\) is kept"):
        train(tiny_vae_config(train={"epochs": 3}), out, progress=False, data=digits)
    assert RunDir(out).trained_epochs() == 1
    assert [r["epoch"] for r in read_history(RunDir(out)) if r["split"] == "test"] == [1]
