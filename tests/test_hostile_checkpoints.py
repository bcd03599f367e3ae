"""Weights and checkpoints changed by hand (issue 27, cases 9 and 10): non-finite weights are refused wherever a
run is loaded, and a checkpoint's optimizer hyper-parameters must be the ones the run's config builds. Each
refusal is one sentence naming the file and what is wrong, and leaves the run's files as they were."""

import shutil
from pathlib import Path

import pytest
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from conftest import cli, one_sentence, snapshot
from genmodels import CheckpointError
from genmodels.rundir import RunDir


def _rewrite(path: Path, change) -> None:
    """Rewrite a safetensors file of genmodels with change(tensors, metadata) applied, its format kept."""
    with safe_open(path, "pt") as f:
        meta = f.metadata()
    tensors = load_file(path)
    change(tensors, meta)
    save_file(tensors, path, metadata=meta)


def _resume(run: Path, epochs: int = 3) -> int:
    return cli("train", "vae", "--out", run, "--resume", "--epochs", epochs, "--no-progress")


@pytest.fixture
def copied(tmp_path, done_run):
    run = tmp_path / "run"
    shutil.copytree(done_run.run_dir, run)
    return run


# -- case 9: weights that are not finite -------------------------------------------------------------------------------


def _poison(name: str, value: float, everywhere: bool = True):
    def apply(tensors, meta):
        t = tensors[name].clone()
        if everywhere:
            t.fill_(value)
        else:
            t.view(-1)[-1] = value
        tensors[name] = t
    return apply


@pytest.mark.parametrize("command", [
    ["sample", "-n", "4"], ["reconstruct"], ["latent"], ["encode", "--split", "test"], ["evaluate"]])
def test_nan_weights_are_refused_by_every_command_that_loads_them(copied, tmp_path, capsys, command):
    """Before, all but evaluate exited 0 and wrote NaN pictures and codes."""
    first = next(iter(RunDir(copied).load_model()[0].state_dict()))
    _rewrite(copied / "model.safetensors", lambda t, m: [_poison(k, float("nan"))(t, m) for k in list(t)])
    before = snapshot(copied)
    out = [] if command[0] == "evaluate" else ["--out", tmp_path / f"o{'.npz' if command[0] == 'encode' else '.png'}"]
    assert cli(command[0], copied, *command[1:], *out) == 2
    one_sentence(capsys, "model.safetensors", f"{first} holds", "not finite", "restore the file from a copy")
    assert snapshot(copied) == before
    assert not any(p.name.startswith("o.") for p in tmp_path.iterdir())


def test_one_infinite_value_is_named_with_its_tensor(copied):
    name = list(RunDir(copied).load_model()[0].state_dict())[-1]
    _rewrite(copied / "model.safetensors", _poison(name, float("-inf"), everywhere=False))
    with pytest.raises(CheckpointError, match=rf"model.safetensors.* {name} holds 1 value that is not finite"):
        RunDir(copied).load_model()


def test_nan_weights_in_the_checkpoint_are_refused_on_resume(copied, capsys):
    """Before, the resumed run trained from NaN weights and stopped with the advice to lower --lr."""
    name = next(k for k in load_file(copied / "checkpoint.safetensors") if k.startswith("model."))
    _rewrite(copied / "checkpoint.safetensors", _poison(name, float("nan")))
    before = snapshot(copied)
    assert _resume(copied) == 2
    one_sentence(capsys, "checkpoint.safetensors", f"{name[len('model.'):]} holds", "not finite")
    assert snapshot(copied) == before
