import os

import pytest
import torch
from hypothesis import settings

from genmodels import build_run_config, load_data

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
