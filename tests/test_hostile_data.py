"""Hostile data, round two (issue 27, cases 2 and 3): images that are all alike train and evaluate, every metric
defines its degenerate cases (a value or left out, never a crash or NaN), and a gzip bomb within deflate's ratio
is refused by the memory limit (--max-data-gb, the memory available) before it is inflated, with `data convert`
streaming such files into memory-mapped IDX instead."""

import gzip
import json
import math
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import cli, one_sentence
from genmodels import datafiles
from genmodels.collapse import CollapseWatch
from genmodels.data import load_data
from genmodels.dataconvert import convert
from genmodels.errors import DataError
from genmodels.evaluation import collapse_verdict, feature_distances, pixel_quality
from genmodels.metrics import (
    class_entropy,
    density_coverage,
    diversity,
    feature_moments,
    fid,
    kid,
    knn_accuracy,
    linear_probe_accuracy,
    mean_pairwise_distance,
    parzen_estimate,
    precision_recall,
    sharpness,
)
from test_refusals_data_files import peak_bytes

MiB = 1 << 20
TINY = ["--hidden", "16", "--latent-dim", "2", "--batch-size", "50", "--epochs", "1", "--no-progress"]


def finite_json(path: Path) -> list:
    """The JSON values of a file (one document, or JSON lines), refusing NaN and infinities as json.loads never
    would by itself."""
    def refuse(token):
        raise AssertionError(f"{path} holds {token}")

    text = path.read_text()
    docs = [text] if path.suffix == ".json" else text.splitlines()
    return [json.loads(d, parse_constant=refuse) for d in docs if d.strip()]


# --- case 2: identical images train; each metric defines its degenerate cases ---------------------------------------


@pytest.mark.parametrize("family", ["vae", "gan"])
def test_identical_images_train_and_evaluate(tmp_path, capsys, family):
    np.save(tmp_path / "same.npy", np.full((200, 8, 8), 128, np.uint8))
    out = tmp_path / "run"
    assert cli("train", family, "--data", tmp_path / "same.npy", "--out", out, *TINY) == 0
    assert (out / "checkpoint.pt").is_file() or any(out.glob("checkpoint*")), sorted(p.name for p in out.iterdir())
    records = finite_json(out / "metrics.jsonl")
    assert records and not any("diversity" in r for r in records)  # undefined against identical test images
    assert cli("evaluate", out, "--parzen-samples", "100") == 0
    results = finite_json(out / "eval.json")[0]
    assert "Traceback" not in capsys.readouterr().err
    assert not {"diversity", "sharpness", "reconstruction_sharpness", "collapsed"} & set(results)
    assert all(math.isfinite(v) for v in results.values() if isinstance(v, float))


def test_nearly_identical_images_have_a_finite_diversity(tmp_path):
    x = np.full((200, 8, 8), 128, np.uint8)
    x[::7, 3, 3] = 129  # one pixel one level up in every seventh image
    np.save(tmp_path / "near.npy", x)
    out = tmp_path / "run"
    assert cli("train", "gan", "--data", tmp_path / "near.npy", "--out", out, *TINY) == 0
    (record,) = [r for r in finite_json(out / "metrics.jsonl") if "diversity" in r]
    assert record["diversity"] > 0


