"""A run directory is only ever cleared or written by what it holds: --overwrite (and the zoo) deletes only
what genmodels wrote, never a folder without the marker or through a symbolic link; run files that are not
what they claim (folders, FIFOs, devices, oversized or nested JSON) are refused unread. Each refusal: one
sentence, exit 2, no traceback, every file that existed before unchanged."""

import json
import os
import subprocess
import sys

import pytest

from conftest import TINY, cli, one_sentence, snapshot, tiny_vae_config
from genmodels import CheckpointError, train
from genmodels.errors import GenmodelsError
from genmodels.rundir import RunDir


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_a_folder_without_the_marker_is_never_cleared(tmp_path, capsys, overwrite):
    p = tmp_path / "P"
    (p / "images").mkdir(parents=True)
    (p / "config.json").write_text('{"app": 1}')
    (p / "images" / "cat.jpg").write_text("x")
    before = snapshot(p)
    assert cli("train", "vae", "--data", "digits", "--epochs", 1, "--out", p, *TINY, *overwrite) == 2
    one_sentence(capsys, "not a genmodels run directory", "choose an empty or new folder")
    assert snapshot(p) == before and sorted(os.listdir(p)) == ["config.json", "images"]


def test_overwrite_keeps_the_users_files_in_a_run(done, capsys):
    (done / "images" / "cat.jpg").write_text("mine")
    (done / "notes.txt").write_text("mine too")
    (done / "codes_test.npz").write_bytes(b"ours by name")
    old = (done / "model.safetensors").read_bytes()
    assert cli("train", "vae", "--data", "digits", "--epochs", 1, "--out", done, *TINY, "--overwrite") == 0
    assert (done / "images" / "cat.jpg").read_text() == "mine" and (done / "notes.txt").read_text() == "mine too"
    assert not (done / "codes_test.npz").exists()  # genmodels' own codes go with the run they came from
    assert (done / "model.safetensors").read_bytes() != old
    assert json.loads((done / "config.json").read_text())["model"]["hidden"] == [16]


def test_a_symlinked_images_folder_is_refused_before_anything_is_deleted(done, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "holiday.png").write_text("x")
    os.rename(done / "images", tmp_path / "old_images")
    os.symlink(elsewhere, done / "images")
    before = snapshot(done)
    assert cli("train", "vae", "--data", "digits", "--epochs", 1, "--out", done, *TINY, "--overwrite") == 2
    one_sentence(capsys, "images is a symbolic link")
    assert snapshot(done) == before and (elsewhere / "holiday.png").exists()


def test_the_zoo_never_clears_a_foreign_features_folder(tmp_path, digits):
    from genmodels.zoo import feature_network

    where = tmp_path / "Z" / "features"
    where.mkdir(parents=True)
    (where / "config.json").write_text('{"app": 1}')
    with pytest.raises(GenmodelsError, match="not a genmodels run directory"):
        feature_network(digits, where, log=lambda _: None)
    assert os.listdir(where) == ["config.json"] and (where / "config.json").read_text() == '{"app": 1}'


def test_a_kill_during_the_first_write_leaves_a_folder_train_can_use(tmp_path, capsys):
    p = tmp_path / "run"
    p.mkdir()
    (p / ".genmodels").write_text('{"genmodels": "run directory", "format": 1}\n')
    (p / ".config.json.tmp4242").write_text('{"fam')  # the process died inside atomic_write
    assert cli("train", "vae", "--data", "digits", "--epochs", 1, "--out", p, *TINY) == 0
    assert not (p / ".config.json.tmp4242").exists() and (p / "checkpoint.safetensors").exists()
    q = tmp_path / "before-marker"  # died writing the marker itself
    q.mkdir()
    (q / "..genmodels.tmp77").write_text("")
    assert cli("train", "vae", "--data", "digits", "--epochs", 1, "--out", q, *TINY) == 0
    assert not (q / "..genmodels.tmp77").exists() and (q / ".genmodels").exists()


def test_a_run_missing_its_config_is_not_cleared_without_overwrite(done, capsys):
    (done / "config.json").rename(done / "config.bak")
    before = snapshot(done)
    assert cli("train", "vae", "--data", "digits", "--epochs", 1, "--out", done, *TINY) == 2
    one_sentence(capsys, "already holds a run (model.safetensors)", "--overwrite (overwrite=True) to replace it")
    assert snapshot(done) == before


