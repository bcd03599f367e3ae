"""Each epoch's files are written by a background thread (progress.Writer) while the next epoch trains: the
checkpoint holds the epoch's end, not the weights the next epoch has changed since; the files are written in the
order submitted, and a failed write stops the writer, surfaces in the training thread as the usual one sentence
naming its epoch, and leaves the previous checkpoint."""

import errno
import math
import os
import threading
from pathlib import Path

import pytest
import torch

from conftest import cli, one_sentence, tiny_vae_config
from genmodels import train
from genmodels.checkpoint import read_safetensors
from genmodels.fileio import FileError
from genmodels.models import VAE
from genmodels.rundir import RunDir


def test_the_writer_writes_in_order_and_raises_the_first_failure_in_the_callers_thread():
    from genmodels.progress import Writer

    writer, done, threads = Writer(), [], set()

    def write(name):
        threads.add(threading.current_thread())
        if name == "bad":
            raise FileError("The disk is full.")
        done.append(name)

    for writer.epoch, name in enumerate(["a", "b", "bad", "after"]):
        writer.submit(write, name)
    with pytest.raises(FileError, match="The disk is full"):
        writer.wait()
    writer.close()
    assert done == ["a", "b"]  # in order; nothing after the failed write
    assert writer.failed_epoch == 2 and threading.current_thread() not in threads


def test_the_checkpoint_holds_the_epochs_end_while_the_next_epoch_trains(digits, tmp_path, monkeypatch):
    """The epoch-1 checkpoint is written only after three steps of epoch 2 have changed the weights (the write is
    held until then); it holds the weights as epoch 1 left them."""
    per_epoch = math.ceil(len(digits.train) / 64)
    steps, ended, epoch2_ran, saved = {"n": 0}, {}, threading.Event(), {}
    original_step, original_save = VAE.train_step, RunDir.save

    def step(self, batch, ctx):
        steps["n"] += 1
        if steps["n"] == per_epoch + 1:  # the first step of epoch 2: the weights as epoch 1 left them
            ended.update({k: v.clone() for k, v in self.state_dict().items()})
        if steps["n"] == per_epoch + 4:
            epoch2_ran.set()
        return original_step(self, batch, ctx)

    def save(self, *args):
        if not saved:  # epoch 1's checkpoint: written only once epoch 2 has trained (30 s at most)
            saved["overlapped"] = epoch2_ran.wait(timeout=30)
            original_save(self, *args)
            saved["tensors"] = read_safetensors(self.checkpoint)[0]
            return
        original_save(self, *args)

    monkeypatch.setattr(VAE, "train_step", step)
    monkeypatch.setattr(RunDir, "save", save)
    result = train(tiny_vae_config(), tmp_path / "run", progress=False, data=digits)
    assert saved["overlapped"]  # epoch 2 trained while epoch 1's checkpoint was being written
    assert ended and all(torch.equal(saved["tensors"][f"model.{k}"], v) for k, v in ended.items())
    assert not torch.equal(result.model.state_dict()["mu_head.weight"], ended["mu_head.weight"])  # they moved on


def test_a_failed_picture_write_stops_the_writer_before_that_epochs_checkpoint(tmp_path, monkeypatch, capsys):
    """A full disk at epoch 2's sample grid (written in the background while epoch 3 trains): one sentence naming
    epoch 2, epoch 2's checkpoint never written after it, epoch 1's kept."""
    out, writes = tmp_path / "run", {"n": 0}
    real_fsync = os.fsync

    def fsync(fd):
        if ".samples.png.tmp" in os.readlink(f"/proc/self/fd/{fd}"):
            writes["n"] += 1
            if writes["n"] == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr("genmodels.fileio.os.fsync", fsync)
    rc = cli("train", "vae", "--data", "digits", "--epochs", 3, "--out", out, "--hidden", 16, "--latent-dim", 2,
             "--no-progress")
    assert rc == 1
    one_sentence(capsys, "Training stopped in epoch 2 because the disk is full", "(epoch 1) is kept")
    assert RunDir(out).trained_epochs() == 1 and not list(out.rglob(".*.tmp*"))


def test_the_benchmark_prints_the_whole_calls_share_of_its_own_steps(monkeypatch):
    """benchmarks/vae_throughput.py: each whole-call line is the steps' seconds over the whole call's, of one call."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import vae_throughput

    best = {"floor": 1.0, "floor-bf16": 0.5, "genmodels": 2.0, "genmodels-bf16": 1.6}
    whole = {"genmodels": {"epoch": 2.0, "total": 2.5}, "genmodels-bf16": {"epoch": 1.6, "total": 1.8}}
    lines = vae_throughput.ratio_lines(best, whole)
    assert "genmodels whole call / training steps: 0.80" in lines
    assert "genmodels bf16 whole call / training steps: 0.89" in lines
    assert "genmodels fp32 / pythae: n/a (--no-pythae)" in lines
