"""Config values keep their declared types: a TOML file or a run's config.json that gives a boolean, a string or a
float where an integer (or a number, or true/false) belongs is refused in one sentence naming each key, its value
and the type expected, never coerced; an integer for a float, TOML's arrays for tuples, the command line's typed
flags and numpy's scalars from Python stay accepted."""

import json
import shutil

import numpy as np
import pytest

from conftest import TINY, cli, one_sentence
from genmodels import ConfigError, build_run_config
from genmodels.config import read_toml
from genmodels.rundir import RunDir


@pytest.mark.parametrize("toml, mistake", [
    ("[model]\nlatent_dim = true", "model.latent_dim = True (a boolean where an integer is expected)"),
    ("[train]\nepochs = true", "train.epochs = True (a boolean where an integer is expected)"),
    ("[model]\nbinarize = 1", "model.binarize = 1 (an integer where true or false is expected)"),
    ('[train]\nlr = "0.001"', "train.lr = '0.001' (a string where a number is expected; drop the quotes)"),
    ("[model]\nhidden = [1e9]", "model.hidden.0 = 1000000000.0 (a float where an integer is expected; "
                                "write 1000000000)"),
    ("[model]\nlatent_dim = 2.0", "model.latent_dim = 2.0 (a float where an integer is expected; write 2)"),
    ("[train]\nbetas = [0.5, false]", "train.betas.1 = False (a boolean where a number is expected)"),
    ("[train]\nthreads = true", "train.threads = True (a boolean where an integer is expected)"),
    ("[data]\nsource = 3", "data.source = 3 (an integer where a string in quotes is expected)"),
])
def test_a_toml_value_of_the_wrong_type_is_refused_naming_key_value_and_type(tmp_path, capsys, toml, mistake):
    (tmp_path / "c.toml").write_text(toml + "\n")
    out = tmp_path / "run"
    assert cli("train", "vae", "--config", tmp_path / "c.toml", "--out", out) == 2
    one_sentence(capsys, f"Bad config in {tmp_path / 'c.toml'}: {mistake}; fix these values and run again.")
    assert not out.exists()


def test_every_mistake_is_named_at_once(tmp_path, capsys):
    (tmp_path / "c.toml").write_text('[model]\nlatent_dim = true\nbinarize = 1\n[train]\nlr = "0.001"\n')
    assert cli("train", "vae", "--config", tmp_path / "c.toml", "--out", tmp_path / "run") == 2
    one_sentence(capsys, "model.latent_dim = True (a boolean", "model.binarize = 1 (an integer",
                 "train.lr = '0.001' (a string")


def test_what_has_its_type_is_accepted_from_toml(tmp_path):
    """An integer is a float's value (lr = 1); a TOML array is a tuple's (betas)."""
    (tmp_path / "c.toml").write_text("[model]\nlatent_dim = 3\nbinarize = true\nhidden = [16]\n"
                                     "[train]\nlr = 1\nbetas = [0.5, 0.9]\nepochs = 2\n")
    values = read_toml(tmp_path / "c.toml")
    config = build_run_config({"family": "vae", **values})
    assert (config.model.latent_dim, config.model.binarize, config.model.hidden) == (3, True, [16])
    assert config.train.lr == 1.0 and isinstance(config.train.lr, float) and config.train.betas == (0.5, 0.9)


def test_the_command_lines_typed_flags_still_train(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli("train", "vae", *TINY, "--epochs", "1", "--lr", "1e-3", "--betas", "0.5,0.9", "--binarize",
               "--threads", "1", "--out", out) == 0
    config = RunDir(out).read_config()  # and its config.json reads back, tuples and all
    assert config.train.betas == (0.5, 0.9) and config.model.binarize and config.shape == (1, 8, 8)


def test_a_flag_of_the_wrong_type_is_refused_by_argparse(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli("train", "vae", "--latent-dim", "2.5", "--out", tmp_path / "run")
    assert exit_.value.code == 2 and "invalid int value: '2.5'" in capsys.readouterr().err


def test_numpy_scalars_from_python_are_the_values_they_hold():
    """A scikit-learn grid search hands the estimator np.int64 and np.float64."""
    config = build_run_config({"family": "vae", "model": {"latent_dim": np.int64(3), "hidden": [np.int64(8)],
                                                          "binarize": np.bool_(True)},
                               "train": {"lr": np.float32(0.5), "betas": (np.float64(0.5), 0.9)}})
    assert type(config.model.latent_dim) is int and config.model.hidden == [8] and config.model.binarize is True
    assert type(config.train.lr) is float and config.train.betas == (0.5, 0.9)
    with pytest.raises(ConfigError, match=r"model.latent_dim = 3.0 \(a float where an integer is expected"):
        build_run_config({"family": "vae", "model": {"latent_dim": np.float64(3.0)}})


def test_an_assignment_is_held_to_the_type_too():
    config = build_run_config({"family": "vae"})
    with pytest.raises(ValueError, match="valid integer"):
        config.model.latent_dim = True  # type: ignore[assignment]


@pytest.mark.parametrize("section, key, value, mistake", [
    ("model", "latent_dim", True, "model.latent_dim = True (a boolean where an integer is expected)"),
    ("train", "epochs", 1.0, "train.epochs = 1.0 (a float where an integer is expected; write 1)"),
    ("train", "lr", "0.001", "train.lr = '0.001' (a string where a number is expected; drop the quotes)"),
    (None, "shape", [1.0, 8, 8], "shape.0 = 1.0 (a float where an integer is expected; write 1)"),
])
def test_a_run_whose_config_json_has_a_wrong_type_is_refused(tmp_path, capsys, done_run, section, key, value,
                                                             mistake):
    run = tmp_path / "run"
    shutil.copytree(done_run.run_dir, run)
    config = json.loads((run / "config.json").read_text())
    (config[section] if section else config)[key] = value
    (run / "config.json").write_text(json.dumps(config))
    assert cli("sample", run, "--out", tmp_path / "s.png") == 2
    one_sentence(capsys, f"Bad config in {run / 'config.json'}: {mistake}")
    assert not (tmp_path / "s.png").exists()
