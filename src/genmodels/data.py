"""Data sources -> one image tensor per split, in memory or memory-mapped, plus labels (the types that hold
them, `Dataset` and `DataSplits`, and their fingerprint are in `dataset.py`, re-exported here). Vector data (N, D)
(the 2-D toys, 2-D arrays in .npy/.npz files, CSV files) are read by `vectordata.py` and split here.

Every source (scikit-learn digits, IDX folders such as MNIST and Fashion-MNIST,
.npy/.npz arrays, folders of image files) ends as a `DataSplits` of two
`Dataset`s whose images are one (N, C, H, W) tensor: uint8 when the source is
8-bit (a quarter of the memory of float32; converted per batch), float32 in
[0, 1] otherwise. Uncompressed IDX files, and .npy files of uint8 or float32
images in (N, H, W) or (N, C, H, W) layout, stay memory-mapped, so a split
larger than memory is read a batch at a time; the other sources are read into
memory. Everything is checked here, at the boundary (the files
themselves by `datafiles`), and every bad input raises a one-sentence
`DataError` (docs/ARCHITECTURE.md, "Errors").
"""

from __future__ import annotations

import difflib
import itertools
import os
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from .datafiles import MAX_CLASSES, check_fits, list_folder, one_line, read_idx, read_image, read_npy, read_npz
from .dataset import Batch, Dataset, DataSplits, fingerprint
from .errors import DataError
from .fileio import atomic_write, check_length, write_error
from .toy import TOYS
from .vectordata import load_toy, read_csv_vectors, refuse_1d, vectors_from_array

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
# Fashion-MNIST's class names in label order, as its README lists them (/usr/share/doc/dataset-fashion-mnist).
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
BUILT_IN = ("digits", "fashion-mnist", "mnist", *TOYS)  # the sources load_data knows by name

__all__ = ["ACCEPTED", "BUILT_IN", "Batch", "DataSplits", "Dataset", "fingerprint", "in_memory_name", "load_data",
           "write_idx"]

ACCEPTED = ("digits, fashion-mnist, mnist (with a data directory), a 2-D toy (" + ", ".join(TOYS) + "), a folder "
            "of IDX files, a folder of images (flat or one subfolder per class), a .npy/.npz file of images or of "
            "vectors (N, D), or a .csv file of vectors")


def in_memory_name(source: str) -> bool:
    """Whether `source` names no data load_data could read: not a built-in name, no path (no separator) and
    no such file here; the name a Python caller gave data passed in memory (DataSplits.source)."""
    return (source not in BUILT_IN and "/" not in source and os.sep not in source
            and not os.path.lexists(Path(source).expanduser()))