def test_pixel_metrics_degenerate_cases():
    flat = torch.full((5, 1, 6, 6), 0.5)
    varied = torch.rand(5, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    assert mean_pairwise_distance(flat) == 0.0
    with pytest.raises(ValueError, match="at least two images"):
        mean_pairwise_distance(flat[:1])
    # Diversity is a ratio to the real images' spread: none to compare with, no value.
    assert diversity(varied, flat) is None and diversity(flat, flat) is None
    assert diversity(varied[:1], varied) is None and diversity(varied, varied[:1]) is None
    assert diversity(flat, varied) == 0.0  # identical samples against varied data: a collapse, defined
    # Sharpness is a ratio to the real images' Laplacian variance: flat or linear images have none.
    ramp = torch.arange(6.0).repeat(6, 1).view(1, 1, 6, 6).expand(3, 1, 6, 6) / 6
    assert sharpness(varied, flat) is None and sharpness(varied, ramp) is None and sharpness(flat, flat) is None
    assert sharpness(flat, varied) == 0.0 and sharpness(varied[:0], varied) is None
    assert pixel_quality(varied, flat) == {}
    assert set(pixel_quality(varied, varied)) == {"sharpness", "diversity"}
    assert collapse_verdict(pixel_quality(varied, flat)) == {}  # no diversity, no verdict from it


def test_feature_metrics_degenerate_cases():
    same = torch.randn(1, 16, generator=torch.Generator().manual_seed(1)).expand(40, 16).contiguous()
    other = torch.randn(40, 16, generator=torch.Generator().manual_seed(2))
    # Zero spread (zero covariance) on one side or both: finite distances, 0 for identical sets.
    assert fid(same, same) == 0.0 and math.isfinite(fid(same, other)) and fid(same, other) > 0
    assert abs(kid(same, same, subsets=5, subset_size=10).kid) < 1e-9
    assert kid(same, same, subsets=1, subset_size=10).std == 0.0
    with pytest.raises(ValueError, match="at least 2"):
        feature_moments(same[:1])
    with pytest.raises(ValueError, match="at least 2"):
        kid(same[:1], same)
    # Identical points lie in each other's balls of radius 0.
    assert precision_recall(same, same) == (1.0, 1.0)
    assert density_coverage(same, same) == (40 / 5, 1.0)
    with pytest.raises(ValueError, match="need more than k points"):
        precision_recall(same[:3], same)
    # Evaluation leaves out what too few vectors cannot define, and keeps what they can.
    assert feature_distances(same[:1], other) == {}
    assert set(feature_distances(same[:3], other)) == {"fid", "kid", "kid_std"}
    assert set(feature_distances(same[:5], other[:2])) == {"fid", "kid", "kid_std"}
    assert set(feature_distances(same[:6], other[:4])) == {"fid", "kid", "kid_std", "precision", "recall", "density",
                                                           "coverage"}
    assert set(feature_distances(same[:6], other[:1])) == {"density", "coverage"}
    found = feature_distances(same, same)
    assert found["fid"] == 0.0 and found["precision"] == found["recall"] == found["coverage"] == 1.0


def test_class_entropy_parzen_and_probes_degenerate_cases():
    assert class_entropy(torch.zeros(10, dtype=torch.float64)) == 0.0  # no samples at all
    assert class_entropy(torch.tensor([1.0, 0.0, 0.0])) == 0.0  # one class
    same = torch.full((6, 1, 4, 4), 0.25)
    result = parzen_estimate(same, same, same[:1])
    assert math.isfinite(result.log_likelihood) and result.stderr == 0.0
    with pytest.raises(ValueError, match="at least one sample"):
        parzen_estimate(same[:0], same, same)
    with pytest.raises(ValueError, match="at least one validation and one test image"):
        parzen_estimate(same, same, same[:0])
    codes = np.zeros((8, 3))  # constant codes, one class in training
    assert linear_probe_accuracy(codes, np.zeros(8, int), codes[:4], np.array([0, 0, 1, 2])) == 0.5
    assert knn_accuracy(codes, np.zeros(8, int), codes[:4], np.array([0, 0, 1, 2])) == 0.5
    assert linear_probe_accuracy(codes, np.array([0, 1] * 4), codes[:2], np.array([0, 1])) == 0.5  # ties: one class


def test_the_collapse_watch_ignores_an_undefined_diversity():
    watch = CollapseWatch("gan", "lower the learning rate")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for epoch in range(3):
            watch.check(epoch, None, last=epoch == 2)
    assert not watch.warned and not watch.varied


# --- case 3: the memory limit, and data convert streams gzipped IDX ------------------------------------------------


def idx_header(dims) -> bytes:
    return struct.pack(">HBB", 0, 0x08, len(dims)) + struct.pack(f">{len(dims)}I", *dims)


def gz_idx_folder(folder: Path, train: np.ndarray, test: np.ndarray, labels: bool = False) -> Path:
    folder.mkdir()
    for split, x in (("train", train), ("t10k", test)):
        (folder / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_header(x.shape) + x.tobytes(), 1))
        if labels:
            y = (np.arange(len(x)) % 10).astype(np.uint8)
            (folder / f"{split}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_header(y.shape) + y.tobytes()))
    return folder


def test_a_bomb_within_deflates_ratio_is_refused_by_the_default_limit(tmp_path):
    # 60,000 images of 200x200 (2.4 GB) claimed by a 2.4 MB gzip file: within what deflate can expand (1032x), so
    # not refused as corrupt, but over the default 2 GB, so refused before a buffer is allocated.
    dims = (60_000, 200, 200)
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    blob = z.compress(idx_header(dims) + np.random.default_rng(0).bytes(math.prod(dims) // 1000)) + z.flush()
    folder = tmp_path / "bomb"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(blob)
    (folder / "t10k-images-idx3-ubyte").write_bytes(idx_header((2, 200, 200)) + bytes(80_000))
    assert math.prod(dims) <= datafiles.INFLATE_RATIO * len(blob)
    errors = []

    def load():
        with pytest.raises(DataError) as info:
            load_data(str(folder))
        errors.append(str(info.value))

    assert peak_bytes(load) < 8 * MiB
    message = errors[0]
    assert "\n" not in message and message.endswith("."), message
    assert "would take 2.4 GB of memory, over the --max-data-gb limit of 2 GB (default 2)" in message, message
    assert f"`genmodels data convert {folder} --out NEW_FOLDER`" in message, message


def test_the_limit_is_the_memory_available_where_that_is_less(tmp_path, monkeypatch):
    x = np.arange(40 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(40, 28, 28)
    folder = gz_idx_folder(tmp_path / "d", x, x[:4])
    monkeypatch.setattr(datafiles, "available_memory", lambda: 20_000)
    with pytest.raises(DataError, match=r"would take 3.14e-05 GB of memory, but only 2e-05 GB is available now; "
                                        r"convert it once to uncompressed IDX"):
        load_data(str(folder))
    monkeypatch.undo()
    assert datafiles.available_memory() > 0  # known on Linux
    assert load_data(str(folder)).train.images.shape == (40, 1, 28, 28)


def test_max_data_gb_refuses_before_the_run_folder_and_convert_streams_it(tmp_path, capsys):
    x = np.random.default_rng(0).integers(0, 256, (8000, 28, 28), np.uint8)  # 6.3 MB
    folder = gz_idx_folder(tmp_path / "gz", x, x[:100], labels=True)
    out = tmp_path / "run"
    assert cli("train", "vae", "--data", folder, "--out", out, "--max-data-gb", "0.001", *TINY) == 2
    one_sentence(capsys, "would take 0.00627 GB of memory, over the --max-data-gb limit of 0.001 GB (default 2)",
                 f"genmodels data convert {folder} --out NEW_FOLDER", "or raise --max-data-gb")
    assert not out.exists()
    # data convert streams the gzipped files (never inflated whole), then training memory-maps what it wrote.
    idx = tmp_path / "idx"
    written = []
    peak = peak_bytes(lambda: written.extend(convert(str(folder), idx)[0]))
    assert peak < 3 * MiB, f"peak {peak / MiB:.2f} MiB converting {x.nbytes / MiB:.2f} MiB"
    assert sorted(p.name for p in written) == ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
                                               "train-images-idx3-ubyte", "train-labels-idx1-ubyte"]
    data = load_data(str(idx), max_data_gb=0.001)  # memory-mapped: not counted against the limit
    assert torch.equal(data.train.images[:, 0], torch.from_numpy(x)) and data.test.labels.tolist()[:3] == [0, 1, 2]
    assert cli("data", "convert", folder, "--out", tmp_path / "idx2") == 0
    name = "train-images-idx3-ubyte"
    assert (tmp_path / "idx2" / name).read_bytes() == (idx / name).read_bytes()
    assert cli("train", "vae", "--data", idx, "--out", out, "--max-data-gb", "0.001", *TINY) == 0
    # The limit is how the data are read, not what they are: a resumed run may take another.
    assert cli("train", "vae", "--data", idx, "--out", out, "--resume", "--epochs", "2", "--max-data-gb", "3") == 0
    assert json.loads((out / "config.json").read_text())["data"]["max_data_gb"] == 3


def test_convert_refuses_damaged_gzip_idx_and_leaves_nothing(tmp_path):
    x = np.zeros((50, 4, 4), np.uint8)
    folder = gz_idx_folder(tmp_path / "gz", x, x[:5])
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_header((5, 4, 4)) + bytes(70)))  # 10 short
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz ends after 70 of the 80 data bytes"):
        convert(str(folder), tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []  # the train file written before it was removed
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_header((5, 4, 3)) + bytes(60)))
    with pytest.raises(DataError, match=r"train images of shape \(1, 4, 4\) but test images of shape \(1, 4, 3\)"):
        convert(str(folder), tmp_path / "out2")
    assert not (tmp_path / "out2").exists()  # refused from the headers, before anything is written


