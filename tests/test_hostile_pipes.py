"""A closed pipe on stdout (`genmodels train ... | head -1`): training goes on to its last epoch and saves,
printing nothing more; every command exits without a traceback (issue 27, case 7)."""

import contextlib
import io
import os
import subprocess
import sys

import pytest
from tqdm.auto import tqdm

from conftest import TINY
from genmodels.progress import Records, say
from genmodels.rundir import RunDir

EPOCHS = 4


def _genmodels(*args: str, unbuffered: bool = False) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    return subprocess.Popen([sys.executable, "-m", "genmodels", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def _finish(proc: subprocess.Popen) -> str:
    """Wait for `proc`, whose stdout is closed; its stderr."""
    err = proc.stderr.read().decode()
    proc.wait(timeout=300)
    return err


@pytest.mark.slow  # starts a subprocess
def test_training_outlives_a_reader_that_closes_the_pipe_after_one_line(tmp_path):
    """As `| head -1`: one epoch line read, the read end closed; the later epochs' lines meet a broken pipe."""
    out = tmp_path / "run"
    proc = _genmodels("train", "vae", "--data", "digits", *TINY, "--epochs", str(EPOCHS), "--out", str(out))
    first = proc.stdout.readline().decode()
    proc.stdout.close()
    err = _finish(proc)
    assert first.startswith(f"epoch 1/{EPOCHS}")
    assert "Traceback" not in err and "BrokenPipeError" not in err and "Exception ignored" not in err, err
    assert RunDir(out).trained_epochs() == EPOCHS  # every epoch trained and checkpointed
    assert (out / "model.safetensors").is_file() and (out / "loss.png").is_file()
    assert proc.returncode == 0, err


@pytest.mark.slow  # starts subprocesses
@pytest.mark.parametrize("command", [["evaluate", "--importance-samples", "5", "--probe-train", "0",
                                      "--parzen-samples", "0", "--quality-samples", "0", "--no-progress"],
                                     ["sample", "-n", "4"], ["encode"]])
def test_a_command_whose_reader_has_gone_exits_quietly(done, command):
    """The read end closed before the command writes anything: no traceback, no "Exception ignored" at exit,
    and the exit status of a command whose output was lost (1)."""
    proc = _genmodels(command[0], str(done), *command[1:], unbuffered=True)
    proc.stdout.close()
    err = _finish(proc)
    assert "Traceback" not in err and "BrokenPipeError" not in err and "Exception ignored" not in err, err
    assert err == "" and proc.returncode == 1, err


def _closed_pipe(monkeypatch):
    """sys.stdout on a pipe whose read end is closed."""
    read, write = os.pipe()
    os.close(read)
    stdout = os.fdopen(write, "w")
    monkeypatch.setattr(sys, "stdout", stdout)
    return stdout


def test_the_zoos_lines_go_quiet_on_a_closed_pipe(monkeypatch):
    stdout = _closed_pipe(monkeypatch)
    try:
        for _ in range(2):
            say("[1/8] gan (gan)")  # the zoo's log: no BrokenPipeError to stop the zoo
        print("after", flush=True)
    finally:
        stdout.close()


@pytest.mark.parametrize("lines", [True, False], ids=["lines", "under-a-bar"])
def test_the_epoch_line_printer_goes_quiet_on_a_closed_pipe(monkeypatch, lines):
    """In-process, both ways training prints its lines (a line per epoch, or tqdm.write under a bar): the first
    write to a pipe without a reader switches the lines off and points stdout at the null device, so that neither
    the next epoch nor the flush at exit fails."""
    stdout = _closed_pipe(monkeypatch)
    bar = tqdm(total=4, disable=False, file=io.StringIO())  # drawn elsewhere, as on a terminal's stderr
    records = Records([], None, bar, lines=lines)
    try:
        for _ in range(2):  # the last epoch's line: printed in both modes
            records.epoch_line(1, 2, {"loss": 1.0}, 0.1)
        assert records.stdout is False
        print("after", flush=True)  # stdout's descriptor is the null device now
    finally:
        bar.close()
        stdout.close()


def test_a_warning_to_a_closed_stderr_does_not_stop_the_command():
    """`genmodels train ... 2>&1 | head -1`: a warning in a later epoch (a collapse, say) meets the closed pipe."""
    from genmodels.cli import _show_warning

    read, write = os.pipe()
    os.close(read)
    # Line-buffered, as sys.stderr is, so the line reaches the pipe at once.
    stderr = os.fdopen(write, "w", buffering=1, closefd=False)
    try:
        _show_warning("the samples' diversity fell", UserWarning, "x.py", 1, file=stderr)
    finally:
        with contextlib.suppress(BrokenPipeError):  # the dropped line may still sit in the buffer
            stderr.close()
        os.close(write)
