"""Data sources: each loader against small synthetic files, and every bad input as one-line DataError."""

import gzip
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genmodels.data import FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, Dataset, load_data
from genmodels.errors import DataError


def write_idx(path: Path, array: np.ndarray, *, dtype_byte: int = 0x08) -> Path:
    """IDX: 0x00 0x00, dtype byte, ndim byte, big-endian uint32 dims, then the raw bytes."""
    raw = bytes([0, 0, dtype_byte, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


def idx_folder(folder: Path, n_train=6, n_test=4, hw=(5, 3), suffix=".gz", labels=True, seed=0):
    """A tiny MNIST-layout folder; returns the arrays written, (N, H, W) uint8 and (N,) uint8."""
    rng = np.random.default_rng(seed)
    folder.mkdir(exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, (n, *hw), dtype=np.uint8)
        y = rng.integers(0, 10, n, dtype=np.uint8)
        write_idx(folder / f"{split}-images-idx3-ubyte{suffix}", x)
        if labels:
            write_idx(folder / f"{split}-labels-idx1-ubyte{suffix}", y)
        arrays[split] = (x, y)
    return arrays


def expect_error(pattern: str, source, *args, **kwargs) -> str:
    """load_data must fail with a DataError matching pattern, in one line that ends a sentence."""
    with pytest.raises(DataError, match=pattern) as info:
        load_data(str(source), *args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message.endswith("."), message
    assert info.value.__cause__ is None or isinstance(info.value.__cause__, DataError)
    return message


def save_image(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array)
    (image if mode is None else image.convert(mode)).save(path)
    return path


# --- digits and the Dataset / DataSplits API --------------------------------------------------


def test_digits_shape_range_labels_and_split_sizes():
    data = load_data("digits")
    assert data.source == "digits" and data.shape == (1, 8, 8) and data.num_classes == 10
    assert len(data.train) == 1797 - 359 and len(data.test) == 359  # round(1797 * 0.2)
    assert data.train.name == "digits/train" and data.test.name == "digits/test"
    for split in (data.train, data.test):
        assert split.images.dtype == torch.float32 and split.labels.dtype == torch.int64
        assert split.labels.shape == (len(split),)
        assert split.images.min() >= 0 and split.images.max() <= 1
    assert data.train.images.max() == 1.0  # 16 / 16: scaled by 16, not by 255
    from sklearn.datasets import load_digits

    # the two splits together hold exactly the original pixels and labels
    ref = load_digits()
    total = data.train.images.double().sum() + data.test.images.double().sum()
    assert torch.isclose(total, torch.tensor(ref.images.sum() / 16, dtype=torch.float64))
    assert sorted(torch.cat([data.train.labels, data.test.labels]).tolist()) == sorted(ref.target.tolist())


def test_seeded_split_is_deterministic_disjoint_and_depends_only_on_split_seed(tmp_path):
    ids = np.arange(50, dtype=np.float32) / 100  # image i is filled with i / 100, so rows are identifiable
    np.save(tmp_path / "ids.npy", np.broadcast_to(ids[:, None, None], (50, 2, 2)).copy())
    torch.manual_seed(123)
    a = load_data(str(tmp_path / "ids.npy"), test_fraction=0.3, split_seed=7)
    torch.manual_seed(999)  # a different training seed must not move the split
    b = load_data(str(tmp_path / "ids.npy"), test_fraction=0.3, split_seed=7)
    c = load_data(str(tmp_path / "ids.npy"), test_fraction=0.3, split_seed=8)
    assert torch.equal(a.train.stored(), b.train.stored()) and torch.equal(a.test.stored(), b.test.stored())
    assert not torch.equal(a.test.stored(), c.test.stored())
    train_ids = set(a.train.stored()[:, 0, 0, 0].mul(100).round().int().tolist())
    test_ids = set(a.test.stored()[:, 0, 0, 0].mul(100).round().int().tolist())
    assert len(a.test) == 15 and len(a.train) == 35
    assert not train_ids & test_ids and train_ids | test_ids == set(range(50))
    assert load_data("digits").test.labels.tolist() == load_data("digits").test.labels.tolist()


def test_batch_gives_float32_in_unit_range_for_uint8_and_float_storage():
    raw = torch.arange(2 * 1 * 4 * 4, dtype=torch.uint8).reshape(2, 1, 4, 4) * 8  # 0..248
    as_uint8 = Dataset(raw, torch.tensor([0, 1]), "u8")
    x = as_uint8.batch(torch.tensor([1]))
    assert x.dtype == torch.float32 and x.shape == (1, 1, 4, 4)
    assert torch.equal(x, raw[1:].float() / 255)
    assert torch.equal(as_uint8.batch(slice(0, 2)), raw.float() / 255)
    assert as_uint8.images.dtype == torch.uint8  # converting a batch leaves the stored data alone
    as_float = Dataset(raw.float() / 255, None, "f32")
    y = as_float.batch(slice(0, 1))
    assert y.dtype == torch.float32 and 0 <= y.min() and y.max() <= 1
    assert torch.equal(y, as_float.images[:1])


def test_dataset_to_shape_and_validation():
    d = Dataset(torch.zeros(3, 3, 2, 5, dtype=torch.uint8), None, "x")
    moved = d.to("cpu")
    assert moved is not d and moved.shape == (3, 2, 5) and len(moved) == 3 and moved.labels is None
    with pytest.raises(DataError, match="3 images"):
        Dataset(torch.zeros(3, 1, 2, 2), torch.zeros(2, dtype=torch.int64), "bad")
    with pytest.raises(DataError, match="float64"):
        Dataset(torch.zeros(3, 1, 2, 2, dtype=torch.float64), None, "bad")


# --- IDX -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_idx_folder_round_trips_pixels_and_labels(tmp_path, suffix):
    arrays = idx_folder(tmp_path / "set", suffix=suffix)
    data = load_data(str(tmp_path / "set"))
    assert data.source == str(tmp_path / "set") and data.shape == (1, 5, 3)
    assert data.train.images.dtype == torch.uint8 and data.train.labels.dtype == torch.int64
    for split, key in ((data.train, "train"), (data.test, "t10k")):
        x, y = arrays[key]
        assert torch.equal(split.images[:, 0], torch.from_numpy(x))  # official order, exact pixels
        assert split.labels.tolist() == y.tolist()
    assert data.num_classes == max(arrays["train"][1].max(), arrays["t10k"][1].max()) + 1


def test_idx_dot_spelling_without_labels_and_mnist_with_data_dir(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (3, 4, 4), dtype=np.uint8)
    write_idx(tmp_path / "train-images.idx3-ubyte", x)
    write_idx(tmp_path / "t10k-images.idx3-ubyte", x[:1])
    data = load_data("mnist", str(tmp_path))
    assert data.source == "mnist" and data.train.name == "mnist/train"
    assert torch.equal(data.test.images[0, 0], torch.from_numpy(x[0]))
    assert data.train.labels is None and data.num_classes is None


@pytest.mark.skipif(not Path(FASHION_MNIST_DIR).is_dir(), reason="dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_the_debian_folder():
    data = load_data("fashion-mnist")
    assert len(data.train) == 60000 and len(data.test) == 10000
    assert data.shape == (1, 28, 28) and data.train.images.dtype == torch.uint8 and data.num_classes == 10
    assert data.train.images.max() > 200 and data.test.labels.bincount().tolist() == [1000] * 10
    assert data.classes == FASHION_MNIST_CLASSES
    assert data.classes[0] == "T-shirt/top" and data.classes[9] == "Ankle boot"
    assert load_data(FASHION_MNIST_DIR).classes == FASHION_MNIST_CLASSES  # its own folder, named by path


def test_class_names_only_where_the_source_is_known_to_be_fashion_mnist(tmp_path):
    idx_folder(tmp_path / "set")
    assert load_data("fashion-mnist", str(tmp_path / "set")).classes == FASHION_MNIST_CLASSES
    assert len(FASHION_MNIST_CLASSES) == 10 and len(set(FASHION_MNIST_CLASSES)) == 10
    # Any other IDX folder may hold anything (MNIST, a converted dataset): no names are guessed.
    assert load_data(str(tmp_path / "set")).classes is None
    assert load_data("mnist", str(tmp_path / "set")).classes is None
    assert load_data("digits").classes is None  # digits' labels are their names


# --- .npy / .npz -----------------------------------------------------------------------------------


@pytest.mark.parametrize("layout, shape, expected", [
    ("NHW", (6, 4, 5), (1, 4, 5)),
    ("NCHW", (6, 1, 4, 5), (1, 4, 5)),
    ("NCHW", (6, 3, 4, 5), (3, 4, 5)),
    ("NHWC", (6, 4, 5, 1), (1, 4, 5)),
    ("NHWC", (6, 4, 5, 3), (3, 4, 5)),
    ("NCHW", (6, 3, 4, 3), (3, 4, 3)),  # ambiguous: channels-first wins
])
@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_npy_layouts(tmp_path, layout, shape, expected, dtype):
    rng = np.random.default_rng(2)
    array = rng.integers(0, 256, shape, dtype=np.uint8) if dtype == np.uint8 else rng.random(shape)
    np.save(tmp_path / "x.npy", array)
    data = load_data(str(tmp_path / "x.npy"), test_fraction=0.5)
    assert data.shape == expected and len(data.train) == 3 and len(data.test) == 3 and data.num_classes is None
    assert data.train.images.dtype == (torch.uint8 if dtype == np.uint8 else torch.float32)
    nchw = {"NHW": array[:, None] if array.ndim == 3 else array, "NCHW": array,
            "NHWC": array.transpose(0, 3, 1, 2) if array.ndim == 4 else array}[layout]
    stored = torch.cat([data.train.stored(), data.test.stored()]).double()
    ref = torch.from_numpy(np.ascontiguousarray(nchw, dtype=np.float32)).double()
    # the split permutes rows, so compare the sorted per-image sums and every row's exact content
    assert torch.allclose(stored.sum((1, 2, 3)).sort().values, ref.sum((1, 2, 3)).sort().values)
    assert all(any(torch.equal(row, r) for r in ref) for row in stored)


def test_npz_official_split_and_images_labels(tmp_path):
    rng = np.random.default_rng(3)
    x_train, x_test = rng.integers(0, 256, (5, 4, 4, 3), dtype=np.uint8), rng.integers(0, 256, (2, 4, 4, 3), np.uint8)
    np.savez(tmp_path / "a.npz", x_train=x_train, y_train=np.arange(5), x_test=x_test, y_test=np.array([7, 1]))
    data = load_data(str(tmp_path / "a.npz"))
    assert data.shape == (3, 4, 4) and data.num_classes == 8
    assert torch.equal(data.test.images, torch.from_numpy(x_test.transpose(0, 3, 1, 2)))
    assert data.train.labels.tolist() == [0, 1, 2, 3, 4] and data.train.labels.dtype == torch.int64
    np.savez(tmp_path / "b.npz", images=rng.random((10, 2, 2)).astype(np.float32), labels=np.arange(10) % 3)
    data = load_data(str(tmp_path / "b.npz"), test_fraction=0.2)
    assert len(data.train) == 8 and len(data.test) == 2 and data.num_classes == 3
    np.savez(tmp_path / "c.npz", x_train=x_train)  # no x_test: seeded split of x_train
    data = load_data(str(tmp_path / "c.npz"), test_fraction=0.4)
    assert len(data.train) == 3 and len(data.test) == 2 and data.train.labels is None


# --- image folders -----------------------------------------------------------------------------------


def test_flat_grey_image_folder(tmp_path):
    rng = np.random.default_rng(4)
    pixels = [rng.integers(0, 256, (6, 4), dtype=np.uint8) for _ in range(5)]
    for i, p in enumerate(pixels):
        save_image(tmp_path / "imgs" / f"{i}.png", p)
    save_image(tmp_path / "imgs" / "5.gif", pixels[0], mode="P")  # a palette image that is grey in content
    with Image.open(tmp_path / "imgs" / "5.gif") as im:
        assert im.mode == "P"
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    data = load_data(str(tmp_path / "imgs"), test_fraction=0.5)
    assert data.shape == (1, 6, 4) and data.train.images.dtype == torch.uint8 and data.num_classes is None
    assert data.classes is None
    stored = torch.cat([data.train.images, data.test.images])[:, 0]
    assert len(stored) == 6
    for p in pixels:  # png is lossless, so every image comes back exactly
        assert any(torch.equal(s, torch.from_numpy(p)) for s in stored)


def test_class_subfolders_with_rgb_images(tmp_path):
    rng = np.random.default_rng(5)
    colours = {}
    for cls, n in (("cat", 3), ("dog", 4)):
        for i in range(n):
            array = rng.integers(0, 256, (3, 5, 3), dtype=np.uint8)
            colours[array.tobytes()] = cls
            save_image(tmp_path / "pets" / cls / f"{i}.png", array)
    save_image(tmp_path / "pets" / "dog" / "grey.png", np.full((3, 5), 9, np.uint8))  # grey among colour: C = 3
    data = load_data(str(tmp_path / "pets"), test_fraction=0.25)
    assert data.shape == (3, 3, 5) and data.num_classes == 2 and len(data.train) + len(data.test) == 8
    for split in (data.train, data.test):
        for image, label in zip(split.images, split.labels):
            hwc = image.permute(1, 2, 0).contiguous().numpy().tobytes()
            expected = colours.get(hwc, "dog")  # the grey image is in dog
            assert label.item() == ["cat", "dog"].index(expected)
    grey_rows = [im for im in torch.cat([data.train.images, data.test.images]) if (im == 9).all()]
    assert len(grey_rows) == 1
    assert data.classes == ("cat", "dog")


def test_class_names_are_the_subfolders_in_label_order(tmp_path):
    from genmodels.data import write_idx

    for k, cls in enumerate(("b-zebra", "a-yak")):  # written out of order: labels follow the sorted names
        for i in range(3):
            save_image(tmp_path / "set" / cls / f"{i}.png", np.full((4, 4), 10 * k + i, np.uint8))
    (tmp_path / "set" / "0-empty").mkdir()  # no images: no class, so no label and no name
    data = load_data(str(tmp_path / "set"), test_fraction=0.5)
    assert data.classes == ("a-yak", "b-zebra") and data.num_classes == 2
    for split in (data.train, data.test):
        for image, label in zip(split.images, split.labels):
            assert data.classes[label] == ("b-zebra" if image[0, 0, 0] < 10 else "a-yak")
    write_idx(data, tmp_path / "idx")  # IDX holds no names: converted data lose them
    assert load_data(str(tmp_path / "idx")).classes is None


def test_the_data_fingerprint_ignores_class_names(digits):
    import dataclasses

    from genmodels.features import fingerprint

    named = dataclasses.replace(digits, classes=tuple(str(k) for k in range(10)))
    assert fingerprint(named) == fingerprint(digits)
    # digits' fingerprint as computed at commit fba99ac, before DataSplits had class names: the feature
    # networks trained since must still match their data.
    assert fingerprint(digits) == "310030943d923899af7f871b338d2300fb49c9c92754e37c8233d6b61c7eeb7b"


# --- every bad input: a one-line DataError with the key fact ------------------------------------


def test_missing_sources_say_where_and_how(tmp_path):
    expect_error(re.escape("apt-get install dataset-fashion-mnist"), "fashion-mnist", str(tmp_path / "none"))
    (tmp_path / "empty").mkdir()
    expect_error("train-images-idx3-ubyte.*apt-get install dataset-fashion-mnist", "fashion-mnist",
                 str(tmp_path / "empty"))
    expect_error("--data-dir", "mnist")
    expect_error(re.escape(str(tmp_path / "nope")) + ".*does not exist", "mnist", str(tmp_path / "nope"))
    expect_error("no such file or folder.*digits, fashion-mnist", tmp_path / "missing.npz")
    expect_error("digits, fashion-mnist", "cifar10")
    (tmp_path / "data.txt").write_text("1,2,3")
    expect_error("data.txt.*neither", tmp_path / "data.txt")
    expect_error("no IDX files and no images", tmp_path / "empty")
    only_train = tmp_path / "only_train"
    idx_folder(only_train)
    (only_train / "t10k-images-idx3-ubyte.gz").unlink()
    expect_error("t10k-images-idx3-ubyte", only_train)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_gzip_names_the_file(tmp_path, damage):
    idx_folder(tmp_path)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2] if damage == "truncated" else b"\x1f\x8b" + b"\x00" * 30)
    expect_error("train-labels-idx1-ubyte.gz.*re-download", tmp_path)


def test_idx_header_and_length_errors(tmp_path):
    idx_folder(tmp_path, suffix="")
    images = tmp_path / "train-images-idx3-ubyte"
    images.write_bytes(b"\x08\x03\x00\x00" + images.read_bytes()[4:])
    expect_error(r"train-images-idx3-ubyte.*magic number 0x08030000", tmp_path)
    write_idx(images, np.zeros((6, 5, 3), np.uint8), dtype_byte=0x0D)
    expect_error("train-images-idx3-ubyte.*0x0d", tmp_path)
    write_idx(images, np.zeros((6, 5, 3), np.uint8))
    full = images.read_bytes()
    images.write_bytes(full[:-7])
    expect_error("train-images-idx3-ubyte holds 83 data bytes.*needs 90.*truncated", tmp_path)
    images.write_bytes(full + b"extra")
    expect_error("train-images-idx3-ubyte holds 95 data bytes.*corrupt", tmp_path)
    images.write_bytes(b"\x00\x00\x08\x03\x00\x00")
    expect_error("train-images-idx3-ubyte.*header", tmp_path)
    write_idx(images, np.zeros((6, 5), np.uint8))
    expect_error("train-images-idx3-ubyte.*2 dimensions", tmp_path)
    write_idx(images, np.zeros((0, 5, 3), np.uint8))
    expect_error("train-images-idx3-ubyte.*zero images", tmp_path)


def test_idx_count_mismatch_and_shape_mismatch(tmp_path):
    idx_folder(tmp_path, suffix="")
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(5, np.uint8))
    expect_error("6 images.*5 labels", tmp_path)
    idx_folder(tmp_path / "b", suffix="")
    write_idx(tmp_path / "b" / "t10k-images-idx3-ubyte", np.zeros((4, 5, 4), np.uint8))
    expect_error(r"\(1, 5, 3\).*\(1, 5, 4\)", tmp_path / "b")


def test_array_value_and_shape_errors(tmp_path):
    bad = np.random.default_rng(6).random((4, 3, 3))
    bad[0, 0, :2] = np.nan
    bad[1, 1, 1] = 1.5
    bad[2, 2, 2] = -np.inf
    np.save(tmp_path / "bad.npy", bad)
    expect_error("bad.npy.* 4 values.*NaN.*outside \\[0, 1\\]", tmp_path / "bad.npy")
    np.save(tmp_path / "ints.npy", np.full((4, 3, 3), 200, np.int64))  # 8-bit data stored as int64
    expect_error("ints.npy.* 36 values.*uint8", tmp_path / "ints.npy")
    np.save(tmp_path / "shape.npy", np.zeros((4, 5, 5, 5), np.uint8))
    expect_error(re.escape("(4, 5, 5, 5)"), tmp_path / "shape.npy")
    np.save(tmp_path / "empty.npy", np.zeros((0, 1, 3, 3), np.uint8))
    expect_error("empty.npy.*zero images", tmp_path / "empty.npy")
    np.save(tmp_path / "one.npy", np.zeros((1, 1, 3, 3), np.uint8))
    expect_error("one.npy.*1 image.*too few", tmp_path / "one.npy")
    np.save(tmp_path / "text.npy", np.array([["a"]]))
    expect_error("text.npy.*not numbers", tmp_path / "text.npy")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    expect_error("objects.npy.*could not be read", tmp_path / "objects.npy")
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY not really")
    expect_error("junk.npy", tmp_path / "junk.npy")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 broken")
    expect_error("junk.npz.*could not be read", tmp_path / "junk.npz")
    expect_error("test_fraction.*0.2", "digits", test_fraction=1.0)


def test_npz_key_and_label_errors(tmp_path):
    x = np.zeros((4, 2, 2), np.uint8)
    np.savez(tmp_path / "keys.npz", data=x, target=np.arange(4))
    expect_error(re.escape("['data', 'target']") + ".*x_train.*images", tmp_path / "keys.npz")
    np.savez(tmp_path / "count.npz", x_train=x, y_train=np.arange(3))
    expect_error("count.npz.*4 images.*3 labels", tmp_path / "count.npz")
    np.savez(tmp_path / "flt.npz", images=x, labels=np.zeros(4) + 0.5)
    expect_error("flt.npz.*labels.*float64", tmp_path / "flt.npz")
    np.savez(tmp_path / "neg.npz", images=x, labels=np.array([0, -1, 2, 3]))
    expect_error("neg.npz.*non-negative", tmp_path / "neg.npz")


def test_image_folder_errors(tmp_path):
    save_image(tmp_path / "a" / "0.png", np.zeros((4, 4), np.uint8))
    save_image(tmp_path / "a" / "1.png", np.zeros((4, 6), np.uint8))
    message = expect_error("1.png is 6x4 but .*0.png is 4x4", tmp_path / "a")
    assert str(tmp_path / "a" / "1.png") in message
    save_image(tmp_path / "b" / "0.png", np.zeros((4, 4), np.uint8))
    (tmp_path / "b" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    expect_error("1.png could not be read as an image", tmp_path / "b")
    good = save_image(tmp_path / "c" / "0.jpg", np.zeros((16, 16, 3), np.uint8))
    (tmp_path / "c" / "1.jpg").write_bytes(good.read_bytes()[:-100])  # truncated jpeg
    expect_error("1.jpg could not be read as an image", tmp_path / "c")
    save_image(tmp_path / "d" / "x.png", np.zeros((4, 4), np.uint8))
    save_image(tmp_path / "d" / "cls" / "y.png", np.zeros((4, 4), np.uint8))
    expect_error("mixes image files with class subfolders", tmp_path / "d")
    Image.fromarray(np.zeros((4, 4), np.uint16)).save(tmp_path / "e.png")
    (tmp_path / "e").mkdir()
    (tmp_path / "e.png").rename(tmp_path / "e" / "deep.png")
    expect_error("deep.png.*8-bit", tmp_path / "e")


def test_convert_writes_idx_that_loads_back_memory_mapped(tmp_path, digits):
    import sys

    from genmodels.data import write_idx

    folder = tmp_path / "digits-idx"
    written = write_idx(digits, folder)
    assert sorted(p.name for p in written) == ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
                                               "train-images-idx3-ubyte", "train-labels-idx1-ubyte"]
    back = load_data(str(folder))
    for a, b in ((digits.train, back.train), (digits.test, back.test)):
        assert b.images.dtype == torch.uint8 and b.shape == a.shape
        expected = (a.images * 255).round() / 255  # floats become bytes: the nearest 1/255
        assert torch.allclose(b.batch(slice(0, len(b))), expected, atol=1e-6)
        assert torch.equal(a.labels, b.labels)
    if sys.platform.startswith("linux"):  # the images are a file mapping, not a copy in memory
        maps = open("/proc/self/maps").read()
        assert str((folder / "train-images-idx3-ubyte").resolve()) in maps


def test_convert_colour_images_round_trip_as_idx4(tmp_path):
    from genmodels.data import write_idx

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 3, 5, 4), dtype=np.uint8)
    np.savez(tmp_path / "rgb.npz", images=images, labels=np.arange(12) % 3)
    data = load_data(str(tmp_path / "rgb.npz"))
    write_idx(data, tmp_path / "rgb-idx")
    assert (tmp_path / "rgb-idx" / "train-images-idx4-ubyte").is_file()
    back = load_data(str(tmp_path / "rgb-idx"))
    assert torch.equal(back.train.images, data.train.images) and torch.equal(back.test.labels, data.test.labels)