def load_data(source: str, data_dir: str | None = None, *, test_fraction: float = 0.2,
              split_seed: int = 0, max_data_gb: float | None = None, toy_size: int | None = None,
              label_column: str | None = None) -> DataSplits:
    """Load `source` into memory as train/test splits.

    Sources with an official split (IDX folders, npz with x_test) keep it; the rest are split
    by a permutation seeded with `split_seed` alone, so the split never depends on a training seed.
    data_dir: the IDX folder for fashion-mnist (default FASHION_MNIST_DIR) and mnist (required).
    max_data_gb: the most data read into memory rather than memory-mapped (decompressed, decoded or converted),
    in GB; None: datafiles.DEFAULT_MAX_DATA_GB. Never more than the memory available (datafiles.check_fits).
    toy_size: the training points of a toy (toy.TOYS; the test split holds a fifth as many; None: 10,000 and 2,000).
    label_column: the CSV column that holds the labels (None: no labels).
    """
    if not isinstance(source, (str, os.PathLike)) or not str(source).strip():
        raise DataError(f"data source {source!r} is not a name or path; use {ACCEPTED}.")
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
        raise DataError(f"test_fraction must be a number strictly between 0 and 1, got {test_fraction!r}; "
                        "use e.g. 0.2.")
    if isinstance(split_seed, bool) or not isinstance(split_seed, int) or split_seed < 0:
        raise DataError(f"split_seed must be a non-negative integer, got {split_seed!r}; use e.g. 0.")
    if max_data_gb is not None and (isinstance(max_data_gb, bool) or not isinstance(max_data_gb, (int, float))
                                    or not 0 < max_data_gb < float("inf")):
        raise DataError(f"max_data_gb must be a positive number of gigabytes, got {max_data_gb!r}; use e.g. 4.")
    split, limit = (float(test_fraction), split_seed), max_data_gb
    name = str(source)
    if toy_size is not None and name not in TOYS:
        raise DataError(f"--toy-size sizes a 2-D toy ({', '.join(TOYS)}), not {name}; drop it for this data.")
    if label_column is not None and not name.lower().endswith(".csv"):
        raise DataError(f"--label-column names a column of a .csv file, not of {name}; drop it for this data.")
    if name == "digits":
        return _load_digits(split)
    if name in TOYS:
        return load_toy(name, toy_size, split_seed)
    if name == "fashion-mnist":
        return _load_idx_dir(Path(data_dir or FASHION_MNIST_DIR), name, name, limit)
    if name == "mnist":
        if data_dir is None:
            raise DataError("mnist has no default folder; pass --data-dir (data_dir=...) naming a folder "
                            "with train-images-idx3-ubyte.gz and the other MNIST IDX files.")
        return _load_idx_dir(Path(data_dir), name, name, limit)
    path = Path(name).expanduser()
    try:
        is_dir = stat.S_ISDIR(os.stat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        close = difflib.get_close_matches(name.lower().replace("_", "-"), BUILT_IN, n=1, cutoff=0.6)
        use = f"did you mean {close[0]}? (use {ACCEPTED})" if close else f"use {ACCEPTED}."
        raise DataError(f"data source {name!r} is not a known name and no such file or folder exists; {use}") from None
    except OSError as e:
        raise DataError(f"data source {path} could not be reached ({(e.strerror or one_line(e)).lower()}); "
                        "check its permissions and those of the folders above it.") from None
    if is_dir:
        names = list_folder(path)
        if _find_idx(path, "train", "images", names) is not None:
            return _load_idx_dir(path, name, path.name, limit)
        return _load_image_folder(path, name, split, names, limit)
    if path.suffix.lower() == ".npy":  # read_npy refuses a FIFO or device with this name
        return _load_npy(path, name, split, limit)
    if path.suffix.lower() == ".npz":
        return _load_npz(path, name, split, limit)
    if path.suffix.lower() == ".csv":
        vectors, labels, classes = read_csv_vectors(path, label_column, limit)
        return _seeded_split(vectors, labels, name, path.name, split, classes=classes)
    raise DataError(f"{path} is neither a .npy/.npz/.csv file nor a folder; use {ACCEPTED}.")


# --- splitting ---------------------------------------------------------------------------------


def _seeded_split(images: torch.Tensor, labels: torch.Tensor | None, source: str, tag: str,
                  split: tuple[float, int], copy: bool = True,
                  classes: tuple[str, ...] | None = None) -> DataSplits:
    """Split (N, C, H, W) images into train/test by a permutation seeded only by split_seed.

    Both splits keep the permuted order, so the first test images mix classes even when the
    source was sorted by class (image subfolders), which makes preview grids representative.
    copy=False leaves the images where they are (a memory map) and gives each split its rows."""
    test_fraction, seed = split
    n = images.shape[0]
    if n < 2:
        raise DataError(f"{source} holds {n} image(s), too few to split into train and test; add more images.")
    n_test = min(max(round(n * test_fraction), 1), n - 1)
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(n))
    test_idx, train_idx = perm[:n_test], perm[n_test:]
    pick = (lambda idx: None) if labels is None else (lambda idx: labels[idx])
    if not copy:
        return DataSplits(Dataset(images, pick(train_idx), f"{tag}/train", train_idx),
                          Dataset(images, pick(test_idx), f"{tag}/test", test_idx), source, classes)
    return DataSplits(Dataset(images[train_idx], pick(train_idx), f"{tag}/train"),
                      Dataset(images[test_idx], pick(test_idx), f"{tag}/test"), source, classes)


def _load_digits(split: tuple[float, int]) -> DataSplits:
    from sklearn.datasets import load_digits  # imported here: scikit-learn is slow to import

    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16).unsqueeze(1)  # (1797, 1, 8, 8), 0..16 -> [0, 1]
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    return _seeded_split(images, labels, "digits", "digits", split)


# --- IDX (MNIST layout) ------------------------------------------------------------------------


