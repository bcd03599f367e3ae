"""Hostile inputs, generated: random and truncated bytes at every reader, random values at the
config. The only exception allowed out is genmodels' own, with a one-line readable message."""

import gzip
import io
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genmodels import build_run_config, load_data
from genmodels.errors import GenmodelsError

FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_examples_repeat_unless_asked_to_explore():
    """The profile tests/conftest.py loads: the same examples on every run (a failure in CI repeats)."""
    import os

    assert FUZZ.derandomize == (os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci")
    assert FUZZ.max_examples == 50


def _readable(err: GenmodelsError) -> None:
    text = str(err)
    assert text and "\n" not in text and len(text) < 600, text


def _load(path) -> None:
    try:
        load_data(str(path))
    except GenmodelsError as err:
        _readable(err)


def _idx(magic_type: int, dims: list[int], payload: bytes) -> bytes:
    return struct.pack(">HBB", 0, magic_type, len(dims)) + b"".join(struct.pack(">I", d) for d in dims) + payload


@FUZZ
@given(images=st.binary(max_size=300), labels=st.binary(max_size=40), gz=st.booleans(),
       cut=st.integers(0, 400), header=st.booleans(), n=st.integers(0, 5), side=st.integers(0, 6))
def test_idx_folder_with_random_or_truncated_bytes(images, labels, gz, cut, header, n, side):
    if header:  # a plausible header, so the parser gets past the magic number and meets bad counts
        images = _idx(0x08, [n, side, side], images)
        labels = _idx(0x08, [n], labels)
    images = images[: cut or None]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for split in ("train", "t10k"):
            name = f"{split}-images-idx3-ubyte"
            (folder / (name + (".gz" if gz else ""))).write_bytes(gzip.compress(images) if gz and cut % 2 else images)
            (folder / f"{split}-labels-idx1-ubyte").write_bytes(labels)
        _load(folder)


@FUZZ
@given(raw=st.binary(max_size=400), suffix=st.sampled_from([".npy", ".npz"]))
def test_array_files_with_random_bytes(raw, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data{suffix}"
        path.write_bytes(raw)
        _load(path)


@FUZZ
@given(shape=st.lists(st.integers(0, 5), min_size=0, max_size=5),
       dtype=st.sampled_from(["uint8", "float32", "float64", "int64", "bool", "complex64", "U3"]),
       fill=st.sampled_from([0.5, float("nan"), -1.0, 300.0, 1.0]), key=st.sampled_from(["images", "x_train", "z"]),
       cut=st.integers(0, 1000))
def test_npz_with_random_arrays_and_truncation(shape, dtype, fill, key, cut):
    with np.errstate(invalid="ignore"):  # NaN cast to an integer type: a hostile array is the point
        arr = np.full(shape, fill).astype(dtype) if dtype != "U3" else np.full(shape, "abc")
    buf = io.BytesIO()
    np.savez(buf, **{key: arr, "labels": np.zeros(shape[:1] or [0], dtype=np.int64)})
    raw = buf.getvalue()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.npz"
        path.write_bytes(raw[: len(raw) - cut] if cut else raw)
        _load(path)


@FUZZ
@given(files=st.lists(st.binary(max_size=200), min_size=1, max_size=3),
       suffix=st.sampled_from([".png", ".jpg", ".bmp"]), classes=st.booleans())
def test_image_folder_with_random_bytes(files, suffix, classes):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "imgs"
        for i, raw in enumerate(files):
            folder = root / f"class{i % 2}" if classes else root
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i}{suffix}").write_bytes(raw)
        _load(root)


_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=8), st.lists(st.integers(-3, 3), max_size=3),
                    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))
_MODEL_KEYS = ["latent_dim", "hidden", "channels", "arch", "beta", "corrupt", "contractive", "sparse_rho", "layers",
               "pretrain_epochs", "d_steps", "label_smoothing", "prior", "loss", "likelihood", "bogus"]
_TRAIN_KEYS = ["epochs", "batch_size", "lr", "betas", "seed", "lr_schedule", "threads", "log_every", "bogus"]


@FUZZ
@given(family=st.one_of(st.sampled_from(["vae", "ae", "sdae", "pca", "gan", "classifier", "nope"]), _VALUES),
       model=st.dictionaries(st.sampled_from(_MODEL_KEYS), _VALUES, max_size=4),
       train=st.one_of(st.dictionaries(st.sampled_from(_TRAIN_KEYS), _VALUES, max_size=3), _VALUES))
def test_config_with_random_values(family, model, train):
    try:
        config = build_run_config({"family": family, "model": model, "train": train})
    except GenmodelsError as err:
        _readable(err)
        return
    _sane(config)  # accepted: then every value in it must be one training can use


def _sane(config) -> None:
    """What an accepted config promises: finite numbers, a positive learning rate, Adam's betas in [0, 1)."""
    import math

    def floats(value):
        if isinstance(value, float):
            yield value
        elif isinstance(value, dict):
            for v in value.values():
                yield from floats(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                yield from floats(v)

    assert all(math.isfinite(v) for v in floats(config.model_dump())), config
    assert config.train.lr > 0 and all(0 <= b < 1 for b in config.train.betas)
    assert config.train.epochs >= 1 and config.train.batch_size >= 1


@pytest.mark.parametrize("family, section, key, value", [
    ("vae", "train", "lr", float("inf")), ("vae", "train", "lr", float("nan")), ("vae", "train", "lr", -1e-3),
    ("vae", "train", "lr", 0.0), ("vae", "train", "betas", (1.0, 0.999)), ("vae", "train", "betas", (-0.1, 0.9)),
    ("vae", "train", "betas", (float("nan"), 0.9)), ("vae", "train", "grad_clip", float("inf")),
    ("vae", "model", "beta", float("inf")), ("ae", "model", "contractive", float("nan")),
    ("ae", "model", "weight_decay", float("inf")), ("ae", "model", "corrupt", ["gauss:inf"]),
    ("gan", "model", "gp_weight", float("inf")), ("gan", "model", "lr_d", float("nan")),
])
def test_hostile_values_are_refused_by_name(family, section, key, value):
    with pytest.raises(GenmodelsError) as err:
        build_run_config({"family": family, section: {key: value}})
    _readable(err.value)
    assert key in str(err.value) or "Corruption" in str(err.value)


@FUZZ
@given(raw=st.binary(max_size=300), header=st.booleans())
def test_checkpoint_reader_with_random_bytes(raw, header):
    from genmodels.checkpoint import read_safetensors

    if header:  # a header length that points into (or past) the random bytes
        raw = struct.pack("<Q", len(raw) // 2) + raw
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        path.write_bytes(raw)
        try:
            read_safetensors(path)
        except GenmodelsError as err:
            _readable(err)


@FUZZ
@given(doc=st.recursive(_VALUES, lambda inner: st.dictionaries(st.sampled_from(
    ["family", "model", "train", "data", "shape", "version", "x"]), inner, max_size=4), max_leaves=8))
def test_config_json_with_random_documents(doc):
    import json

    from genmodels.rundir import RunDir

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.json"
        path.write_text(json.dumps(doc))
        try:
            RunDir(tmp).read_config()
        except GenmodelsError as err:
            _readable(err)
