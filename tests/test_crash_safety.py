"""Nothing lost on a crash: SIGINT/SIGTERM save the position inside the epoch (in the first epoch or a later
one), a second Ctrl-C stops at once, SIGKILL between any run file's temporary write and its rename leaves the
last complete checkpoint and a temporary file the next training removes, and resuming ends with the weights
and test metrics of an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import tiny_vae_config
from genmodels import build_run_config, load_run, train
from genmodels.checkpoint import read_safetensors
from genmodels.cli import main
from genmodels.errors import TrainingInterrupted
from genmodels.models import VAE
from genmodels.rundir import RunDir


def _assert_same_weights(a, b):
    for (k, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), k


@pytest.fixture
def own_handlers():
    """Handlers of this test's own for SIGINT and SIGTERM while it runs, so it can check that training puts back
    exactly the ones it found, however the suite was started (a background shell starts it with SIGINT ignored,
    a terminal with Python's default_int_handler); the ones found are restored afterwards."""
    def found_before(signum, frame):  # never called: the signals arrive while the engine's handlers are in place
        raise AssertionError(f"signal {signum} reached the handler in place before training")

    before = {sig: signal.signal(sig, found_before) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield found_before
    for sig, handler in before.items():
        signal.signal(sig, handler)


def _handlers_put_back(handler) -> bool:
    return signal.getsignal(signal.SIGINT) is handler and signal.getsignal(signal.SIGTERM) is handler


def _signal_at_step(monkeypatch, cls, n, sig):
    """Make the n-th training step of model class `cls` send `sig` to this process."""
    calls = {"n": 0}
    original = cls.train_step

    def step(self, x, ctx):
        calls["n"] += 1
        if calls["n"] == n:
            os.kill(os.getpid(), sig)
        return original(self, x, ctx)

    monkeypatch.setattr(cls, "train_step", step)


@pytest.mark.parametrize("sig, step", [(signal.SIGTERM, 31), (signal.SIGINT, 7)])
def test_signal_saves_mid_epoch_and_resume_equals_uninterrupted(digits, tmp_path, monkeypatch, own_handlers, sig,
                                                                step):
    # binarize draws noise every step, so the RNG state saved mid-epoch matters too.
    cfg = tiny_vae_config(model={"binarize": True}, train={"epochs": 3, "batch_size": 32})
    full = train(cfg, tmp_path / "full", progress=False, data=digits)
    with monkeypatch.context() as m:
        _signal_at_step(m, VAE, step, sig)
        with pytest.raises(TrainingInterrupted, match=rf"{sig.name} stopped training at step {step} .*--resume"):
            train(cfg, tmp_path / "cut", progress=False, data=digits)
    assert _handlers_put_back(own_handlers)  # the handlers training found, not Python's defaults
    state = json.loads(read_safetensors(tmp_path / "cut" / "checkpoint.safetensors")[1]["state"])
    assert state["step"] == step and 0 < state["batch"]  # inside an epoch, not at its end
    resumed = train(cfg, tmp_path / "cut", resume=True, progress=False, data=digits)
    _assert_same_weights(full.model, resumed.model)
    tests = lambda h: [r for r in h if r["split"] == "test"]  # noqa: E731
    assert tests(resumed.history) == tests(full.history)


def test_interrupted_pca_keeps_what_it_had_and_says_so(digits, tmp_path, monkeypatch):
    from genmodels.models import PCA

    _signal_at_step(monkeypatch, PCA, 2, signal.SIGTERM)
    cfg = build_run_config({"family": "pca", "model": {"latent_dim": 4}, "train": {"batch_size": 100}})
    with pytest.raises(TrainingInterrupted, match="nothing was saved yet.*repeats that epoch"):
        train(cfg, tmp_path / "pca", progress=False, data=digits)


def test_cli_exits_130_with_the_resume_command(tmp_path, monkeypatch, capsys):
    _signal_at_step(monkeypatch, VAE, 3, signal.SIGINT)
    out = tmp_path / "run"
    rc = main(["train", "vae", "--data", "digits", "--hidden", "16", "--latent-dim", "2", "--epochs", "1",
               "--out", str(out), "--no-progress"])
    assert rc == 130
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"genmodels train vae --out {out} --resume" in err


# A VAE draws noise every step, so the RNG states a checkpoint keeps matter to an exact resume too.
ARGS = ["train", "vae", "--data", "digits", "--hidden", "16", "--latent-dim", "2", "--batch-size", "64",
        "--epochs", "3", "--threads", "1", "--log-every", "10", "--no-progress"]
TINY_EVAL = {"importance_samples": 5, "probe_train": 200, "parzen_samples": 200, "quality_samples": 0}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """ARGS trained without a stop, and its test metrics: (run, eval results)."""
    from genmodels.evaluation import evaluate

    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    assert main([*ARGS, "--out", str(out)]) == 0
    return out, evaluate(load_run(out), **TINY_EVAL)


def _test_records(run) -> list[dict]:
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["split"] == "test"]


@pytest.mark.slow  # starts a subprocess
@pytest.mark.parametrize("name, write, trained", [
    (".genmodels", 1, None),  # the marker, the very first file
    ("config.json", 1, None),
    ("samples.png", 2, 1),  # the epoch's picture
    ("loss.png", 1, 2),  # the curves, drawn at the last epoch
    ("model.safetensors", 3, 2),  # the last epoch's weights: the checkpoint is written after them
    ("checkpoint.safetensors", 3, 2),
])
def test_sigkill_between_a_files_write_and_its_rename_then_resume_equals_uninterrupted(
        uninterrupted, tmp_path, name, write, trained):
    """The process kills itself (SIGKILL: no handler runs) in its `write`-th atomic write of `name`, after the
    temporary file is complete and before the rename (fileio.KILL_BEFORE_RENAME, a test-only hook). The previous
    complete files stay; the temporary file is left, then removed by the next training; the run, resumed (or
    trained again where it had no checkpoint yet), ends with the weights and test metrics of an uninterrupted one."""
    from genmodels.evaluation import evaluate
    from genmodels.fileio import KILL_BEFORE_RENAME

    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), KILL_BEFORE_RENAME: f"{name}:{write}"}
    proc = subprocess.Popen([sys.executable, "-m", "genmodels", *ARGS, "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    folder = out / "images" if name.endswith("samples.png") else out
    assert (folder / f".{name}.tmp{proc.pid}").is_file()  # killed with the temporary file written, not renamed
    if trained is None:  # its first write: there was no previous file to keep
        assert not (folder / name).exists()
    assert RunDir(out).trained_epochs() == trained  # the last complete checkpoint stands
    resume = [] if trained is None else ["--resume"]
    assert main([*ARGS, "--out", str(out), *resume]) == 0
    assert not [p.name for p in out.rglob(".*.tmp*")]  # the leftover temporary file is gone
    full, full_eval = uninterrupted
    _assert_same_weights(load_run(full).model, load_run(out).model)
    assert _test_records(out) == _test_records(full)
    assert evaluate(load_run(out), **TINY_EVAL) == full_eval
    assert (out / "loss.png").is_file() and (out / "images" / "samples.png").is_file()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_in_a_later_epoch_saves_there_and_resume_equals_uninterrupted(uninterrupted, tmp_path, monkeypatch,
                                                                              sig):
    """Step 60 of 69 (23 an epoch): inside the last epoch, with two epochs' checkpoints and records before it."""
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        _signal_at_step(m, VAE, 60, sig)
        assert main([*ARGS, "--out", str(out)]) == 130
    state = json.loads(read_safetensors(out / "checkpoint.safetensors")[1]["state"])
    assert (state["epoch"], state["step"], state["batch"]) == (2, 60, 14)
    assert main([*ARGS, "--out", str(out), "--resume"]) == 0
    full, _ = uninterrupted
    _assert_same_weights(load_run(full).model, load_run(out).model)
    assert _test_records(out) == _test_records(full)


def test_a_second_ctrl_c_stops_at_once_without_saving(tmp_path, monkeypatch, own_handlers):
    """The first Ctrl-C asks to stop after the step; a second, before that step ends, stops at once: no
    mid-epoch checkpoint is written, and the last complete one (epoch 1) stands."""
    out, calls = tmp_path / "run", {"n": 0}
    original = VAE.train_step

    def step(self, batch, ctx):
        calls["n"] += 1
        if calls["n"] == 30:  # in the second epoch
            stop, got = signal.getsignal(signal.SIGINT), []
            signal.signal(signal.SIGINT, lambda *a: (got.append(1), stop(*a)))
            os.kill(os.getpid(), signal.SIGINT)
            while not got:  # the first has reached the engine's handler
                time.sleep(0.001)
            signal.signal(signal.SIGINT, stop)
            os.kill(os.getpid(), signal.SIGINT)  # the second: raises here, before the step runs
            time.sleep(1)  # a pause the second handler interrupts by raising KeyboardInterrupt: never completed
        return original(self, batch, ctx)

    monkeypatch.setattr(VAE, "train_step", step)
    with pytest.raises(KeyboardInterrupt):
        train(build_run_config({"family": "vae", "model": {"hidden": [16], "latent_dim": 2},
                                "train": {"epochs": 3, "batch_size": 64}}), out, progress=False)
    assert calls["n"] == 30
    state = json.loads(read_safetensors(out / "checkpoint.safetensors")[1]["state"])
    assert (state["epoch"], state["step"], state.get("batch", 0)) == (1, 23, 0)
    assert _handlers_put_back(own_handlers)  # the handlers training found, not Python's defaults


def test_grad_clip_bounds_every_step_and_rejects_bad_values(digits, tmp_path, monkeypatch):
    from genmodels import ConfigError

    norms = []
    original = torch.optim.Adam.step

    def step(self, *args, **kwargs):
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        norms.append(torch.nn.utils.get_total_norm(grads).item())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    train(tiny_vae_config(train={"epochs": 1, "grad_clip": 0.5}), tmp_path / "clip", progress=False, data=digits)
    assert norms and max(norms) <= 0.5 + 1e-4
    norms.clear()
    train(tiny_vae_config(train={"epochs": 1}), tmp_path / "free", progress=False, data=digits)
    assert max(norms) > 0.5  # without clipping the same run's gradients are larger: the clip did the work
    with pytest.raises(ConfigError, match=r"train\.grad_clip"):
        tiny_vae_config(train={"grad_clip": -1.0})


def test_the_checkpoint_keeps_the_seconds_of_training(digits, tmp_path):
    """The report's training time: saved with every checkpoint, added up over resumes, and unknown (not 0)
    for a checkpoint written before it was kept."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from genmodels.rundir import RunDir

    out = tmp_path / "run"
    first = train(tiny_vae_config(train={"epochs": 2}), out, progress=False, data=digits)
    seconds = RunDir(out).train_seconds()
    assert seconds > 0 and seconds == pytest.approx(sum(first.epoch_seconds), abs=2e-3)
    second = train(tiny_vae_config(train={"epochs": 3}), out, resume=True, progress=False, data=digits)
    assert RunDir(out).train_seconds() == pytest.approx(seconds + sum(second.epoch_seconds), abs=4e-3)

    path = out / "checkpoint.safetensors"
    with safe_open(path, "pt") as f:
        meta = f.metadata()
    state = json.loads(meta["state"])
    del state["seconds"]
    save_file(load_file(path), path, metadata={**meta, "state": json.dumps(state)})
    assert RunDir(out).train_seconds() is None
    train(tiny_vae_config(train={"epochs": 4}), out, resume=True, progress=False, data=digits)
    assert RunDir(out).train_seconds() is None
