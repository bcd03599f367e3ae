"""Weights and checkpoints changed by hand (issue 27, cases 9 and 10): non-finite weights are refused wherever a
run is loaded, and a checkpoint's optimizer hyper-parameters must be the ones the run's config builds. Each
refusal is one sentence naming the file and what is wrong, and leaves the run's files as they were."""

import json
import shutil
from pathlib import Path

import pytest
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from conftest import cli, one_sentence, snapshot, tiny_vae_config
from genmodels import CheckpointError, train
from genmodels.rundir import RunDir


def _rewrite(path: Path, change) -> None:
    """Rewrite a safetensors file of genmodels with change(tensors, metadata) applied, its format kept."""
    with safe_open(path, "pt") as f:
        meta = f.metadata()
    tensors = load_file(path)
    change(tensors, meta)
    save_file(tensors, path, metadata=meta)


def _groups(change):
    """A change of the checkpoint's first parameter group of the 'main' optimizer."""
    def apply(tensors, meta):
        groups = json.loads(meta["param_groups"])
        change(groups["main"][0])
        meta["param_groups"] = json.dumps(groups)
    return apply


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


# -- case 10: the optimizer's hyper-parameters -------------------------------------------------------------------------


@pytest.mark.parametrize("key, value, expected", [
    ("lr", -0.001, "0.003"),
    ("lr", float("nan"), "0.003"),
    ("lr", 0.03, "0.003"),
    ("maximize", True, "false"),
    ("betas", [5, 0.999], "[0.9, 0.999]"),
    ("eps", 1.0, "1e-08"),
    ("weight_decay", 0.5, "0"),
    ("amsgrad", True, "false"),
    ("decoupled_weight_decay", True, "false"),
])
def test_a_changed_hyper_parameter_is_refused_naming_both_values(copied, capsys, key, value, expected):
    """Before, each resumed with exit 0 (lr < 0 trains uphill) or, for lr NaN, failed later advising a lower --lr."""
    _rewrite(copied / "checkpoint.safetensors", _groups(lambda g: g.__setitem__(key, value)))
    before = snapshot(copied)
    assert _resume(copied) == 2
    one_sentence(capsys, "checkpoint.safetensors", f"'main' optimizer's {key} is {json.dumps(value)}",
                 f"config builds {expected}")
    assert snapshot(copied) == before


def test_execution_flags_come_from_this_machine_not_the_checkpoint(copied, digits):
    """foreach, fused, capturable and differentiable say how the update runs here (fused depends on the device, which
    a resumed run may change), not what it computes: the resumed optimizer takes the ones it was built with.
    Before, a checkpoint's differentiable=true reached the fused Adam step and training ended in a traceback."""
    _rewrite(copied / "checkpoint.safetensors", _groups(lambda g: g.update(differentiable=True, capturable=True)))
    result = train(tiny_vae_config(train={"epochs": 2}), copied, resume=True, progress=False, data=digits)
    assert [r["epoch"] for r in result.history if r["split"] == "test"] == [1, 2]


@pytest.fixture
def cosine(tmp_path, digits):
    out = tmp_path / "cosine"
    train(tiny_vae_config(train={"epochs": 2, "lr": 0.01, "lr_schedule": "cosine"}), out, progress=False, data=digits)
    return out


def _resume_cosine(run: Path) -> int:
    return cli("train", "vae", "--out", run, "--resume", "--epochs", 3, "--no-progress")


def test_a_scheduled_lr_resumes_and_its_base_and_range_are_checked(cosine, capsys):
    """Under the cosine schedule lr anneals from initial_lr (the config's) and is set afresh each epoch: initial_lr
    must be the config's, lr within [0, initial_lr]."""
    pristine = (cosine / "checkpoint.safetensors").read_bytes()
    for change, words in [(lambda g: g.__setitem__("initial_lr", 0.02), "initial_lr is 0.02, but the run's config "
                                                                         "builds 0.01"),
                          (lambda g: g.__setitem__("lr", 0.05), "lr is 0.05, outside [0, 0.01]"),
                          (lambda g: g.__setitem__("lr", -0.01), "lr is -0.01, outside [0, 0.01]"),
                          (lambda g: g.__setitem__("lr", float("nan")), "lr is NaN, outside [0, 0.01]"),
                          (lambda g: g.pop("initial_lr"), "other parameter groups")]:
        _rewrite(cosine / "checkpoint.safetensors", _groups(change))
        before = snapshot(cosine)
        assert _resume_cosine(cosine) == 2
        one_sentence(capsys, "checkpoint.safetensors", words)
        assert snapshot(cosine) == before
        (cosine / "checkpoint.safetensors").write_bytes(pristine)
    assert _resume_cosine(cosine) == 0


def test_a_constant_lr_run_may_not_carry_a_schedule_base(copied, capsys):
    """initial_lr is the cosine schedule's: in a constant-lr run's checkpoint it is refused, not silently kept."""
    _rewrite(copied / "checkpoint.safetensors", _groups(lambda g: g.__setitem__("initial_lr", 0.003)))
    assert _resume(copied) == 2
    one_sentence(capsys, "checkpoint.safetensors", "other parameter groups")

