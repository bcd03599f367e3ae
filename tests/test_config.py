"""Run configs: values checked by build_run_config, TOML files read and overridden by flags, and every mistake
named in one sentence with the file it came from."""

import pytest

from genmodels import ConfigError, build_run_config
from genmodels.cli import main
from genmodels.config import read_toml
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


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_a_toml_file_with_several_mistakes_names_the_file_and_every_mistake(tmp_path, capsys):
    toml = tmp_path / "bad.toml"
    toml.write_text('[model]\nlatent_dim = -1\nhidden = "x"\n[train]\nepochs = 0\n')
    assert main(["train", "vae", "--config", str(toml), "--out", str(tmp_path / "run")]) == 2
    err = _error_line(capsys)
    assert f"Bad config in {toml}: " in err
    for mistake in ("model.latent_dim = -1", "model.hidden = 'x'", "train.epochs = 0"):  # model's and train's
        assert mistake in err, mistake
    assert not (tmp_path / "run").exists()


def test_a_toml_file_and_flags_are_both_named(tmp_path, capsys):
    toml = tmp_path / "bad.toml"
    toml.write_text("[model]\nlatent_dim = -1\n")
    assert main(["train", "vae", "--config", str(toml), "--lr", "-1", "--out", str(tmp_path / "run")]) == 2
    err = _error_line(capsys)
    assert f"Bad config in {toml} and the command-line flags: " in err and "model.latent_dim = -1" in err
    assert "train.lr = -1.0" in err
    assert main(["train", "vae", "--latent-dim", "0", "--out", str(tmp_path / "run")]) == 2
    assert "Bad config in the command-line flags: model.latent_dim = 0" in _error_line(capsys)


def test_a_toml_file_of_another_family_is_refused(tmp_path, capsys):
    toml = tmp_path / "gan.toml"
    toml.write_text('family = "gan"\n[model]\nlatent_dim = 4\n')
    assert main(["train", "vae", "--config", str(toml), "--out", str(tmp_path / "run")]) == 2
    err = _error_line(capsys)
    assert f"{toml} is for family 'gan', not 'vae'" in err and "genmodels train gan" in err
    assert not (tmp_path / "run").exists()