def _find_idx(folder: Path, split: str, kind: str, names: dict[str, bool]) -> Path | None:
    """The IDX file for split ('train'/'t10k') and kind ('images'/'labels'), plain or gzipped
    (colour images, as `genmodels data convert` writes them, are idx4). Whatever has such a name is
    returned, a FIFO or a folder included, so that reading it refuses it rather than skipping it.
    names: the folder's entries (list_folder)."""
    for name in _idx_names(split, kind):
        if name in names:
            return folder / name
    return None


def _idx_names(split: str, kind: str) -> list[str]:
    return [stem + suffix for dims in ((3, 4) if kind == "images" else (1,))
            for stem in (f"{split}-{kind}-idx{dims}-ubyte", f"{split}-{kind}.idx{dims}-ubyte")
            for suffix in ("", ".gz")]


def idx_files(folder: Path, source: str) -> Iterator[tuple[Path, Path | None]]:
    """The (images, labels or None) IDX files of the train and then the test split of an IDX folder, plain or
    gzipped; a one-sentence DataError where the folder or an images file is missing (found one split at a time,
    so the train split's files are read, and refused if bad, before the test split's are looked for)."""
    hint = ("install it with `apt-get install dataset-fashion-mnist` (as root) or pass --data-dir"
            if source == "fashion-mnist" else "pass --data-dir naming the folder that holds the IDX files")
    if not folder.is_dir():
        raise DataError(f"{source} data was not found: {folder} does not exist or is not a folder; {hint}.")
    names = list_folder(folder)
    for split in ("train", "t10k"):
        images_path = _find_idx(folder, split, "images", names)
        if images_path is None:
            raise DataError(f"{source} data was not found: {folder} has no {split}-images-idx3-ubyte[.gz]; {hint}.")
        yield images_path, _find_idx(folder, split, "labels", names)


def idx_folder_of(source: str, data_dir: str | None = None) -> Path | None:
    """The IDX folder a data source names (load_data's rules: fashion-mnist, mnist with data_dir, a folder holding
    train images in IDX), or None for any other source."""
    if source in ("fashion-mnist", "mnist"):
        return Path(data_dir or FASHION_MNIST_DIR) if source == "fashion-mnist" or data_dir else None
    path = Path(source).expanduser()
    if source in BUILT_IN or not path.is_dir():
        return None
    return path if _find_idx(path, "train", "images", list_folder(path)) is not None else None


def idx_classes(folder: Path, source: str) -> tuple[str, ...] | None:
    """The class names of an IDX folder: Fashion-MNIST's where the folder is known to be Fashion-MNIST (the
    built-in source, or its own folder); None otherwise, as IDX files hold none."""
    known = source == "fashion-mnist" or folder.resolve() == Path(FASHION_MNIST_DIR).resolve()
    return FASHION_MNIST_CLASSES if known else None


def _load_idx_dir(folder: Path, source: str, tag: str, limit: float | None = None) -> DataSplits:
    splits = []
    for (images_path, labels_path), label in zip(idx_files(folder, source), ("train", "test"), strict=True):
        images = _tensor(read_idx(images_path, (3, 4), limit))  # memory-mapped if plain
        images = images.unsqueeze(1) if images.ndim == 3 else images  # (N, C, H, W)
        _check_not_empty(images.shape, images_path)
        labels = None
        if labels_path is not None:
            labels = torch.from_numpy(read_idx(labels_path, (1,), limit).astype(np.int64))
            _check_counts(images.shape[0], images_path, labels.shape[0], labels_path)
        splits.append(Dataset(images, labels, f"{tag}/{label}"))
    if splits[0].shape != splits[1].shape:
        raise DataError(f"{folder} has train images of shape {splits[0].shape} but test images of shape "
                        f"{splits[1].shape}; both splits must come from the same dataset.")
    return DataSplits(splits[0], splits[1], source, idx_classes(folder, source))


# --- .npy / .npz -------------------------------------------------------------------------------


def _load_npy(path: Path, source: str, split: tuple[float, int], limit: float | None) -> DataSplits:
    """A .npy file, memory-mapped (read-only), so larger-than-memory arrays work; uint8 or
    float32 images in (N, H, W) or (N, C, H, W) layout stay in the map, others are converted."""
    array = read_npy(path)
    images = _images_from_array(array, path, "the array", limit)  # or vectors, for a 2-D array
    return _seeded_split(images, None, source, path.name, split, copy=not isinstance(array, np.memmap))


