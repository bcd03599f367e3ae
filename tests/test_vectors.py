"""Vector data (N, D) as data (issue 29): each source loads (the 2-D toys, .npy, .npz, CSV), the standardiser's
statistics and round trip, and every bad input refused in one sentence. Training and the commands on vector runs
are tests/test_vector_runs.py's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genmodels.data import load_data
from genmodels.dataset import Dataset, DataSplits, Standardiser
from genmodels.errors import DataError
from genmodels.toy import TOYS


def refused(pattern: str, source, **kwargs) -> str:
    """load_data must refuse `source` with a DataError matching pattern, in one sentence."""
    with pytest.raises(DataError, match=pattern) as info:
        load_data(str(source), **kwargs)
    message = str(info.value)
    assert "\n" not in message and message.endswith("."), message
    return message


def mapped_from(t: torch.Tensor, path) -> bool:
    """Whether tensor t's memory lies in a mapping of the file `path` (Linux: /proc/self/maps)."""
    address = t.data_ptr()
    for line in open("/proc/self/maps").read().splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[-1] == str(path):
            start, end = (int(h, 16) for h in fields[0].split("-"))
            if start <= address < end:
                return True
    return False


def vectors(n: int = 300, d: int = 8, seed: int = 0) -> np.ndarray:
    """Vectors far from standard units: column j has mean 10 j and std j + 1."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, d)) * (np.arange(d) + 1) + 10 * np.arange(d)).astype(np.float32)


# -- each source ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TOYS))
def test_each_toy_loads_as_2d_vectors_with_its_components_as_labels(name):
    data = load_data(name, toy_size=250)
    assert data.kind == "vectors" and data.shape == (2,) and (len(data.train), len(data.test)) == (250, 50)
    classes = TOYS[name].classes
    if classes:
        assert data.num_classes == classes and data.classes is not None and len(data.classes) == classes
    else:
        assert data.train.labels is None and data.classes is None
    again = load_data(name, toy_size=250)
    assert torch.equal(again.train.images, data.train.images)  # seeded: the same points every time
    assert not torch.equal(load_data(name, toy_size=250, split_seed=1).train.images, data.train.images)


def test_toy_default_sizes_are_ten_and_two_thousand():
    data = load_data("ring8")
    assert (len(data.train), len(data.test)) == (10_000, 2_000)


def test_a_npy_of_float32_vectors_stays_memory_mapped(tmp_path):
    a = vectors()
    np.save(tmp_path / "v.npy", a)
    data = load_data(str(tmp_path / "v.npy"))
    assert data.kind == "vectors" and data.shape == (8,) and len(data.train) + len(data.test) == 300
    # Both splits index rows of the one mapped array: nothing was copied.
    assert data.train.rows is not None and data.train.images.data_ptr() == data.test.images.data_ptr()
    assert mapped_from(data.train.images, tmp_path / "v.npy")  # the file's own pages, not a copy
    rows = data.train.rows.numpy()
    np.testing.assert_array_equal(data.train.stored().numpy(), a[rows])


def test_a_npz_of_vectors_keeps_its_splits_and_labels(tmp_path):
    a, b = vectors(200).astype(np.float64), vectors(50, seed=1).astype(np.float64)
    np.savez(tmp_path / "v.npz", x_train=a, y_train=np.arange(200) % 3, x_test=b, y_test=np.arange(50) % 3)
    data = load_data(str(tmp_path / "v.npz"))
    assert data.shape == (8,) and data.train.images.dtype == torch.float32 and data.num_classes == 3
    np.testing.assert_allclose(data.test.stored().numpy(), b, rtol=1e-6)


def test_a_csv_with_a_header_and_a_label_column_of_names(tmp_path):
    a = vectors(60, 3)
    names = ["setosa", "virginica", "versicolor"]
    lines = ["a,b,species,c"] + [f"{x:.6f},{y:.6f},{names[i % 3]},{z:.6f}" for i, (x, y, z) in enumerate(a)]
    (tmp_path / "v.csv").write_text("\n".join(lines) + "\n")
    data = load_data(str(tmp_path / "v.csv"), label_column="species")
    assert data.shape == (3,) and data.classes == tuple(sorted(names)) and data.num_classes == 3
    every = torch.cat([data.train.stored(), data.test.stored()])
    labels = torch.cat([data.train.labels, data.test.labels])
    order = every[:, 0].argsort()
    np.testing.assert_allclose(every[order].numpy(), a[np.argsort(a[:, 0])], atol=1e-5)
    expect = torch.tensor([sorted(names).index(names[i % 3]) for i in np.argsort(a[:, 0])])
    assert torch.equal(labels[order], expect)


def test_a_csv_with_integer_labels_and_one_without_labels(tmp_path):
    lines = ["x,y,label"] + [f"{i},{i * i % 7},{i % 2}" for i in range(30)]
    (tmp_path / "v.csv").write_text("\n".join(lines))
    data = load_data(str(tmp_path / "v.csv"), label_column="label")
    assert data.shape == (2,) and data.classes is None and data.num_classes == 2
    (tmp_path / "u.csv").write_text("\n".join(line.rsplit(",", 1)[0] for line in lines))
    assert load_data(str(tmp_path / "u.csv")).train.labels is None


# -- standardisation -------------------------------------------------------------------------------------


def test_the_standardiser_holds_the_training_splits_mean_and_std_and_round_trips(tmp_path):
    a = vectors(20_000, 4)  # more rows than one block of the streamed statistics
    np.save(tmp_path / "v.npy", a)
    data = load_data(str(tmp_path / "v.npy"))
    train = a[data.train.rows.numpy()].astype(np.float64)
    unit = data.standardiser
    np.testing.assert_allclose(unit.mean.numpy(), train.mean(0), rtol=1e-12)
    np.testing.assert_allclose(unit.std.numpy(), train.std(0), rtol=1e-10)
    assert data.test.standardiser is unit  # the test split is standardised with the training split's numbers
    x = data.train.batch(slice(0, 5000))  # what a model sees: about zero mean and unit std
    assert x.mean(0).abs().max() < 0.05 and (x.std(0) - 1).abs().max() < 0.05
    back = unit.inverse(data.test.batch(slice(0, 100)))
    np.testing.assert_allclose(back.numpy(), data.test.stored(slice(0, 100)).numpy(), rtol=1e-5, atol=1e-4)
    again = Standardiser.from_config(unit.to_config())
    assert torch.equal(again.mean, unit.mean) and torch.equal(again.std, unit.std)


def test_a_standardiser_given_is_kept_and_images_get_none(digits):
    x = torch.from_numpy(vectors(100, 2))
    given = Standardiser(torch.zeros(2, dtype=torch.float64), torch.full((2,), 2.0, dtype=torch.float64))
    data = DataSplits(Dataset(x[:80], None, "t", standardiser=given), Dataset(x[80:], None, "s"), "mem")
    assert data.test.standardiser is given and torch.allclose(data.train.batch(slice(0, 3)), x[:3] / 2)
    assert digits.standardiser is None and digits.kind == "images"


# -- refusals, one sentence each ------------------------------------------------------------------------------


def test_a_constant_column_is_refused(tmp_path):
    a = vectors()
    a[:, 3] = 7.0
    np.save(tmp_path / "c.npy", a)
    refused(r"constant column.*column 3 is 7 in every row.*drop them", tmp_path / "c.npy")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_rows_with_nan_or_infinity_are_refused(tmp_path, bad):
    a = vectors()
    a[[5, 17], 2] = bad
    np.save(tmp_path / "n.npy", a)
    refused(r"2 row\(s\) holding NaN or infinity.*remove or fill", tmp_path / "n.npy")


def test_a_1d_array_is_refused(tmp_path):
    np.save(tmp_path / "one.npy", np.arange(50, dtype=np.float32))
    refused(r"is 1-D \(shape \(50,\)\).*reshape\(-1, 1\)", tmp_path / "one.npy")


def test_a_csv_with_a_text_cell_is_refused(tmp_path):
    (tmp_path / "t.csv").write_text("a,b\n1,2\n3,hello\n5,6\n")
    refused(r"line 3 column 'b' holds 'hello', not a number.*--label-column", tmp_path / "t.csv")


def test_a_ragged_csv_is_refused(tmp_path):
    (tmp_path / "r.csv").write_text("a,b,c\n1,2,3\n4,5\n6,7,8\n")
    refused(r"line 3 has 2 cells but the header names 3 columns", tmp_path / "r.csv")


def test_a_csv_without_a_header_or_the_label_column_named_is_refused(tmp_path):
    (tmp_path / "h.csv").write_text("1,2\n3,4\n")
    refused(r"row of numbers, not column names; add a header", tmp_path / "h.csv")
    (tmp_path / "l.csv").write_text("a,b\n1,2\n3,4\n")
    refused(r"no column 'kind' for --label-column; its columns are a, b", tmp_path / "l.csv", label_column="kind")


def test_a_csv_larger_than_max_data_gb_is_refused_before_it_is_parsed(tmp_path):
    (tmp_path / "big.csv").write_text("a,b\n" + "1,2\n" * 1000)
    refused(r"big.csv .* parsed would take .* over the --max-data-gb limit.*\.npy", tmp_path / "big.csv",
            max_data_gb=1e-6)


def test_vector_splits_of_other_widths_are_refused():
    x = torch.from_numpy(vectors(20, 3))
    with pytest.raises(DataError, match="vectors of the same width"):
        DataSplits(Dataset(x, None, "a"), Dataset(x[:, :2].contiguous(), None, "b"), "mem")


def test_a_bad_toy_size_is_refused_in_one_sentence():
    refused(r"--toy-size 0 is not a size of toy data", "ring8", toy_size=0)


def test_vector_data_are_not_converted_to_idx_images(tmp_path):
    from genmodels.data import write_idx

    with pytest.raises(DataError, match=r"holds vectors \(N, D\), not images.*\.npy"):
        write_idx(load_data("ring8", toy_size=20), tmp_path / "idx")
    assert not (tmp_path / "idx").exists()


def test_toy_size_and_label_column_given_for_other_data_are_refused(tmp_path):
    refused(r"--toy-size sizes a 2-D toy .*not digits; drop it", "digits", toy_size=100)
    np.save(tmp_path / "v.npy", vectors())
    refused(r"--label-column names a column of a .csv file, not of .*v.npy; drop it", tmp_path / "v.npy",
            label_column="y")


def test_a_training_split_of_one_vector_is_refused_as_too_few(tmp_path):
    (tmp_path / "two.csv").write_text("a,b\n1,2\n3,4\n")
    refused(r"two.csv/train holds 1 vector\(s\), too few to standardise", tmp_path / "two.csv")