def test_npz_images_and_arrays_that_need_a_copy_obey_the_limit(tmp_path):
    np.savez(tmp_path / "a.npz", images=np.zeros((100, 32, 32), np.uint8))
    with pytest.raises(DataError, match=r"a.npz \(arrays images\) decompressed would take 0.000103 GB .* save the "
                                        r"arrays as .npy files"):
        load_data(str(tmp_path / "a.npz"), max_data_gb=0.0001)
    np.save(tmp_path / "f64.npy", np.zeros((100, 32, 32), np.float64))
    with pytest.raises(DataError, match=r"\(float64, shape \(100, 1, 32, 32\)\) copied would take 0.00041 GB"):
        load_data(str(tmp_path / "f64.npy"), max_data_gb=0.0001)
    assert load_data(str(tmp_path / "f64.npy")).train.images.dtype == torch.float32
    np.save(tmp_path / "u8.npy", np.zeros((100, 32, 32), np.uint8))  # memory-mapped as it is: no limit applies
    assert len(load_data(str(tmp_path / "u8.npy"), max_data_gb=0.0001).train) == 80
    with pytest.raises(DataError, match="max_data_gb must be a positive number of gigabytes, got 0"):
        load_data("digits", max_data_gb=0)


def test_max_data_gb_must_be_positive(tmp_path, capsys):
    assert cli("train", "vae", "--out", tmp_path / "r", "--max-data-gb", "0", *TINY) == 2
    one_sentence(capsys, "data.max_data_gb")
