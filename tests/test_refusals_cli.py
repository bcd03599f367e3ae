"""Bad arguments, options and config files to every command: one sentence, exit status 2, no traceback, and every file
that existed before left as it was."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import genmodels
from genmodels import GenmodelsError, build_run_config, load_run, runs, train
from genmodels.cli import main
from genmodels.evaluation import evaluate


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile") / "vae"
    assert main(["train", "vae", "--data", "digits", "--latent-dim", "2", "--hidden", "16", "--epochs", "1",
                 "--out", str(out), "--no-progress"]) == 0
    return out


def snapshot(*folders) -> dict:
    """Every file under the folders, with its bytes."""
    return {p: p.read_bytes() for folder in folders for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(capsys, argv: list[str], *words: str) -> str:
    """Run the command; it must exit 2 with one line `genmodels: error: ...` holding every word."""
    assert main([str(a) for a in argv]) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith("genmodels: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and not captured.out
    for word in words:
        assert word in err, (word, err)
    return err


# -- seeds -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [2**63, -1, 10**30])
def test_seeds_out_of_range(run_dir, tmp_path, capsys, seed):
    before = snapshot(run_dir)
    refused(capsys, ["train", "vae", "--epochs", "1", "--seed", seed, "--out", tmp_path / "new", "--no-progress"],
            "train.seed", "0..2**63-1")
    assert not (tmp_path / "new").exists()
    for command in (["sample", run_dir, "--out", tmp_path / "s.png"], ["interpolate", run_dir],
                    ["evaluate", run_dir, "--importance-samples", "5"]):
        refused(capsys, [*command, "--seed", seed], "--seed", "0..2**63-1")
    assert snapshot(run_dir) == before


def test_the_largest_seed_trains(tmp_path, digits):
    config = build_run_config({"family": "pca", "model": {"latent_dim": 2}, "train": {"epochs": 1, "seed": 2**63 - 1}})
    train(config, tmp_path / "run", progress=False, data=digits)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["seed"] == 2**63 - 1


# -- devices ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device, words", [
    ("meta", ["Unknown device 'meta'", "use cpu"]),
    ("cpu:zz", ["Unknown device 'cpu:zz'"]),
    ("", ["Unknown device ''"]),
    pytest.param("cuda", ["no CUDA GPU"], marks=pytest.mark.skipif(torch.cuda.is_available(), reason="has a GPU")),
    pytest.param("mps", ["no Apple GPU"],
                 marks=pytest.mark.skipif(torch.backends.mps.is_available(), reason="has MPS")),
])
def test_unknown_or_absent_devices(run_dir, tmp_path, capsys, device, words):
    before = snapshot(run_dir)
    refused(capsys, ["sample", run_dir, "--device", device, "--out", tmp_path / "s.png"], *words)
    refused(capsys, ["compare", run_dir, "--device", device, "--out", tmp_path / "r.html"], *words)
    refused(capsys, ["train", "vae", "--device", device, "--out", tmp_path / "new", "--no-progress"], *words)
    assert not (tmp_path / "new").exists() and not (tmp_path / "s.png").exists()
    assert snapshot(run_dir) == before


# -- counts, splits and output files ---------------------------------------------------------------------
@pytest.mark.parametrize("argv, words", [
    (["sample", "-n", "0"], ["-n must be an integer from 1 to 10,000", "got 0"]),
    (["sample", "-n", "-5"], ["-n must", "got -5"]),
    (["sample", "-n", str(10**9)], ["-n must", "10,000"]),
    (["interpolate", "--steps", "0"], ["--steps must be an integer from 2 to 100"]),
    (["interpolate", "--steps", "1"], ["--steps must", "got 1"]),
    (["interpolate", "--steps", "-3"], ["--steps must"]),
    (["interpolate", "--steps", str(10**6)], ["--steps must"]),
    (["interpolate", "--pairs", "0"], ["--pairs must be an integer from 1"]),
    (["interpolate", "--pairs", "-2"], ["--pairs must"]),
    (["interpolate", "--pairs", "1000", "--steps", "2"], ["--pairs 1000 needs 2000 test images", "or fewer"]),
    (["interpolate", "--pairs", str(10**9)], ["--pairs must"]),
    (["interpolate", "--mode", "cubic"], ["Unknown interpolation 'cubic'", "linear or slerp"]),
    (["reconstruct", "-n", "0"], ["-n must be an integer from 1 to 5,000"]),
    (["reconstruct", "-n", "-1"], ["-n must"]),
    (["reconstruct", "-n", str(10**9)], ["-n must"]),
    (["reconstruct", "--split", "val"], ["Unknown split 'val'", "train or test"]),
    (["encode", "--split", "val"], ["Unknown split 'val'"]),
    (["latent", "--split", "val"], ["Unknown split 'val'"]),
])
def test_bad_counts_and_splits(run_dir, capsys, argv, words):
    before = snapshot(run_dir)
    refused(capsys, [argv[0], run_dir, *argv[1:]], *words)
    assert snapshot(run_dir) == before


@pytest.mark.parametrize("command, suffix", [("sample", ".png"), ("reconstruct", ".png"), ("interpolate", ".png"),
                                             ("latent", ".png"), ("encode", ".npz")])
def test_out_must_be_a_file_of_the_commands_kind(run_dir, tmp_path, capsys, command, suffix):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "mine.txt").write_text("keep")
    (tmp_path / "a_file").write_text("keep")
    before = snapshot(run_dir, tmp_path)
    refused(capsys, [command, run_dir, "--out", folder], "is a folder", f"out{suffix}")
    refused(capsys, [command, run_dir, "--out", tmp_path / "picture.jpg"], f"must end in {suffix}", f"picture{suffix}")
    refused(capsys, [command, run_dir, "--out", tmp_path / "D"], f"must end in {suffix}", f"D{suffix}")
    refused(capsys, [command, run_dir, "--out", tmp_path / "a_file" / f"x{suffix}"], "is a file, not a folder")
    assert snapshot(run_dir, tmp_path) == before


def test_every_command_prints_the_file_it_wrote(run_dir, tmp_path, capsys):
    for argv in (["sample", "-n", "4", "--out", tmp_path / "s.png"], ["reconstruct", "--out", tmp_path / "r.png"],
                 ["interpolate", "--pairs", "2", "--steps", "3", "--out", tmp_path / "i.png"],
                 ["encode", "--out", tmp_path / "c.npz"], ["latent", "--out", tmp_path / "l.png"],
                 ["evaluate", "--importance-samples", "5", "--parzen-samples", "0", "--quality-samples", "0",
                  "--probe-train", "0"]):
        assert main([str(a) for a in [argv[0], run_dir, *argv[1:]]]) == 0
        wrote = capsys.readouterr().out.splitlines()[-1].removeprefix("wrote ")
        assert os.path.isfile(wrote), (argv[0], wrote)
    with np.load(tmp_path / "c.npz") as f:
        assert f["codes"].shape[1] == 2


def test_library_callers_get_the_same_sentences(run_dir, tmp_path):
    run = load_run(run_dir)
    with pytest.raises(GenmodelsError, match="-n must be an integer"):
        runs.sample(run, 0, tmp_path / "s.png")
    with pytest.raises(GenmodelsError, match="not a valid seed"):
        runs.draw_samples(run, 4, seed=-1)
    with pytest.raises(GenmodelsError, match="not a valid seed"):
        evaluate(run, seed=2**64)
    with pytest.raises(GenmodelsError, match="must end in .npz"):
        runs.encode(run, tmp_path / "codes")
    assert not list(tmp_path.iterdir())


def test_a_file_given_as_the_run(tmp_path, capsys):
    (tmp_path / "f.png").write_bytes(b"mine")
    refused(capsys, ["sample", tmp_path / "f.png"], "is a file, not a run directory")
    assert (tmp_path / "f.png").read_bytes() == b"mine"


# -- --config files that are not config files -------------------------------------------------------------
def _train_with_config(path, out):
    return ["train", "vae", "--epochs", "1", "--config", path, "--out", out, "--no-progress"]


def test_config_that_is_a_folder_too_large_or_not_a_table(tmp_path, capsys):
    (tmp_path / "huge.toml").write_bytes(b"# " + b"x" * (2 << 20) + b"\n")
    (tmp_path / "list.toml").write_text("model = [1, 2]\n")
    (tmp_path / "family.toml").write_text("family = 3\n")
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe[train]")
    before = snapshot(tmp_path)
    for name, words in [(".", ["is a folder, not a file"]), ("huge.toml", ["MiB", "over the 1 MiB"]),
                        ("list.toml", ["model = [1, 2]", "[model] table"]), ("family.toml", ["family = 3"]),
                        ("binary.toml", ["not UTF-8"])]:
        refused(capsys, _train_with_config(tmp_path / name, tmp_path / "run"), *words)
    assert snapshot(tmp_path) == before and not (tmp_path / "run").exists()


def test_config_that_cannot_be_read(tmp_path, capsys, monkeypatch):
    """chmod 0 stops a user; root, whom permissions do not stop (as in CI), gets the same refusal of the open."""
    path = tmp_path / "c.toml"
    path.write_text("[train]\nepochs = 1\n")
    path.chmod(0)
    if os.geteuid() == 0:
        real_open = os.open

        def denied(file, flags, *args, **kwargs):  # what the kernel answers a user for a chmod-0 file
            if Path(file) == path:
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", denied)
    try:
        refused(capsys, _train_with_config(path, tmp_path / "run"), "permission", "c.toml")
    finally:
        path.chmod(0o644)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # starts a subprocess
def test_config_that_is_a_fifo_does_not_hang(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    argv = map(str, _train_with_config(tmp_path / "fifo", tmp_path / "run"))
    env = {**os.environ, "PYTHONPATH": str(Path(genmodels.__file__).parents[1])}
    proc = subprocess.run([sys.executable, "-m", "genmodels", *argv], capture_output=True, text=True, timeout=120,
                          env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "pipe (FIFO), not a regular file" in proc.stderr


# -- hostile run configs (config.json as build_run_config reads it) ----------------------------------------
def _deep(levels: int) -> dict:
    top = node = {}
    for _ in range(levels):
        node["x"] = node = {}
    return top


@pytest.mark.parametrize("values, words", [
    ({"family": "vae", "model": [1, 2]}, ["model = [1, 2] is not an object"]),
    ({"family": "vae", "model": "abc"}, ["model = 'abc' is not an object"]),
    ({"family": "vae", "train": None}, ["train = None is not an object"]),
    ({"family": "vae", "data": "digits"}, ["data = 'digits'"]),
    ([1, 2], ["not an object of family"]),
    ({"family": "vae", "shape": [1, -8, 8]}, ["shape = [1, -8, 8]", "positive sides"]),
    ({"family": "vae", "shape": [1, 10**9, 10**9]}, ["shape", "at most 2**26 values"]),
    ({"family": "vae", "shape": [7, 8, 8]}, ["1 to 4 channels"]),
    ({"family": "vae", "model": {"arch": "x" * 10_000_000}}, ["model.arch = 'xxx"]),
    ({"family": "y" * 10_000_000}, ["unknown model family 'yyy"]),
    ({"family": "vae", "model": {"k" * 1_000_000: 1}}, ["model.kkk", "Extra inputs"]),
    ({"family": "vae", "train": {"seed": 10**5000}}, ["train.seed = <int too large to show>"]),
    ({"family": "vae", "model": _deep(100_000)}, ["model.x"]),
    ({"family": "vae", "train": {"epochs": _deep(100_000)}}, ["train.epochs"]),
])
def test_hostile_run_configs_give_one_short_sentence(values, words):
    with pytest.raises(GenmodelsError) as err:
        build_run_config(values, where="RUN/config.json")
    message = str(err.value)
    assert "\n" not in message and len(message) < 400, message[:500]
    assert message.startswith("Bad config in RUN/config.json: ")
    for word in words:
        assert word in message, (word, message)


# -- data of another shape than the run was trained on -----------------------------------------------------
def test_data_of_another_shape_is_named_with_both_shapes(run_dir, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    np.save(tmp_path / "big.npy", np.zeros((20, 16, 16), np.uint8))
    config = json.loads((run / "config.json").read_text())
    config["data"]["source"] = str(tmp_path / "big.npy")
    (run / "config.json").write_text(json.dumps(config))
    before = snapshot(run)
    for argv in (["reconstruct"], ["encode"], ["interpolate"], ["evaluate", "--importance-samples", "5"]):
        refused(capsys, [argv[0], run, *argv[1:]], "(1, 16, 16)", "(1, 8, 8)", "data.source")
    assert snapshot(run) == before
