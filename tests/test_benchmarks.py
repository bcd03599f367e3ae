"""Benchmarks that promise a check: the check runs here on a tiny setting and fails when its promise breaks."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def throughput(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import model_throughput

    return model_throughput


def _digits_28(digits, path: Path) -> Path:
    """300 bundled digits scaled to the 28x28 the benchmark's models take, as a .npy file."""
    x = digits.train.batch(slice(0, 300))  # (300, 1, 8, 8) in [0, 1]
    up = torch.nn.functional.interpolate(x, size=(28, 28), mode="bilinear")
    np.save(path, (up[:, 0] * 255).round().to(torch.uint8).numpy())
    return path


def test_model_throughput_check_passes_for_the_same_step_and_fails_for_another(throughput, digits, tmp_path,
                                                                               monkeypatch, capsys):
    data = str(_digits_28(digits, tmp_path / "digits28.npy"))
    monkeypatch.setattr(sys, "argv", ["model_throughput.py", "--check-only", "--data", data])
    throughput.main()  # returns: all three models agree with their hand-written loops
    out = capsys.readouterr().out
    assert out.count("check ") == 3 and "FAILED" not in out
    # A hand-written loop that takes a 1% larger step: the weights differ by about 1e-2 of what they moved.
    build = throughput.MINIMAL["deepae"]
    monkeypatch.setitem(throughput.MINIMAL, "deepae", lambda lr, betas: build(lr * 1.01, betas))
    monkeypatch.setattr(sys, "argv", ["model_throughput.py", "--check-only", "--models", "deepae", "--data", data])
    with pytest.raises(SystemExit, match="differs from the hand-written one for deepae"):
        throughput.main()
    assert "check FAILED deepae" in capsys.readouterr().out
