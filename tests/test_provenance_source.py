"""One canonical name for a data source: a run records the same absolute path however the path was written
(./x, ~/x, ../x, the absolute path), from Python and from the command line; a built-in name stays a name."""

import json

import numpy as np
import pytest

from conftest import tiny_vae_config
from genmodels.cli import main
from genmodels.engine import train
from genmodels.provenance import canonical_source

pytestmark = pytest.mark.filterwarnings("ignore:After epoch:RuntimeWarning")  # a tiny VAE's samples look alike


@pytest.fixture
def home(tmp_path, monkeypatch):
    """HOME is tmp_path/home, the working directory its folder sets/, which holds set.npy (40 images 8x8)."""
    home = tmp_path / "home"
    (home / "sets").mkdir(parents=True)
    np.save(home / "sets" / "set.npy", (np.random.default_rng(0).random((40, 8, 8)) * 255).astype(np.uint8))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(home / "sets")
    return home


def test_every_way_of_writing_a_path_gives_one_name(home):
    absolute = str((home / "sets" / "set.npy").resolve())
    for written in ("set.npy", "./set.npy", "../sets/set.npy", "~/sets/set.npy", absolute):
        assert canonical_source(written) == absolute, written


def test_names_that_are_not_existing_paths_stay_as_given(home):
    (home / "sets" / "digits").mkdir()  # a folder named like a built-in: load_data reads the built-in all the same
    for name in ("digits", "fashion-mnist", "mnist", "~/sets/missing.npy", "my-data", ""):
        assert canonical_source(name) == name


def test_a_run_records_the_canonical_source_from_python_and_the_command_line(home):
    absolute = str((home / "sets" / "set.npy").resolve())
    config = tiny_vae_config(train={"epochs": 1})
    config = config.model_copy(update={"data": config.data.model_copy(update={"source": "~/sets/set.npy"})})
    train(config, home / "python", progress=False)
    assert main(["train", "vae", "--data", "./set.npy", "--epochs", "1", "--out", str(home / "cli"), "--hidden", "32",
                 "--latent-dim", "2", "--batch-size", "64", "--no-progress"]) == 0
    for run in ("python", "cli"):
        assert json.loads((home / run / "config.json").read_text())["data"]["source"] == absolute, run