def test_convert_command_and_its_errors(tmp_path, capsys):
    from genmodels.cli import main

    assert main(["data", "convert", "digits", "--out", str(tmp_path / "d")]) == 0
    assert "memory-mapped" in capsys.readouterr().out
    (tmp_path / "file").write_text("x")
    assert main(["data", "convert", "digits", "--out", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_npy_is_memory_mapped_and_split_without_copying(tmp_path):
    import sys

    rng = np.random.default_rng(5)
    array = rng.integers(0, 256, (40, 6, 5), dtype=np.uint8)
    np.save(tmp_path / "big.npy", array)
    data = load_data(str(tmp_path / "big.npy"), test_fraction=0.25)
    assert len(data.train) == 30 and len(data.test) == 10
    assert data.train.images.shape[0] == 40  # both splits index the one stored (mapped) array
    rows = torch.cat([data.train.rows, data.test.rows])
    assert sorted(rows.tolist()) == list(range(40))
    expected = torch.from_numpy(array[data.test.rows.numpy()]).unsqueeze(1).float() / 255
    assert torch.equal(data.test.batch(slice(0, 10)), expected)
    assert torch.equal(data.test.batch(torch.tensor([3, 0])), expected[[3, 0]])
    if sys.platform.startswith("linux"):
        assert str((tmp_path / "big.npy").resolve()) in open("/proc/self/maps").read()
