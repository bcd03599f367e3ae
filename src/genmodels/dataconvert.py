"""`genmodels data convert`: a data source written as uncompressed IDX files, which later runs memory-map.

An IDX folder (fashion-mnist, mnist, or any folder of IDX files, gzipped or not) is streamed file by file, a
chunk at a time, so gzipped data larger than memory (refused by load_data, datafiles.check_fits) convert in
bounded memory; its headers are checked against one another before anything is written, and the disk's free
space against what will be written. Any other source is loaded (load_data) and written by data.write_idx.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import shutil
from pathlib import Path

from .data import check_out_folder, idx_classes, idx_files, idx_folder_of, load_data, write_idx
from .datafiles import GB, idx_stream
from .errors import DataError
from .fileio import atomic_write


def convert(source: str, out: str | Path, data_dir: str | None = None, *,
            max_data_gb: float | None = None) -> tuple[list[Path], tuple[str, ...] | None]:
    """Write `source` into the folder `out` as uncompressed IDX files (see data.write_idx for the layout; nothing
    is overwritten); the files written and the class names the IDX files cannot keep (None: none).
    max_data_gb: load_data's limit on what a source other than an IDX folder reads into memory."""
    out = Path(out)
    folder = idx_folder_of(source, data_dir)
    if folder is None:
        data = load_data(source, data_dir, max_data_gb=max_data_gb)
        return write_idx(data, out), data.classes
    return _stream_idx(folder, source, out), idx_classes(folder, source)


Step = tuple[Path, tuple[int, ...], str, tuple[int, ...]]  # file to read, its IDX ranks, name and dims to write


def _plan(folder: Path, source: str) -> list[Step]:
    """A Step for every IDX file of the folder, once their headers agree: images of one shape in both splits, as
    many labels as images, no empty split."""
    plan: list[Step] = []
    shapes = []
    for (images, labels), split in zip(idx_files(folder, source), ("train", "t10k"), strict=True):
        with idx_stream(images, (3, 4)) as (dims, _):
            pass
        n, shape = dims[0], (1, *dims[1:]) if len(dims) == 3 else dims[1:]
        if not n or not math.prod(shape):
            raise DataError(f"{images} holds no images or images of no pixels (header {dims}); "
                            "use a data source with at least one image.")
        shapes.append(shape)
        grey = shape[0] == 1
        plan.append((images, (3, 4), f"{split}-images-idx{3 if grey else 4}-ubyte",
                     (n, *shape[1:]) if grey else (n, *shape)))
        if labels is not None:
            with idx_stream(labels, (1,)) as (label_dims, _):
                pass
            if label_dims[0] != n:
                raise DataError(f"{images} holds {n} images but {labels} holds {label_dims[0]} labels; "
                                "use matching images and labels.")
            plan.append((labels, (1,), f"{split}-labels-idx1-ubyte", label_dims))
    train_shape, test_shape = shapes
    if train_shape != test_shape:
        raise DataError(f"{folder} has train images of shape {train_shape} but test images of shape {test_shape}; "
                        "both splits must come from the same dataset.")
    return plan


def _stream_idx(folder: Path, source: str, out: Path) -> list[Path]:
    plan = _plan(folder, source)
    check_out_folder(out)
    need = sum(4 + 4 * len(dims) + math.prod(dims) for *_, dims in plan)
    free = shutil.disk_usage(next(p for p in (out, *out.parents) if p.exists())).free
    if need > free:
        raise DataError(f"Converting {folder} writes {need / GB:.3g} GB but the disk of {out} has {free / GB:.3g} GB "
                        "free; free some space or give --out a folder on another disk.")
    check_out_folder(out, create=True)
    written: list[Path] = []
    try:
        for path, ranks, name, dims in plan:
            header = bytes([0, 0, 0x08, len(dims)]) + b"".join(int(d).to_bytes(4, "big") for d in dims)
            with idx_stream(path, ranks) as (_, data):
                atomic_write(out / name, itertools.chain([header], data))  # a chunk at a time, never whole
            written.append(out / name)
    except BaseException:  # a damaged file found midway, a full disk, Ctrl-C: remove what this call wrote
        for path in written:
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    return written
