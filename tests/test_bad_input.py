"""Bad configs, run directories and checkpoints: one clear sentence, nothing saved is lost."""

import pickle

import pytest
import torch

from conftest import tiny_vae_config
from genmodels import CheckpointError, ConfigError, build_run_config, train
from genmodels.checkpoint import read_safetensors
from genmodels.cli import main
from genmodels.config import read_toml
from genmodels.errors import TrainingError
from genmodels.rundir import RunDir


@pytest.mark.parametrize("values, match", [
    ({"family": "vae", "train": {"lr": -1}}, r"train\.lr"),
    ({"family": "vae", "model": {"latent_dim": 0}}, r"model\.latent_dim"),
    ({"family": "vae", "model": {"likelihood": "poisson"}}, r"model\.likelihood"),
    ({"family": "vae", "model": {"latnt_dim": 2}}, r"latnt_dim"),
    ({"family": "vae", "model": {"likelihood": "gaussian", "binarize": True}}, r"binarize"),
    ({"family": "vae", "train": {"betas": [0.9, 1.5]}}, r"betas"),
    ({"family": "flow"}, r"unknown model family 'flow'"),
])
def test_bad_config_values_give_one_sentence(values, match):
    with pytest.raises(ConfigError, match=match) as err:
        build_run_config(values)
    assert "\n" not in str(err.value)


def test_bad_toml_file(tmp_path):
    (tmp_path / "c.toml").write_text("[train\nepochs = 2")
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_toml(tmp_path / "c.toml")
    (tmp_path / "d.toml").write_text("[optimizer]\nlr = 1")
    with pytest.raises(ConfigError, match="unknown tables"):
        read_toml(tmp_path / "d.toml")


def test_config_file_with_flag_override(tmp_path, capsys):
    (tmp_path / "c.toml").write_text('[model]\nlatent_dim = 3\nhidden = [16]\n[train]\nepochs = 1\nbatch_size = 200\n')
    assert main(["train", "vae", "--config", str(tmp_path / "c.toml"), "--epochs", "2", "--out",
                 str(tmp_path / "run"), "--no-progress"]) == 0
    model, cfg = RunDir(tmp_path / "run").load_model()
    assert cfg.model.latent_dim == 3 and cfg.train.epochs == 2 and cfg.train.batch_size == 200


@pytest.fixture(scope="module")
def done_run(digits, tmp_path_factory):
    return train(tiny_vae_config(train={"epochs": 1}), tmp_path_factory.mktemp("bad") / "run", progress=False, data=digits)


def test_refuses_to_overwrite_a_run(done_run, digits):
    before = (done_run.run_dir / "model.safetensors").read_bytes()
    with pytest.raises(CheckpointError, match="--resume .* --overwrite"):
        train(tiny_vae_config(), done_run.run_dir, progress=False, data=digits)
    assert (done_run.run_dir / "model.safetensors").read_bytes() == before


def test_refuses_a_foreign_non_empty_directory(tmp_path, digits):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="not a genmodels run directory"):
        train(tiny_vae_config(), tmp_path, progress=False, data=digits)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_resume_without_checkpoint(tmp_path, digits):
    with pytest.raises(CheckpointError, match="Nothing to resume"):
        train(tiny_vae_config(), tmp_path / "empty", resume=True, progress=False, data=digits)


class _Boom:
    def __reduce__(self):
        return (open, ("/tmp/genmodels_pickle_was_executed", "w"))


def test_pickle_file_is_refused_and_never_executed(tmp_path, done_run):
    import os
    import shutil

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
    import json
    import shutil

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


def test_overwrite_replaces_only_our_files(tmp_path, digits):
    run = tmp_path / "run"
    first = train(tiny_vae_config(train={"epochs": 1}), run, progress=False, data=digits)
    (run / "my_notes.txt").write_text("keep me")
    second = train(tiny_vae_config(train={"epochs": 2, "seed": 5}), run, overwrite=True, progress=False, data=digits)
    assert (run / "my_notes.txt").read_text() == "keep me"
    assert [r["epoch"] for r in second.history if r["split"] == "test"] == [1, 2]
    assert first.history[0] != second.history[0]  # a new run, not a continuation


def test_a_real_divergence_stops_with_the_promised_error(tmp_path, capsys):
    """Nothing injected: a learning rate of 1e8 makes the weights overflow within a few steps."""
    import re

    from genmodels.cli import main

    run = tmp_path / "run"
    code = main(["train", "ae", "--data", "digits", "--hidden", "32", "--latent-dim", "4", "--lr", "1e8",
                 "--epochs", "2", "--log-every", "5", "--out", str(run), "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    assert re.search(r"error: The \w+ term became (nan|inf|-inf) by step \d+; nothing was saved yet, lower --lr", err), err
    assert err.count("\n") == 1
    assert not (run / "checkpoint.safetensors").exists() and not (run / "model.safetensors").exists()