def _npz_keys(path: Path, keys: list[str]) -> list[str]:
    """The arrays of a .npz archive to read, by the layout its keys name."""
    for layout in (("x_train", "y_train", "x_test", "y_test"), ("images", "labels")):
        if layout[0] in keys:
            return [k for k in layout if k in keys]
    raise DataError(f"{path} has keys {keys} but expected x_train (with optional y_train, x_test, "
                    "y_test) or images (with optional labels); save the arrays under those names.")


def _load_npz(path: Path, source: str, split: tuple[float, int], limit: float | None) -> DataSplits:
    arrays = read_npz(path, lambda keys: _npz_keys(path, keys), limit)
    if "x_train" in arrays:
        train = _dataset_from_arrays(arrays, "x_train", "y_train", path, f"{path.name}/train")
        if "x_test" not in arrays:
            return _seeded_split(train.images, train.labels, source, path.name, split)
        test = _dataset_from_arrays(arrays, "x_test", "y_test", path, f"{path.name}/test")
        if train.shape != test.shape:
            raise DataError(f"{path} has x_train images of shape {train.shape} but x_test images of shape "
                            f"{test.shape}; both splits must have the same image shape.")
        return DataSplits(train, test, source)
    data = _dataset_from_arrays(arrays, "images", "labels", path, path.name)
    return _seeded_split(data.images, data.labels, source, path.name, split)


def _dataset_from_arrays(arrays: dict, x_key: str, y_key: str, path: Path, name: str) -> Dataset:
    images = _images_from_array(arrays[x_key], path, f"array {x_key}")  # read whole already: no copy to check
    labels = None
    if y_key in arrays:
        y = arrays[y_key]
        if y.ndim != 1 or y.dtype.kind not in "iu" or (y.size and y.min() < 0):
            raise DataError(f"{path} array {y_key} must be one non-negative integer label per image, got "
                            f"dtype {y.dtype} and shape {y.shape}; store labels as a 1-D integer array.")
        if y.size and int(y.max()) >= MAX_CLASSES:
            raise DataError(f"{path} array {y_key} holds label {int(y.max())} but labels must be non-negative class "
                            f"indices under {MAX_CLASSES:,}; number the classes 0, 1, 2, ...")
        _check_counts(images.shape[0], f"{path} array {x_key}", y.shape[0], f"array {y_key}")
        labels = torch.from_numpy(y.astype(np.int64))
    return Dataset(images, labels, name)


def _images_from_array(a: np.ndarray, path: Path, what: str, limit: float | None = None) -> torch.Tensor:
    """(N, H, W), (N, C, H, W) or (N, H, W, C) with C in {1, 3} -> (N, C, H, W); NCHW wins ties; (N, D): vectors
    (vectordata.vectors_from_array). A memory-mapped
    array that must be copied to be used (another dtype than uint8 or float32, or channels last) is copied only
    once the copy fits in memory (datafiles.check_fits with limit, data.max_data_gb)."""
    refuse_1d(a, path, what)
    if a.ndim == 2:
        return vectors_from_array(a, path, what, limit)
    if a.dtype.kind not in "buif":
        raise DataError(f"{path} {what} holds {a.dtype} values, not numbers; "
                        "store images as uint8 or floats in [0, 1].")
    if a.ndim == 3:
        a = a[:, None]
    elif a.ndim == 4 and a.shape[1] not in (1, 3) and a.shape[3] in (1, 3):
        a = a.transpose(0, 3, 1, 2)
    elif a.ndim != 4 or a.shape[1] not in (1, 3):
        raise DataError(f"{path} {what} has shape {a.shape}; expected (N, H, W), (N, C, H, W) or (N, H, W, C) "
                        "with C = 1 or 3, so reshape it.")
    _check_not_empty(a.shape, f"{path} {what}")
    if isinstance(a, np.memmap) and not (a.dtype in (np.uint8, np.float32) and a.flags.c_contiguous):
        check_fits(a.size * (1 if a.dtype == np.uint8 else 4), f"{path} {what} ({a.dtype}, shape {a.shape}) copied",
                   limit, "save it as uint8 or float32 images in (N, H, W) or (N, C, H, W) layout, which are "
                   "memory-mapped as they are")
    if a.dtype == np.uint8:
        return _tensor(np.ascontiguousarray(a))
    # NaN fails both comparisons, so it is counted as bad along with +-inf and out-of-range values. By blocks of
    # rows, so the comparisons' temporaries stay small for a memory-mapped array larger than memory.
    blocks = (a[i:i + 4096] for i in range(0, len(a), 4096))
    bad = sum(int(b.size - np.count_nonzero((b >= 0) & (b <= 1))) for b in blocks)
    if bad:
        raise DataError(f"{path} {what} has {bad} values that are NaN, infinite or outside [0, 1]; "
                        "store 8-bit images as uint8 or scale float images into [0, 1].")
    return _tensor(np.ascontiguousarray(a, dtype=np.float32))


