"""Nothing lost on a crash: SIGINT/SIGTERM save the position inside the epoch, SIGKILL leaves the
last complete checkpoint, and resuming either way ends with the weights of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from genmodels import build_run_config, load_run, train
from genmodels.checkpoint import read_safetensors
from genmodels.cli import main
from genmodels.errors import TrainingInterrupted
from genmodels.models import VAE

from conftest import tiny_vae_config


def _assert_same_weights(a, b):
    for (k, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), k


def _signal_at_step(monkeypatch, cls, n, sig):
    """Make the n-th training step of model class `cls` send `sig` to this process."""
    calls = {"n": 0}
    original = cls.train_step

    def step(self, x, ctx):
        calls["n"] += 1
        if calls["n"] == n:
            os.kill(os.getpid(), sig)
        return original(self, x, ctx)

    monkeypatch.setattr(cls, "train_step", step)


@pytest.mark.parametrize("sig, step", [(signal.SIGTERM, 31), (signal.SIGINT, 7)])
def test_signal_saves_mid_epoch_and_resume_equals_uninterrupted(digits, tmp_path, monkeypatch, sig, step):
    # binarize draws noise every step, so the RNG state saved mid-epoch matters too.
    cfg = tiny_vae_config(model={"binarize": True}, train={"epochs": 3, "batch_size": 32})
    full = train(cfg, tmp_path / "full", progress=False, data=digits)
    with monkeypatch.context() as m:
        _signal_at_step(m, VAE, step, sig)
        with pytest.raises(TrainingInterrupted, match=rf"{sig.name} stopped training at step {step} .*--resume"):
            train(cfg, tmp_path / "cut", progress=False, data=digits)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handlers are put back
    state = json.loads(read_safetensors(tmp_path / "cut" / "checkpoint.safetensors")[1]["state"])
    assert state["step"] == step and 0 < state["batch"]  # inside an epoch, not at its end
    resumed = train(cfg, tmp_path / "cut", resume=True, progress=False, data=digits)
    _assert_same_weights(full.model, resumed.model)
    tests = lambda h: [r for r in h if r["split"] == "test"]  # noqa: E731
    assert tests(resumed.history) == tests(full.history)


def test_interrupted_pca_keeps_what_it_had_and_says_so(digits, tmp_path, monkeypatch):
    from genmodels.models import PCA

    _signal_at_step(monkeypatch, PCA, 2, signal.SIGTERM)
    cfg = build_run_config({"family": "pca", "model": {"latent_dim": 4}, "train": {"batch_size": 100}})
    with pytest.raises(TrainingInterrupted, match="nothing was saved yet.*repeats that epoch"):
        train(cfg, tmp_path / "pca", progress=False, data=digits)


def test_cli_exits_130_with_the_resume_command(tmp_path, monkeypatch, capsys):
    _signal_at_step(monkeypatch, VAE, 3, signal.SIGINT)
    out = tmp_path / "run"
    rc = main(["train", "vae", "--data", "digits", "--hidden", "16", "--latent-dim", "2", "--epochs", "1",
               "--out", str(out), "--no-progress"])
    assert rc == 130
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"genmodels train vae --out {out} --resume" in err


def test_sigkill_mid_training_then_resume_equals_uninterrupted(digits, tmp_path):
    """A process killed outright (no handler runs) leaves its last complete, atomically written
    checkpoint; --resume repeats the unfinished epoch and ends where an uninterrupted run ends."""
    out, epochs = tmp_path / "killed", 60
    args = ["train", "vae", "--data", "digits", "--hidden", "16", "--latent-dim", "2", "--batch-size", "64",
            "--epochs", str(epochs), "--threads", "1", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "genmodels", *args, "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    try:
        while not (out / "checkpoint.safetensors").exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(0.3)  # somewhere in a later epoch, possibly in the middle of writing a checkpoint
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    assert main([*args, "--out", str(out), "--resume"]) == 0
    full = tmp_path / "full"
    assert main([*args, "--out", str(full)]) == 0
    _assert_same_weights(load_run(full).model, load_run(out).model)


def test_grad_clip_bounds_every_step_and_rejects_bad_values(digits, tmp_path, monkeypatch):
    from genmodels import ConfigError

    norms = []
    original = torch.optim.Adam.step

    def step(self, *args, **kwargs):
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        norms.append(torch.nn.utils.get_total_norm(grads).item())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    train(tiny_vae_config(train={"epochs": 1, "grad_clip": 0.5}), tmp_path / "clip", progress=False, data=digits)
    assert norms and max(norms) <= 0.5 + 1e-4
    norms.clear()
    train(tiny_vae_config(train={"epochs": 1}), tmp_path / "free", progress=False, data=digits)
    assert max(norms) > 0.5  # without clipping the same run's gradients are larger: the clip did the work
    with pytest.raises(ConfigError, match=r"train\.grad_clip"):
        tiny_vae_config(train={"grad_clip": -1.0})


def test_the_checkpoint_keeps_the_seconds_of_training(digits, tmp_path):
    """The report's training time: saved with every checkpoint, added up over resumes, and unknown (not 0)
    for a checkpoint written before it was kept."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from genmodels.rundir import RunDir

    out = tmp_path / "run"
    first = train(tiny_vae_config(train={"epochs": 2}), out, progress=False, data=digits)
    seconds = RunDir(out).train_seconds()
    assert seconds > 0 and seconds == pytest.approx(sum(first.epoch_seconds), abs=2e-3)
    second = train(tiny_vae_config(train={"epochs": 3}), out, resume=True, progress=False, data=digits)
    assert RunDir(out).train_seconds() == pytest.approx(seconds + sum(second.epoch_seconds), abs=4e-3)

    path = out / "checkpoint.safetensors"
    with safe_open(path, "pt") as f:
        meta = f.metadata()
    state = json.loads(meta["state"])
    del state["seconds"]
    save_file(load_file(path), path, metadata={**meta, "state": json.dumps(state)})
    assert RunDir(out).train_seconds() is None
    train(tiny_vae_config(train={"epochs": 4}), out, resume=True, progress=False, data=digits)
    assert RunDir(out).train_seconds() is None
