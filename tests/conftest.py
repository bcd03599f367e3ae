import hashlib
import os
from pathlib import Path

import pytest
import torch
from hypothesis import settings

from genmodels import build_run_config, load_data, train
from genmodels.cli import main

# Every net in the tests is tiny: one thread is as fast, and a second only spins when the cores are busy.
torch.set_num_threads(1)

# Hypothesis (tests/test_fuzz.py) draws the same examples on every run, so a failure in CI repeats on any
# machine; HYPOTHESIS_PROFILE=explore draws new ones each run, to look for more (and prints the seed and
# the failing example's blob to reproduce it with @reproduce_failure).
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def digits():
    return load_data("digits")


def tiny_vae_config(**over):
    """A VAE small enough to train on digits in about a second."""
    values = {
        "family": "vae",
        "model": {"latent_dim": 2, "hidden": [32], **over.pop("model", {})},
        "data": {"source": "digits"},
        "train": {"epochs": 2, "batch_size": 64, "lr": 3e-3, "log_every": 5, **over.pop("train", {})},
    }
    return build_run_config(values)


# -- commands on a run directory, refused or not (test_refusals_*, test_run_lock, test_write_failures, test_divergence)
# Flags of a tiny VAE on digits for `genmodels train vae`.
TINY = ["--hidden", "16", "--latent-dim", "2", "--batch-size", "200", "--no-progress"]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` (symlinks not followed) and a hash of its bytes; the lock file, which names
    its present holder, by name only."""
    return {str(p.relative_to(folder)): "" if p.name == ".genmodels.lock"
            else hashlib.sha256(p.read_bytes()).hexdigest()
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


@pytest.fixture(scope="module")
def done_run(digits, tmp_path_factory):
    """A finished one-epoch VAE run, one per test module (its tests copy it before changing it)."""
    out = tmp_path_factory.mktemp("bad") / "run"
    return train(tiny_vae_config(train={"epochs": 1}), out, progress=False, data=digits)