def _tensor(a: np.ndarray) -> torch.Tensor:
    """A tensor sharing a's memory. An array memory-mapped read-only (datafiles.read_idx, read_npy) gives a tensor
    torch warns it cannot write to; genmodels never writes a dataset's images in place (Dataset.batch returns new
    tensors), so that one warning is silenced, here only."""
    if a.flags.writeable:
        return torch.from_numpy(a)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(a)


# --- folders of image files --------------------------------------------------------------------


def _image_files(folder: Path, names: dict[str, bool]) -> list[Path]:
    """The image files of one folder, by name: whatever is not a folder counts, so that reading a FIFO
    or a device named like an image refuses it rather than skipping it."""
    return sorted(folder / n for n, is_dir in names.items()
                  if not is_dir and not n.startswith(".") and Path(n).suffix.lower() in IMAGE_SUFFIXES)


def _load_image_folder(folder: Path, source: str, split: tuple[float, int], names: dict[str, bool],
                       limit: float | None = None) -> DataSplits:
    """Flat folder (no labels) or one subfolder per class (label = index among the sorted subfolders
    that hold images; the class names are those subfolders' names).
    Only one level of subfolders is listed; a subfolder that cannot be listed is refused if any images
    are found, since it may hold a class."""
    flat = _image_files(folder, names)
    classes, unreadable = [], []
    for sub in sorted(n for n, is_dir in names.items() if is_dir and not n.startswith(".")):
        try:
            files = _image_files(folder / sub, list_folder(folder / sub))
        except DataError:
            unreadable.append(folder / sub)
            continue
        if files:
            classes.append((sub, files))
    if flat and classes:
        raise DataError(f"{folder} mixes image files with class subfolders ({classes[0][0]}, ...); "
                        "move the loose images into a class subfolder or elsewhere.")
    if (flat or classes) and unreadable:
        raise DataError(f"{folder} holds images but its subfolder {unreadable[0]} cannot be listed; "
                        "make it readable or move it elsewhere.")
    if classes:
        files = [f for _, fs in classes for f in fs]
        labels = torch.cat([torch.full((len(fs),), k, dtype=torch.int64) for k, (_, fs) in enumerate(classes)])
    else:
        files, labels = flat, None
    if not files:
        raise DataError(f"{folder} holds no IDX files and no images ({', '.join(IMAGE_SUFFIXES)}); "
                        f"point the data source at a folder that does, or use {ACCEPTED}.")
    class_names = tuple(sub for sub, _ in classes) or None
    return _seeded_split(_read_images(files, limit), labels, source, folder.name, split, classes=class_names)


