"""Bounded memory past training: `evaluate` and `data convert` read a memory-mapped split a batch at a time.

Each command runs in a subprocess whose data memory is capped (resource.setrlimit(RLIMIT_DATA): the heap and
every private writable mapping, so every tensor, but not a file mapped read-only) at what it holds after its
imports plus HEADROOM, below the size of the test split's file; a control child shows the cap refuses the
split converted to floats whole, as `evaluate` did before.
"""

import filecmp
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from genmodels.cli import main

# Bytes of data memory a command may add to what its imports took (96 MiB failed now and then, in sharpness).
HEADROOM = 128 << 20
TEST_IMAGES = 460_000  # 28x28: a 361 MB file, more than the cap (about 190 MB of imports + HEADROOM)

CHILD = r'''
import re, resource, sys
import torch
torch.set_num_threads(1)
import genmodels.cli, genmodels.data, genmodels.evaluation, genmodels.metrics  # every import before the cap
from genmodels.cli import main

def data_memory():
    return int(re.search(r"VmData:\s+(\d+) kB", open("/proc/self/status").read())[1]) << 10

cap = data_memory() + int(sys.argv[1])
big = int(sys.argv[2])
if big <= cap:
    sys.exit(f"the test split's file ({big} bytes) must be larger than the cap ({cap} bytes)")
resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
if sys.argv[3] == "whole":  # the control: the split as floats at once
    test = genmodels.data.load_data(sys.argv[4]).test
    try:
        test.batch(slice(0, len(test)))
    except (MemoryError, RuntimeError):
        sys.exit(3)
    sys.exit(0)
sys.exit(main(sys.argv[3:]))
'''


def _idx(path: Path, dims: tuple[int, ...], chunks) -> None:
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 0x08, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims))
        for chunk in chunks:
            f.write(chunk.tobytes())


@pytest.fixture(scope="module")
def big(tmp_path_factory, digits):
    """An IDX folder: 2,000 training images and TEST_IMAGES test images (28x28 digits, tiled), with labels."""
    import torch

    folder = tmp_path_factory.mktemp("big") / "idx"
    folder.mkdir()
    x = digits.train.batch(slice(0, 2000))  # (1438, 1, 8, 8): tiled to 2000 below
    up = (torch.nn.functional.interpolate(x, size=(28, 28), mode="bilinear")[:, 0] * 255).round().byte().numpy()
    labels = digits.train.labels.numpy().astype(np.uint8)
    train = np.resize(up, (2000, 28, 28))
    _idx(folder / "train-images-idx3-ubyte", (2000, 28, 28), [train])
    _idx(folder / "train-labels-idx1-ubyte", (2000,), [np.resize(labels, 2000)])
    reps = -(-TEST_IMAGES // len(up))
    _idx(folder / "t10k-images-idx3-ubyte", (TEST_IMAGES, 28, 28),
         (up[: min(len(up), TEST_IMAGES - i * len(up))] for i in range(reps)))
    _idx(folder / "t10k-labels-idx1-ubyte", (TEST_IMAGES,), [np.resize(labels, TEST_IMAGES)])
    yield folder
    for f in folder.iterdir():  # 361 MB: not left in pytest's kept temporary folders
        f.unlink()


def _capped(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", CHILD, str(HEADROOM), str(TEST_IMAGES * 28 * 28), *args],
                          env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow  # a subprocess with capped memory
def test_the_cap_refuses_the_test_split_as_floats_at_once(big):
    assert _capped("whole", str(big)).returncode == 3


@pytest.mark.slow  # a subprocess with capped memory
def test_data_convert_streams_a_split_larger_than_its_memory(big, tmp_path):
    out = tmp_path / "converted"
    proc = _capped("data", "convert", str(big), "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        assert filecmp.cmp(big / name, out / name, shallow=False), name  # the same bytes
    for f in out.iterdir():
        f.unlink()


@pytest.mark.slow  # a subprocess with capped memory
def test_evaluate_streams_a_split_larger_than_its_memory(big, tmp_path):
    run = tmp_path / "ae"
    assert main(["train", "ae", "--data", str(big), "--hidden", "8", "--latent-dim", "2", "--epochs", "1",
                 "--eval-batch-size", "2000", "--out", str(run), "--no-progress"]) == 0
    proc = _capped("evaluate", str(run), "--probe-train", "0", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((run / "eval.json").read_text())
    assert results["images"] == TEST_IMAGES
    # The same mean squared error per image as training's held-out evaluation, over the same images.
    held_out = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["split"] == "test"]
    assert results["reconstruction_sse"] == pytest.approx(held_out[-1]["rec"], rel=1e-4)
    assert np.isfinite(results["pca_reconstruction_sse"])


def test_a_split_view_draws_each_rows_binarisation_once_however_it_is_sliced(digits):
    """What lets evaluate read a VAE's binarised test images a slice at a time: the same images as a whole read."""
    import torch

    from genmodels.evaluation import SplitView

    view = SplitView(digits.test, torch.device("cpu"), torch.bernoulli, seed=3)
    assert view.shape == (len(digits.test), 1, 8, 8) and len(view) == 359
    state = torch.get_rng_state()
    whole = view[0 : len(view)]
    assert torch.equal(torch.cat([view[i : i + 37] for i in range(0, len(view), 37)]), whole)
    assert torch.equal(view[250:260], whole[250:260]) and view[400:500].shape == (0, 1, 8, 8)
    assert torch.equal(torch.get_rng_state(), state)  # the draws leave training's and evaluation's RNG alone
    assert set(whole.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(SplitView(digits.test, torch.device("cpu"), torch.bernoulli, seed=4)[0:359], whole)
    assert torch.equal(SplitView(digits.test, torch.device("cpu"))[5:9], digits.test.batch(slice(5, 9)))