def test_overwrite_with_bad_data_leaves_the_run_alone(done, capsys):
    before = snapshot(done)
    assert cli("train", "vae", "--data", done / "typo.npy", "--epochs", 1, "--out", done, *TINY, "--overwrite") == 2
    one_sentence(capsys, "typo.npy")
    assert snapshot(done) == before


def test_a_symlinked_lock_file_is_never_written_through(done, tmp_path, capsys):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    (done / ".genmodels.lock").unlink()
    os.symlink(precious, done / ".genmodels.lock")
    assert cli("evaluate", done, "--parzen-samples", 0, "--quality-samples", 0, "--probe-train", 0) == 2
    one_sentence(capsys, ".genmodels.lock is a symbolic link")
    assert precious.read_text() == "keep me"


def test_compare_never_writes_over_a_run_file(done, capsys):
    before = snapshot(done)
    assert cli("compare", done, "--out", done / "config.json") == 2
    one_sentence(capsys, "must end in .html")
    assert snapshot(done) == before


def test_the_zoo_never_trains_its_features_over_another_run(done, digits):
    from genmodels.zoo import feature_network

    before = snapshot(done)
    with pytest.raises(GenmodelsError, match="holds a vae run, where the zoo keeps its feature network"):
        feature_network(digits, done, log=lambda _: None)
    assert snapshot(done) == before


def test_runs_from_before_the_marker_are_still_runs(done):
    (done / ".genmodels").unlink()
    assert RunDir(done).holds_run()
    assert cli("train", "vae", "--data", "digits", "--epochs", 1, "--out", done, *TINY, "--overwrite") == 0
    assert (done / ".genmodels").exists()


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


def test_overwrite_replaces_only_our_files(tmp_path, digits):
    run = tmp_path / "run"
    first = train(tiny_vae_config(train={"epochs": 1}), run, progress=False, data=digits)
    (run / "my_notes.txt").write_text("keep me")
    second = train(tiny_vae_config(train={"epochs": 2, "seed": 5}), run, overwrite=True, progress=False, data=digits)
    assert (run / "my_notes.txt").read_text() == "keep me"
    assert [r["epoch"] for r in second.history if r["split"] == "test"] == [1, 2]
    assert first.history[0] != second.history[0]  # a new run, not a continuation


# -- run files that are not what they claim ----------------------------------------------------------------------------


def test_resuming_with_fewer_epochs_changes_nothing(done, capsys):
    before = snapshot(done)
    assert cli("train", "vae", "--out", done, "--resume", "--epochs", 1, "--no-progress") == 2
    one_sentence(capsys, "has trained 2 epochs, so --epochs 1 would not extend it")
    assert snapshot(done) == before


@pytest.mark.parametrize("name", ["model.safetensors", "config.json"])
def test_a_run_file_replaced_by_a_folder(done, capsys, name):
    (done / name).unlink()
    (done / name).mkdir()
    assert cli("sample", done, "-n", 4) == 2
    one_sentence(capsys, f"{name} is a folder, not a file")


@pytest.mark.slow  # a subprocess per case
@pytest.mark.parametrize("name, kind", [("config.json", "fifo"), ("model.safetensors", "fifo"),
                                        ("model.safetensors", "zero"), ("metrics.jsonl", "zero")])
def test_pipes_and_devices_are_never_read(done, name, kind):
    (done / name).unlink()
    if kind == "fifo":
        os.mkfifo(done / name)
    else:
        os.symlink("/dev/zero", done / name)
    command = ["sample", str(done), "-n", "4"] if name != "metrics.jsonl" else [
        "train", "vae", "--out", str(done), "--resume", "--epochs", "3", "--no-progress"]
    r = subprocess.run([sys.executable, "-m", "genmodels", *command], capture_output=True, text=True, timeout=60)
    # A link to /dev/zero where a run file is written is refused as a link before anything reads it.
    said = "is a symbolic link; genmodels never writes through" if name == "metrics.jsonl" else "not a regular file"
    assert r.returncode == 2 and said in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_oversized_and_deeply_nested_config_json(done, capsys):
    config = done / "config.json"
    for text in ("[" * 200_000 + "]" * 200_000, '{"seed": ' + "9" * 5000 + "}"):  # too deep; too long for int()
        config.write_text(text)
        assert cli("sample", done, "-n", 4) == 2
        one_sentence(capsys, "config.json is not valid JSON")
    with open(config, "wb") as f:
        f.truncate(17 << 20)
    assert cli("sample", done, "-n", 4) == 2
    one_sentence(capsys, "over the 16 MiB such a file can hold")
