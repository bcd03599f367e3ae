"""Hostile run directories (issue 14): genmodels deletes only what it wrote, one writer per run directory,
every checkpoint entry checked before it reaches a kernel, a full disk or a torn log never blocks a resume,
a non-finite held-out loss stops training. Each case: one sentence, exit 2 (1 for a failed run), no
traceback, and every file that existed before is unchanged."""

import errno
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import tiny_vae_config
from genmodels import train
from genmodels.cli import main
from genmodels.errors import GenmodelsError, TrainingError
from genmodels.rundir import RunDir

TINY = ["--hidden", "16", "--latent-dim", "2", "--batch-size", "200", "--no-progress"]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` (symlinks not followed) and a hash of its bytes; the lock file, which names
    its present holder, by name only."""
    return {str(p.relative_to(folder)): "" if p.name == ".genmodels.lock" else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


def one_sentence(capsys, *words: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("genmodels: error: ") and "\n" not in err and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return err


def cli(*args: str) -> int:
    return main([str(a) for a in args])


@pytest.fixture
def done(tmp_path, digits):
    """A finished two-epoch VAE run."""
    out = tmp_path / "run"
    train(tiny_vae_config(), out, progress=False, data=digits)
    return out


# -- 1. --overwrite deletes only what genmodels wrote --------------------------------------------------------
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


# -- 2. a tampered checkpoint ---------------------------------------------------------------------------------
def _tamper(run: Path, change) -> None:
    from safetensors import safe_open

    path = run / "checkpoint.safetensors"
    with safe_open(path, "pt") as f:
        meta = f.metadata()
    tensors = load_file(path)
    change(tensors, meta)
    save_file(tensors, path, metadata=meta)


def test_a_wrong_sized_optimizer_state_never_reaches_the_fused_kernel(done):
    """Before, fused Adam wrote past a 1-element buffer: exit 139. A subprocess, so a crash fails the test."""
    _tamper(done, lambda t, m: t.__setitem__("optim.main.0.exp_avg", torch.zeros(1)))
    before = snapshot(done)
    r = subprocess.run([sys.executable, "-m", "genmodels", "train", "vae", "--out", str(done), "--resume",
                        "--epochs", "3", "--no-progress"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "does not fit this model's 'main' optimizer" in r.stderr and "Traceback" not in r.stderr
    assert snapshot(done) == before


def _drop(key):
    return lambda t, m: t.pop(key)


def _meta(key, value):
    return lambda t, m: m.__setitem__(key, value)


@pytest.mark.parametrize("change, words", [
    (_drop("optim.main.0.exp_avg_sq"), "missing or unexpected per-parameter entries"),
    (lambda t, m: t.__setitem__("optim.main.0.step", torch.zeros(3)), "step of parameter 0 has shape (3,)"),
    (lambda t, m: t.__setitem__("optim.main.0.exp_avg", t["optim.main.0.exp_avg"] * float("nan")), "not finite"),
    (lambda t, m: t.__setitem__("optim.main.99.exp_avg", torch.zeros(2)), "unexpected entry optim.main.99"),
    (lambda t, m: t.__setitem__("stray", torch.zeros(2)), "unexpected entry 'stray'"),
    (_meta("param_groups", "{}"), "no optimizer settings"),
    (_meta("param_groups", "[1, 2"), "no optimizer settings"),
    (lambda t, m: m.pop("param_groups"), "no optimizer settings"),
    (lambda t, m: m.__setitem__("param_groups", m["param_groups"].replace('"lr": ', '"lr": "x", "z": ')),
     "other parameter groups"),
    (_meta("state", '{"epoch": -1, "step": 3}'), "no valid training position"),
    (_meta("state", '{"epoch": 1}'), "no valid training position"),
    (_meta("state", "[" * 100_000), "no valid training position"),
    (lambda t, m: t.__setitem__("rng.torch", torch.zeros(3, dtype=torch.uint8)), "no valid torch random-number state"),
    (_drop("rng.data"), "no valid data random-number state"),
])
def test_every_checkpoint_entry_is_checked(done, capsys, change, words):
    _tamper(done, change)
    before = snapshot(done)
    assert cli("train", "vae", "--out", done, "--resume", "--epochs", 3, "--no-progress") == 2
    one_sentence(capsys, words)
    assert snapshot(done) == before


# -- 3. one writer per run directory --------------------------------------------------------------------------
def test_a_second_writer_is_refused_naming_the_first(done, capsys):
    with RunDir(done).lock("training"):
        before = snapshot(done)
        assert cli("train", "vae", "--out", done, "--resume", "--epochs", 3, "--no-progress") == 2
        one_sentence(capsys, "is in use by training (pid", "wait for it to finish")
        assert cli("evaluate", done, "--parzen-samples", 0, "--quality-samples", 0, "--probe-train", 0) == 2
        one_sentence(capsys, "is in use by training")
        assert snapshot(done) == before
    assert cli("train", "vae", "--out", done, "--resume", "--epochs", 3, "--no-progress") == 0  # released


def test_two_processes_and_one_folder(done, tmp_path):
    """The lock holds across processes: while one process holds it, a `train --overwrite` in another is
    refused naming the holder's pid, and changes nothing; once it is released the same command succeeds."""
    go = tmp_path / "go"
    holder = subprocess.Popen([sys.executable, "-c", f"""
import pathlib, time
from genmodels.rundir import RunDir
with RunDir({str(done)!r}).lock("training"):
    print("locked", flush=True)
    while not pathlib.Path({str(go)!r}).exists():
        time.sleep(0.02)
"""], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    before = snapshot(done)
    cmd = [sys.executable, "-m", "genmodels", "train", "vae", "--data", "digits", "--epochs", "1", "--out", str(done),
           "--overwrite", *TINY]
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    go.touch()
    assert holder.wait(timeout=60) == 0
    assert second.returncode == 2 and f"pid {holder.pid}" in second.stderr and "Traceback" not in second.stderr
    assert snapshot(done) == before
    assert subprocess.run(cmd, capture_output=True, timeout=120).returncode == 0


def test_many_commands_at_once(tmp_path, done):
    """4 trainings into 4 folders and 8 `sample` calls on one run, all at the same time: all succeed."""
    py = [sys.executable, "-m", "genmodels"]
    procs = [subprocess.Popen([*py, "train", "vae", "--data", "digits", "--epochs", "2", "--out", str(tmp_path / f"r{i}"),
                               "--seed", str(i), *TINY], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(4)]
    procs += [subprocess.Popen([*py, "sample", str(done), "-n", "16", "--seed", str(i)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(8)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read().decode()
    assert all((tmp_path / f"r{i}" / "model.safetensors").exists() for i in range(4))
    assert (done / "images" / "samples_n16.png").stat().st_size > 0
    assert not [p for p in done.rglob(".*.tmp*")]


# -- 4. a full disk, a torn log ---------------------------------------------------------------------------------
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


# -- 6. divergence on the held-out split ------------------------------------------------------------------------
def test_a_non_finite_test_loss_stops_training(tmp_path, capsys):
    """The issue's command: one step an epoch, so the training loss is logged before the step that ruins the
    weights, and only the held-out loss sees it. Before: exit 0 and NaN weights in the checkpoint."""
    out = tmp_path / "run"
    rc = cli("train", "vae", "--data", "digits", "--hidden", "16", "--latent-dim", "2", "--epochs", "3",
             "--batch-size", "2000", "--lr", "1e6", "--out", out, "--no-progress")
    assert rc == 1
    one_sentence(capsys, "The held-out loss term became nan by step 3", "the last good checkpoint (epoch 2) is kept")
    assert RunDir(out).trained_epochs() == 2
    assert all(torch.isfinite(w).all() for w in load_file(out / "model.safetensors").values())


def test_an_interrupt_after_divergence_keeps_the_last_good_checkpoint(tmp_path, digits, monkeypatch):
    """Weights that went non-finite between two logged steps are never saved by a Ctrl-C."""
    import signal

    from genmodels.models import VAE

    cfg = tiny_vae_config(train={"epochs": 3, "log_every": 1000})
    original = VAE.train_step
    calls = {"n": 0}

    def step(self, batch, ctx):
        calls["n"] += 1
        parts = original(self, batch, ctx)
        if calls["n"] == 30:  # in epoch 2 (23 steps an epoch), long before its logged step
            with torch.no_grad():
                next(self.parameters()).fill_(float("nan"))
            os.kill(os.getpid(), signal.SIGINT)
        return parts

    monkeypatch.setattr(VAE, "train_step", step)
    out = tmp_path / "run"
    with pytest.raises(TrainingError, match=r"SIGINT stopped training at step 30, but .* is no longer finite; "
                                            r"the last good checkpoint \(epoch 1\) is kept"):
        train(cfg, out, progress=False, data=digits)
    assert RunDir(out).trained_epochs() == 1
    assert all(torch.isfinite(w).all() for w in load_file(out / "checkpoint.safetensors").values())


def test_held_out_nan_is_caught_before_the_checkpoint(tmp_path, digits, monkeypatch):
    import genmodels.training as training

    real = training.evaluate_parts
    calls = {"n": 0}

    def second_epoch_nan(*a, **k):
        calls["n"] += 1
        parts = real(*a, **k)
        return {**parts, "loss": float("nan")} if calls["n"] == 2 else parts

    monkeypatch.setattr(training, "evaluate_parts", second_epoch_nan)
    out = tmp_path / "run"
    with pytest.raises(TrainingError, match=r"held-out loss term became nan .* \(epoch 1\) is kept"):
        train(tiny_vae_config(train={"epochs": 3}), out, progress=False, data=digits)
    assert RunDir(out).trained_epochs() == 1
    assert [r["epoch"] for r in RunDir(out).read_history() if r["split"] == "test"] == [1]


# -- the rest: run files that are not what they claim ----------------------------------------------------------
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
    assert r.returncode == 2 and "not a regular file" in r.stderr and "Traceback" not in r.stderr, r.stderr


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
