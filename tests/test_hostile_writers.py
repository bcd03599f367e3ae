"""Where genmodels writes, whoever asks: never through a symbolic link (a linked images/ or run file is refused
before anything is trained or written, on --resume as on --overwrite, and by every later command); a path the
file system cannot name, a run of a newer format, --resume with --overwrite: one sentence each; and a run stopped
before its first checkpoint (a full disk in epoch 1) is told a command that works, which works."""

import errno
import json
import os
import re

import pytest
from safetensors.torch import load_file

from conftest import TINY, cli, one_sentence, snapshot, tiny_vae_config
from genmodels import ConfigError, train
from genmodels.fileio import FileError, atomic_write
from genmodels.rundir import RunDir

NO_EVAL = ["--parzen-samples", 0, "--quality-samples", 0, "--probe-train", 0]


def _victim(tmp_path, name="samples.png"):
    """A folder of the user's, holding one file of theirs named like one of genmodels'."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / name).write_text("mine")
    return victim


# -- no write goes through a link --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["images", "loss.png", "metrics.jsonl"])
def test_resume_refuses_a_linked_run_file_before_it_trains(done, tmp_path, capsys, name):
    victim = _victim(tmp_path, "samples.png" if name == "images" else name)
    os.rename(done / name, tmp_path / "moved")
    os.symlink(victim if name == "images" else victim / name, done / name)
    before = snapshot(done)
    assert cli("train", "vae", "--out", done, "--resume", "--epochs", 3, "--no-progress") == 2
    one_sentence(capsys, f"{name} is a symbolic link", "remove the link")
    assert snapshot(done) == before and RunDir(done).trained_epochs() == 2  # refused before an epoch was trained
    assert [p.read_text() for p in victim.iterdir()] == ["mine"]


@pytest.mark.parametrize("command, name", [
    (["sample", "-n", 4], "images"), (["reconstruct", "-n", 4], "images"), (["latent"], "images"),
    (["encode"], "codes_test.npz"), (["evaluate", *NO_EVAL], "eval.json"),
])
def test_every_command_refuses_to_write_through_a_link(done, tmp_path, capsys, command, name):
    victim = _victim(tmp_path, name if name != "images" else "samples_n4.png")
    for picture in ("reconstructions.png", "latent.png"):
        (victim / picture).write_text("mine")
    if (done / name).exists():
        os.rename(done / name, tmp_path / "moved")
    os.symlink(victim if name == "images" else victim / name, done / name)
    assert cli(command[0], done, *command[1:]) == 2
    one_sentence(capsys, "is a symbolic link")
    assert all(p.read_text() == "mine" for p in victim.iterdir()) and (done / name).is_symlink()


def test_atomic_write_never_writes_through_or_replaces_a_link(tmp_path):
    run = tmp_path / "run"
    (run / "images").mkdir(parents=True)
    atomic_write(run / ".genmodels", b'{"genmodels": "run directory", "format": 1}\n')
    victim = _victim(tmp_path, "x.png")
    (run / "loss.png").symlink_to(victim / "x.png")
    tmp_link = run / f".config.json.tmp{os.getpid()}"  # a link where the temporary file goes
    tmp_link.symlink_to(victim / "x.png")
    linked = run / "linked"
    linked.symlink_to(victim)
    for target in (run / "loss.png", run / "config.json", linked / "x.png"):
        with pytest.raises(FileError, match="symbolic link"):
            atomic_write(target, b"new")
    assert (victim / "x.png").read_text() == "mine" and tmp_link.is_symlink() and (run / "loss.png").is_symlink()
    os.mkfifo(run / "eval.json")
    with pytest.raises(FileError, match=r"eval.json is a pipe \(FIFO\), not a regular file"):
        atomic_write(run / "eval.json", b"{}")
    # A run directory that is itself a link, or a linked folder outside any run, is the user's choice of place.
    (tmp_path / "alias").symlink_to(run)
    (tmp_path / "elsewhere").symlink_to(victim)
    atomic_write(tmp_path / "alias" / "images" / "a.png", b"ok")
    atomic_write(tmp_path / "elsewhere" / "y.png", b"ok")
    assert (run / "images" / "a.png").read_bytes() == b"ok" and (victim / "y.png").read_bytes() == b"ok"


# -- a path the file system cannot name --------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["long name", "deep path"])
@pytest.mark.parametrize("command", [
    ["train", "vae", "--data", "digits", "--epochs", 1, *TINY, "--out", "{p}"], ["sample", "{p}"],
    ["evaluate", "{p}"], ["compare", "{p}"], ["zoo", "--out", "{p}"], ["features", "train", "--out", "{p}"],
    ["train", "vae", "--data", "{p}", "--out", "{p}.run"], ["zoo", "--data", "{p}", "--out", "{p}.zoo"],
    ["data", "convert", "digits", "--out", "{p}"],
])
def test_a_path_too_long_for_the_file_system_is_one_sentence(tmp_path, capsys, where, command):
    path = tmp_path / ("a" * 300 if where == "long name" else "/".join(["d" * 200] * 25))
    assert cli(*[str(part).replace("{p}", str(path)) for part in command]) == 2
    one_sentence(capsys, "is too long for the file system", "choose a shorter path")
    assert os.listdir(tmp_path) == []


def test_an_output_file_too_long_is_one_sentence(done, capsys):
    assert cli("sample", done, "-n", 4, "--out", done / ("a" * 300 + ".png")) == 2
    one_sentence(capsys, "too long for the file system", "choose a shorter path")
    folder = done.parent / "/".join(["d" * 200] * 20)  # its run files would pass the longest path
    assert len(os.fsencode(folder)) < 4096
    assert cli("train", "vae", "--data", "digits", "--epochs", 1, *TINY, "--out", folder) == 2
    one_sentence(capsys, "the paths of the files in it would pass the 4,095 a path may have")
    assert not (done.parent / ("d" * 200)).exists()


# -- a run of a newer format -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["config.json", ".genmodels"])
@pytest.mark.parametrize("command", [
    ["train", "vae", "--out", "{p}", "--resume", "--epochs", 3, "--no-progress"], ["sample", "{p}", "-n", 4],
    ["evaluate", "{p}", *NO_EVAL], ["reconstruct", "{p}"], ["compare", "{p}", "--out", "{p}/../r.html"],
])
def test_a_run_of_a_newer_format_is_refused_naming_both(done, capsys, where, command):
    file = done / where
    file.write_text(re.sub(r'("version": "1"|"format": 1)', lambda m: m[0].replace("1", "99"), file.read_text()))
    before = snapshot(done)
    assert cli(*[str(done) if part == "{p}" else str(part).replace("{p}", str(done)) for part in command]) == 2
    one_sentence(capsys, f"{where} says the run was written by a newer genmodels", "format '99'"
                 if where == "config.json" else "format 99", "this genmodels reads format 1")
    assert snapshot(done) == before and not (done.parent / "r.html").exists()


def test_overwrite_never_clears_a_run_of_a_newer_format(done, capsys):
    (done / ".genmodels").write_text('{"genmodels": "run directory", "format": 2}\n')
    before = snapshot(done)
    assert cli("train", "vae", "--data", "digits", "--epochs", 1, *TINY, "--out", done, "--overwrite") == 2
    one_sentence(capsys, "format 2, but this genmodels reads format 1", "another folder")
    assert snapshot(done) == before


# -- --resume with --overwrite -----------------------------------------------------------------------------------------


def test_resume_and_overwrite_together_are_refused(done, tmp_path, capsys, digits):
    before = snapshot(done)
    assert cli("train", "vae", "--data", "digits", *TINY, "--out", done, "--resume", "--overwrite") == 2
    one_sentence(capsys, "--resume (resume=True)", "--overwrite (overwrite=True)", "cannot be given together")
    with pytest.raises(ConfigError, match="cannot be given together"):
        train(tiny_vae_config(), done, resume=True, overwrite=True, progress=False, data=digits)
    with pytest.raises(ConfigError, match="cannot be given together"):
        RunDir(done).prepare(resume=True, overwrite=True)
    assert snapshot(done) == before


# -- what a run stopped before its first checkpoint is told, and that it works -----------------------------------------


def _full_disk_at(monkeypatch, name: str):
    """fsync fails for ENOSPC on the first write of `name` (its temporary file)."""
    real_fsync = os.fsync

    def fsync(fd):
        if f".{name}.tmp" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr("genmodels.fileio.os.fsync", fsync)


@pytest.mark.parametrize("name", ["samples.png", "checkpoint.safetensors"])
def test_a_full_disk_in_the_first_epoch_gives_a_command_that_works(tmp_path, capsys, monkeypatch, name):
    out, args = tmp_path / "run", ["--data", "digits", "--epochs", 2, *TINY]
    with monkeypatch.context() as m:
        _full_disk_at(m, name)
        assert cli("train", "vae", *args, "--out", out) == 1
    err = one_sentence(capsys, "Training stopped in epoch 1 because the disk is full", "nothing was saved yet")
    command = re.search(r"`genmodels (train [^`]+)`", err)[1].split()
    assert command == ["train", "vae", "--out", str(out), "--resume"]
    assert cli("train", "vae", *args, "--out", out) == 2  # training afresh names both ways on
    one_sentence(capsys, "stopped before its first checkpoint", "pass --resume", "--overwrite")
    assert cli(*command, "--no-progress") == 0
    assert "stopped before its first checkpoint, so it trains again from the start" in capsys.readouterr().err
    assert RunDir(out).trained_epochs() == 2
    assert [r["epoch"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
            if r["split"] == "test"] == [1, 2]  # the lost epoch's records are gone with it
    assert cli("train", "vae", *args, "--out", tmp_path / "whole") == 0  # the same run, never stopped
    ours, whole = load_file(out / "model.safetensors"), load_file(tmp_path / "whole" / "model.safetensors")
    assert ours.keys() == whole.keys() and all((ours[k] == whole[k]).all() for k in ours)


def test_resume_without_a_checkpoint_says_what_works(done, tmp_path, capsys):
    (done / "checkpoint.safetensors").unlink()  # weights, but nothing to continue from: never trained over
    before = snapshot(done)
    assert cli("train", "vae", "--out", done, "--resume", "--no-progress") == 2
    one_sentence(capsys, "Nothing to resume", "it has model.safetensors but no checkpoint.safetensors to continue from",
                 "--overwrite")
    assert snapshot(done) == before
    assert cli("train", "vae", "--data", "digits", "--epochs", 1, *TINY, "--out", done) == 2
    one_sentence(capsys, "has no checkpoint to resume; pass --overwrite")
    assert cli("train", "vae", "--data", "digits", "--epochs", 1, *TINY, "--out", done, "--overwrite") == 0
    capsys.readouterr()
    empty = tmp_path / "empty"
    assert cli("train", "vae", "--out", empty, "--resume", "--no-progress") == 2
    one_sentence(capsys, "Nothing to resume", "it holds no run; train one there without --resume")
    assert cli("train", "vae", "--data", "digits", "--epochs", 1, *TINY, "--out", empty) == 0
