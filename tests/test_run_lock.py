"""One writer per run directory: a second training or evaluation is refused naming the holder, in this process
or another, and changes nothing; commands on different folders, and readers of one run, run at once."""

import subprocess
import sys

import pytest

from conftest import TINY, cli, one_sentence, snapshot
from genmodels.rundir import RunDir


def test_a_second_writer_is_refused_naming_the_first(done, capsys):
    with RunDir(done).lock("training"):
        before = snapshot(done)
        assert cli("train", "vae", "--out", done, "--resume", "--epochs", 3, "--no-progress") == 2
        one_sentence(capsys, "is in use by training (pid", "wait for it to finish")
        assert cli("evaluate", done, "--parzen-samples", 0, "--quality-samples", 0, "--probe-train", 0) == 2
        one_sentence(capsys, "is in use by training")
        assert snapshot(done) == before
    assert cli("train", "vae", "--out", done, "--resume", "--epochs", 3, "--no-progress") == 0  # released


@pytest.mark.slow  # subprocesses
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


@pytest.mark.slow  # 12 subprocesses
def test_many_commands_at_once(tmp_path, done):
    """4 trainings into 4 folders and 8 `sample` calls on one run, all at the same time: all succeed."""
    py = [sys.executable, "-m", "genmodels"]
    procs = [subprocess.Popen([*py, "train", "vae", "--data", "digits", "--epochs", "2",
                               "--out", str(tmp_path / f"r{i}"), "--seed", str(i), *TINY],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(4)]
    procs += [subprocess.Popen([*py, "sample", str(done), "-n", "16", "--seed", str(i)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(8)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read().decode()
    assert all((tmp_path / f"r{i}" / "model.safetensors").exists() for i in range(4))
    assert (done / "images" / "samples_n16.png").stat().st_size > 0
    assert not [p for p in done.rglob(".*.tmp*")]