def _read_images(files: list[Path], limit: float | None = None) -> torch.Tensor:
    """Decode files into one uint8 tensor: (N, 1, H, W) if every image is grey, else (N, 3, H, W)."""
    out: np.ndarray | None = None  # (N, 3, H, W), filled in place; grey images are copied to all channels
    all_grey = True
    for i, path in enumerate(files):
        pixels, grey = read_image(path)  # (H, W) or (H, W, 3)
        size = pixels.shape[1], pixels.shape[0]
        if out is None:
            first, first_size = path, size
            check_fits(len(files) * 3 * size[0] * size[1], f"{len(files)} images of {size[0]}x{size[1]} decoded",
                       limit, "use fewer or smaller images")
            out = np.empty((len(files), 3, size[1], size[0]), dtype=np.uint8)
        elif size != first_size:
            raise DataError(f"{path} is {size[0]}x{size[1]} but {first} is {first_size[0]}x{first_size[1]}; "
                            "resize all images to one size.")
        if not grey:
            # Palette and RGB images whose channels agree are grey in content, so they stay C = 1.
            grey = bool((pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all())
            pixels = pixels.transpose(2, 0, 1)
        out[i] = pixels
        all_grey &= grey
    images = torch.from_numpy(out)
    return images[:, :1].contiguous() if all_grey else images


# --- shared checks -----------------------------------------------------------------------------


def _check_not_empty(shape: tuple[int, ...], where) -> None:
    """(N, C, H, W) must hold at least one image of at least one pixel."""
    n, c, h, w = (int(d) for d in shape)
    if n == 0:
        raise DataError(f"{where} holds zero images; use a data source with at least one image.")
    if not c * h * w:
        raise DataError(f"{where} holds images of {h}x{w} pixels with {c} channel(s), which are empty; "
                        "use images of at least 1x1 pixel.")


def _check_counts(n_images: int, images_where, n_labels: int, labels_where) -> None:
    if n_images != n_labels:
        raise DataError(f"{images_where} holds {n_images} images but {labels_where} holds {n_labels} labels; "
                        "use matching images and labels.")


# --- conversion -----------------------------------------------------------------------------------


def write_idx(data: DataSplits, folder: str | Path) -> list[Path]:
    """Write both splits as uncompressed IDX files (train-*, t10k-*), which load memory-mapped.

    Images become unsigned bytes: uint8 as they are, floats in [0, 1] rounded to the nearest 1/255.
    Grey images are written (N, H, W), colour ones (N, C, H, W); labels (N,) must lie in 0..255.
    IDX holds no class names, so `data.classes` is not kept. Nothing is overwritten: a folder already holding
    an IDX file is refused before anything is written. Each file is written to a temporary name and renamed
    into place."""
    folder = Path(folder)
    if data.kind == "vectors":
        raise DataError(f"{data.source} holds vectors (N, D), not images, and IDX files hold 8-bit images; keep "
                        "vectors as a float32 .npy file (numpy.save), which is memory-mapped as it is.")
    check_out_folder(folder)
    files: list[tuple[str, Dataset | torch.Tensor]] = []
    for split, ds in (("train", data.train), ("t10k", data.test)):
        if ds.labels is not None and len(ds.labels) and (int(ds.labels.min()) < 0 or int(ds.labels.max()) > 255):
            raise DataError(f"{ds.name} has labels outside 0..255, which IDX bytes cannot hold; "
                            "relabel the classes 0..255 first.")
        c = ds.shape[0]
        files.append((f"{split}-images-idx{3 if c == 1 else 4}-ubyte", ds))
        if ds.labels is not None:
            files.append((f"{split}-labels-idx1-ubyte", ds.labels))
    check_out_folder(folder, create=True)
    written = []
    for name, source in files:
        dims: tuple[int, ...]
        if isinstance(source, Dataset):
            c = source.shape[0]
            dims = (len(source), *source.shape[1:]) if c == 1 else (len(source), *source.shape)
        else:
            dims = (len(source),)
        header = bytes([0, 0, 0x08, len(dims)]) + b"".join(int(d).to_bytes(4, "big") for d in dims)
        atomic_write(folder / name, itertools.chain([header], _idx_bytes(source)))  # chunk by chunk, never whole
        written.append(folder / name)
    return written


def check_out_folder(folder: Path, create: bool = False) -> None:
    """Refuse an --out for IDX files that is a file or already holds an IDX file (any IDX name a later load could
    pick up, not only the ones written now: nothing is overwritten); create: then create the folder."""
    check_length(folder, "--out", room=64)  # room for the IDX names and their temporary names
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder} is a file; give --out a folder to write the IDX files into.")
    if folder.is_dir():
        names = list_folder(folder)
        taken = [n for split in ("train", "t10k") for kind in ("images", "labels")
                 for n in _idx_names(split, kind) if n in names]
        if taken:
            raise DataError(f"{folder} already holds {taken[0]}; choose an empty folder for --out or delete "
                            "the old IDX files yourself (genmodels never overwrites them).")
    if create:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise write_error(folder, err, "create the folder") from None


def _idx_bytes(source: Dataset | torch.Tensor, chunk: int = 10_000):
    """The IDX payload of a split's images (unsigned bytes, floats rounded to the nearest 1/255) or of its
    labels, `chunk` images at a time, so a memory-mapped split larger than memory converts in bounded memory."""
    if not isinstance(source, Dataset):
        yield source.numpy().astype(np.uint8).tobytes()
        return
    for i in range(0, len(source), chunk):
        stored = source.stored(slice(i, i + chunk))
        images = stored if stored.dtype == torch.uint8 else (stored * 255).round().to(torch.uint8)
        yield np.ascontiguousarray(images.numpy()).tobytes()  # (n, C, H, W): grey files drop C, the same bytes
