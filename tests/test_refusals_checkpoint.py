"""Checkpoints and weights genmodels did not write, or that were changed: pickle is refused and never run,
truncated or foreign safetensors are named, and every entry of a training checkpoint is checked before it
reaches a kernel. Each refusal: one sentence, and the run's files unchanged."""

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import cli, one_sentence, snapshot, tiny_vae_config
from genmodels import CheckpointError, ConfigError, train
from genmodels.checkpoint import read_safetensors
from genmodels.rundir import RunDir


def test_resume_without_checkpoint(tmp_path, digits):
    with pytest.raises(CheckpointError, match="Nothing to resume"):
        train(tiny_vae_config(), tmp_path / "empty", resume=True, progress=False, data=digits)


class _Boom:
    def __reduce__(self):
        return (open, ("/tmp/genmodels_pickle_was_executed", "w"))


def test_pickle_file_is_refused_and_never_executed(tmp_path, done_run):

    run = tmp_path / "run"
    shutil.copytree(done_run.run_dir, run)
    (run / "model.safetensors").write_bytes(pickle.dumps({"w": _Boom()}, protocol=2))
    if os.path.exists("/tmp/genmodels_pickle_was_executed"):
        os.remove("/tmp/genmodels_pickle_was_executed")
    with pytest.raises(CheckpointError, match="pickle"):
        RunDir(run).load_model()
    assert not os.path.exists("/tmp/genmodels_pickle_was_executed")


def test_truncated_and_foreign_safetensors(tmp_path, done_run):
    raw = (done_run.run_dir / "model.safetensors").read_bytes()
    (tmp_path / "t.safetensors").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        read_safetensors(tmp_path / "t.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, tmp_path / "f.safetensors")
    with pytest.raises(CheckpointError, match="not written by genmodels"):
        read_safetensors(tmp_path / "f.safetensors")


def test_weights_not_matching_config(tmp_path, done_run):

    run = tmp_path / "run"
    shutil.copytree(done_run.run_dir, run)
    cfg = json.loads((run / "config.json").read_text())
    cfg["model"]["hidden"] = [48]
    (run / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="do not match config.json"):
        RunDir(run).load_model()
    (run / "config.json").write_text('{"family": "vae", "model": {"latent_dim": "two"}}')
    with pytest.raises(ConfigError, match="latent_dim"):
        RunDir(run).load_model()


# -- a tampered training checkpoint ------------------------------------------------------------------------------------


def _tamper(run: Path, change) -> None:
    from safetensors import safe_open

    path = run / "checkpoint.safetensors"
    with safe_open(path, "pt") as f:
        meta = f.metadata()
    tensors = load_file(path)
    change(tensors, meta)
    save_file(tensors, path, metadata=meta)


@pytest.mark.slow  # starts a subprocess
def test_a_wrong_sized_optimizer_state_never_reaches_the_fused_kernel(done):
    """Before, fused Adam wrote past a 1-element buffer: exit 139. A subprocess, so a crash fails the test."""
    _tamper(done, lambda t, m: t.__setitem__("optim.main.0.exp_avg", torch.zeros(1)))
    before = snapshot(done)
    r = subprocess.run([sys.executable, "-m", "genmodels", "train", "vae", "--out", str(done), "--resume",
                        "--epochs", "3", "--no-progress"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "does not fit this model's 'main' optimizer" in r.stderr and "Traceback" not in r.stderr
    assert snapshot(done) == before


def _drop(key):
    return lambda t, m: t.pop(key)


def _meta(key, value):
    return lambda t, m: m.__setitem__(key, value)


@pytest.mark.parametrize("change, words", [
    (_drop("optim.main.0.exp_avg_sq"), "missing or unexpected per-parameter entries"),
    (lambda t, m: t.__setitem__("optim.main.0.step", torch.zeros(3)), "step of parameter 0 has shape (3,)"),
    (lambda t, m: t.__setitem__("optim.main.0.exp_avg", t["optim.main.0.exp_avg"] * float("nan")), "not finite"),
    (lambda t, m: t.__setitem__("optim.main.99.exp_avg", torch.zeros(2)), "unexpected entry optim.main.99"),
    (lambda t, m: t.__setitem__("stray", torch.zeros(2)), "unexpected entry 'stray'"),
    (_meta("param_groups", "{}"), "no optimizer settings"),
    (_meta("param_groups", "[1, 2"), "no optimizer settings"),
    (lambda t, m: m.pop("param_groups"), "no optimizer settings"),
    (lambda t, m: m.__setitem__("param_groups", m["param_groups"].replace('"lr": ', '"lr": "x", "z": ')),
     "other parameter groups"),
    (_meta("state", '{"epoch": -1, "step": 3}'), "no valid training position"),
    (_meta("state", '{"epoch": 1}'), "no valid training position"),
    (_meta("state", "[" * 100_000), "no valid training position"),
    (lambda t, m: t.__setitem__("rng.torch", torch.zeros(3, dtype=torch.uint8)), "no valid torch random-number state"),
    (_drop("rng.data"), "no valid data random-number state"),
])
def test_every_checkpoint_entry_is_checked(done, capsys, change, words):
    _tamper(done, change)
    before = snapshot(done)
    assert cli("train", "vae", "--out", done, "--resume", "--epochs", 3, "--no-progress") == 2
    one_sentence(capsys, words)
    assert snapshot(done) == before
