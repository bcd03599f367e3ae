"""Writes that fail: a full disk stops training with the last checkpoint kept, a torn last line of
metrics.jsonl never blocks a resume, and evaluate shows its results when eval.json cannot be written."""

import errno
import json
import os

import pytest

from conftest import TINY, cli, one_sentence, tiny_vae_config
from genmodels import train
from genmodels.rundir import RunDir


def test_a_torn_metrics_line_is_dropped_on_resume(done, capsys):
    log = done / "metrics.jsonl"
    whole = log.read_text().splitlines()
    os.truncate(log, 400)
    with pytest.warns(RuntimeWarning, match="1 damaged line"):
        result = train(tiny_vae_config(train={"epochs": 3}), done, resume=True, progress=False)
    kept = [json.loads(line) for line in whole if len("\n".join(whole[: whole.index(line) + 1])) < 400]
    assert result.history[: len(kept)] == kept and result.history[-1]["epoch"] == 3
    assert all(json.loads(line) for line in log.read_text().splitlines())  # the torn line is gone


def test_a_full_disk_stops_training_with_the_last_checkpoint_kept(tmp_path, digits, monkeypatch, capsys):
    out = tmp_path / "run"
    writes = {"n": 0}
    real_fsync = os.fsync

    def fsync(fd):
        name = os.readlink(f"/proc/self/fd/{fd}")
        if ".checkpoint.safetensors.tmp" in name:
            writes["n"] += 1
            if writes["n"] == 2:  # the second epoch's checkpoint
                raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr("genmodels.fileio.os.fsync", fsync)
    rc = cli("train", "vae", "--data", "digits", "--epochs", 3, "--out", out, *TINY)
    assert rc == 1
    one_sentence(capsys, "Training stopped in epoch 2 because the disk is full", "(epoch 1) is kept",
                 f"genmodels train vae --out {out} --resume")
    assert not list(out.glob(".*.tmp*"))
    monkeypatch.undo()
    assert RunDir(out).trained_epochs() == 1
    assert cli("train", "vae", "--out", out, "--resume", "--no-progress") == 0
    assert RunDir(out).trained_epochs() == 3


def test_a_failed_write_of_eval_json_still_shows_the_results(done, monkeypatch, capsys):
    real_replace = os.replace

    def replace(src, dst):
        if str(dst).endswith("eval.json"):
            raise PermissionError(errno.EACCES, "Permission denied")
        real_replace(src, dst)

    monkeypatch.setattr("genmodels.fileio.os.replace", replace)
    assert cli("evaluate", done, "--parzen-samples", 0, "--quality-samples", 0, "--probe-train", 0) == 2
    captured = capsys.readouterr()
    assert "elbo" in captured.out and "Could not write" in captured.err and "permission is denied" in captured.err
    assert not (done / "eval.json").exists() and not list(done.glob(".eval.json.tmp*"))
