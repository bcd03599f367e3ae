"""Readers of data files that trust nothing: IDX (plain or gzipped), .npy, .npz, CSV, image files, folders.

Each checks a file's header against what the file can hold before allocating or decompressing a
byte: only regular files are read (never a FIFO or /dev/zero), sizes are Python ints (no overflow),
a gzip or zip member is read into a buffer of exactly the size its header claims and refused if the
stream is shorter or longer, and an image's pixel count is checked before it is decoded. Every bad
file raises a one-sentence DataError (docs/ARCHITECTURE.md, "Errors" and "Files").

Whatever is read into memory rather than memory-mapped (decompressed, decoded or converted) must also fit
(`check_fits`): at most --max-data-gb (data.max_data_gb; DEFAULT_MAX_DATA_GB when not given) and at most
the memory available now, so a decompression bomb that deflate's ratio allows is refused before it is inflated.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import math
import os
import re
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .errors import DataError
from .fileio import FileError, available_memory, open_regular

GB = 10**9  # --max-data-gb counts decimal gigabytes, as the messages print them
# The most data read into memory (not memory-mapped) without --max-data-gb: MNIST and Fashion-MNIST take 0.05 GB,
# and a gzip bomb within deflate's ratio (4 GB from a 4 MB file) is refused. Larger data train memory-mapped
# (uncompressed IDX or .npy files, `genmodels data convert`), or read into memory with a larger --max-data-gb.
DEFAULT_MAX_DATA_GB = 2.0
MAX_IMAGE_PIXELS = 4096 * 4096  # per image file, checked from its header before decoding
MAX_CLASSES = 10_000  # labels are class indices 0..MAX_CLASSES-1
INFLATE_RATIO = 1032  # deflate (gzip, zip) expands at most this much: zlib's documented limit
_CHUNK = 1 << 20  # bytes decompressed per read, so no temporary exceeds this
# gzip, zip and the file system report damage through any of these; all mean "bad file".
READ_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error, zipfile.BadZipFile, OSError)


def one_line(error: BaseException) -> str:
    """An exception's message squeezed onto one line, so our errors stay one sentence."""
    return " ".join(str(error).split()) or type(error).__name__


def _gb(n: int | float) -> str:
    return f"{n / GB:.3g} GB"


def check_fits(count: int, where: str, max_data_gb: float | None, fix: str) -> None:
    """Refuse, in one sentence ending in `fix` (what the user can do instead), `count` bytes about to be read into
    memory that exceed --max-data-gb (None: DEFAULT_MAX_DATA_GB) or the memory available now. where: what
    would take them, as the sentence's subject ("PATH (header (N, H, W)) decompressed")."""
    limit = DEFAULT_MAX_DATA_GB if max_data_gb is None else max_data_gb
    if count > limit * GB:
        raise DataError(f"{where} would take {_gb(count)} of memory, over the --max-data-gb limit of {limit:g} GB "
                        f"(default {DEFAULT_MAX_DATA_GB:g}); {fix}, or raise --max-data-gb if the machine has "
                        "the memory.")
    free = available_memory()
    if free is not None and count > free:
        raise DataError(f"{where} would take {_gb(count)} of memory, but only {_gb(free)} is available now; {fix}.")


def open_data(path: Path, what: str) -> BinaryIO:
    """`path`, which must be a regular file (a symlink to one is fine), opened for reading (fileio.open_regular:
    checked again once open, so it cannot be swapped for a FIFO meanwhile); DataError otherwise."""
    try:
        return open_regular(path, what)
    except FileError as err:
        raise DataError(str(err)) from None
    except FileNotFoundError:
        raise DataError(f"The {what} {path} is a broken link or was removed meanwhile; "
                        "remove the link or restore its target.") from None


def list_folder(folder: Path) -> dict[str, bool]:
    """Names in `folder` (one level, never recursing), each with whether it is a folder (after symlinks)."""
    try:
        with os.scandir(folder) as entries:
            names = {}
            for entry in entries:
                try:
                    names[entry.name] = entry.is_dir()
                except OSError:  # an unreachable link (/proc/1/cwd): not a folder we can use
                    names[entry.name] = False
            return names
    except OSError as err:
        raise DataError(f"Could not list the folder {folder} ({(err.strerror or one_line(err)).lower()}); "
                        "check that it exists and is readable.") from None


def _fill(stream, buf: np.ndarray) -> int:
    """Read into the uint8 buffer `buf` a chunk at a time; the number of bytes read (less at end of stream)."""
    view, done = buf.data, 0  # a writable memoryview of the array's bytes
    while done < len(view):
        got = stream.readinto(view[done:done + _CHUNK])
        if not got:
            break
        done += got
    return done


def _read_exact(stream, n: int) -> bytes:
    data = b""
    while len(data) < n and (more := stream.read(n - len(data))):
        data += more
    return data


# --- IDX ---------------------------------------------------------------------------------------


def _idx_header(head: bytes, path: Path, ndims: tuple[int, ...]) -> tuple[int, ...]:
    """The dims of an IDX header (0x00 0x00, dtype byte, ndim byte, ndim big-endian uint32 dims);
    ndims: the dimension counts allowed (images 3 or 4, labels 1)."""
    ndim = ndims[0]
    if len(head) < 4 or head[0] != 0 or head[1] != 0:
        magic = "0x" + head[:4].hex() if head else "nothing (empty file)"
        raise DataError(f"{path} is not an IDX file (magic number {magic}, expected 0x0000080{ndim}); "
                        "check the file or re-download it.")
    if head[2] != 0x08:
        raise DataError(f"{path} holds IDX data type 0x{head[2]:02x} but only unsigned bytes (0x08) are supported; "
                        "convert it to 8-bit or save it as a .npz file.")
    if head[3] not in ndims:
        need = "images need 3 or 4" if ndim == 3 else "labels need 1"
        raise DataError(f"{path} has {head[3]} dimensions but {need}; "
                        "check that the images and labels files are not swapped.")
    if len(head) < 4 + 4 * head[3]:
        raise DataError(f"{path} ends inside its IDX header, so it is truncated; re-download or reinstall it.")
    return tuple(int.from_bytes(head[4 + 4 * i:8 + 4 * i], "big") for i in range(head[3]))


def read_idx(path: Path, ndims: tuple[int, ...], max_data_gb: float | None = None) -> np.ndarray:
    """An IDX file as a uint8 array: a plain one memory-mapped (pages are read when a batch needs them,
    so data larger than memory works), a gzipped one read into a buffer of the size its header claims
    once that fits in memory (check_fits: --max-data-gb and the memory available)."""
    with open_data(path, "IDX file") as file:
        size = os.fstat(file.fileno()).st_size
        try:
            if path.suffix == ".gz":
                return _read_idx_gz(file, path, ndims, size, max_data_gb)
            head = file.read(4 + 4 * max(ndims))
        except READ_ERRORS as e:
            raise _damaged(path, e) from None
        dims = _idx_header(head, path, ndims)
        start, count = 4 + 4 * len(dims), math.prod(dims)
        if size - start != count:
            raise DataError(f"{path} holds {size - start} data bytes but its header {dims} needs {count}, "
                            "so it is truncated or corrupt; re-download or reinstall it.")
        if not count:
            return np.zeros(dims, np.uint8)
        # Mapped read-only and shared: the pages are the file's, dropped under memory pressure and counted
        # against no memory limit (a copy-on-write map counts its whole size as data; tests/test_memory.py).
        return np.memmap(file, np.uint8, "r", offset=start, shape=dims)


def _gz_idx_dims(f: gzip.GzipFile, path: Path, ndims: tuple[int, ...], size: int) -> tuple[int, ...]:
    """The dims of the gzipped IDX stream f (a `size`-byte file), read from its header; refused as corrupt where
    they claim more than deflate can expand the file to."""
    head = _read_exact(f, 4)
    head += _read_exact(f, 4 * head[3]) if len(head) == 4 and head[3] in ndims else b""
    dims = _idx_header(head, path, ndims)
    if math.prod(dims) > INFLATE_RATIO * size:
        raise DataError(f"{path} claims {math.prod(dims):,} bytes of data (header {dims}), more than a {size:,}-byte "
                        "gzip file can hold, so it is corrupt; re-download or reinstall it.")
    return dims


def convert_advice(path: Path) -> str:
    """What to do with gzipped IDX data too large to inflate in memory: convert the folder once."""
    return (f"convert it once to uncompressed IDX, which is memory-mapped instead of read into memory, with "
            f"`genmodels data convert {path.parent} --out NEW_FOLDER` (it streams the file), then train on NEW_FOLDER")


def _read_idx_gz(file: BinaryIO, path: Path, ndims: tuple[int, ...], size: int,
                 max_data_gb: float | None) -> np.ndarray:
    with gzip.GzipFile(fileobj=file, mode="rb") as f:
        dims = _gz_idx_dims(f, path, ndims, size)
        count = math.prod(dims)
        check_fits(count, f"{path} (header {dims}) decompressed", max_data_gb, convert_advice(path))
        buf = np.empty(count, np.uint8)
        _check_length(path, dims, _fill(f, buf), f.read(1))
    return buf.reshape(dims)


def _check_length(path: Path, dims: tuple[int, ...], got: int, more: bytes) -> None:
    """Refuse an IDX stream that held `got` data bytes (and `more` after them) where its header claims dims."""
    count = math.prod(dims)
    if got < count:
        raise DataError(f"{path} ends after {got:,} of the {count:,} data bytes its header {dims} claims, "
                        "so it is truncated; re-download or reinstall it.")
    if more:
        raise DataError(f"{path} holds more than the {count:,} data bytes its header {dims} claims, "
                        "so it is corrupt; re-download or reinstall it.")


@contextlib.contextmanager
def idx_stream(path: Path, ndims: tuple[int, ...]) -> Iterator[tuple[tuple[int, ...], Iterator[bytes]]]:
    """An IDX file, plain or gzipped, as its dims and its data bytes a chunk at a time (never whole, so a file
    larger than memory streams through: `genmodels data convert`). The chunks end in a DataError where the
    stream is shorter or longer than its header claims."""
    with open_data(path, "IDX file") as file:
        size = os.fstat(file.fileno()).st_size
        try:
            gz = gzip.GzipFile(fileobj=file, mode="rb") if path.suffix == ".gz" else None
            stream: BinaryIO = gz if gz is not None else file  # type: ignore[assignment]  # both read bytes
            if gz is not None:
                dims = _gz_idx_dims(gz, path, ndims, size)
            else:
                dims = _idx_header(file.read(4 + 4 * max(ndims)), path, ndims)
                file.seek(4 + 4 * len(dims))
                if size - file.tell() != math.prod(dims):
                    raise DataError(f"{path} holds {size - file.tell()} data bytes but its header {dims} needs "
                                    f"{math.prod(dims)}, so it is truncated or corrupt; re-download or reinstall it.")
        except READ_ERRORS as e:
            raise _damaged(path, e) from None
        try:
            yield dims, _chunks(stream, path, dims)
        finally:
            if gz is not None:
                gz.close()


def _damaged(path: Path, e: BaseException) -> DataError:
    return DataError(f"{path} could not be read ({one_line(e)}), so it is truncated or corrupt; "
                     "re-download or reinstall it.")


def _chunks(stream: BinaryIO, path: Path, dims: tuple[int, ...]) -> Iterator[bytes]:
    left = math.prod(dims)
    try:
        while left and (chunk := stream.read(min(left, _CHUNK))):
            left -= len(chunk)
            yield chunk
        more = stream.read(1)
    except READ_ERRORS as e:  # raised here as a DataError, not as an OSError a writer would take for its own
        raise _damaged(path, e) from None
    _check_length(path, dims, math.prod(dims) - left, more)


# --- .npy / .npz -------------------------------------------------------------------------------


def _npy_header(stream, path: Path, what: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """shape, fortran_order, dtype and data bytes claimed by a .npy header; refuses object arrays."""
    fmt = np.lib.format
    version = fmt.read_magic(stream)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f".npy format version {version[0]}.{version[1]} is not supported")
    read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, fortran, dtype = read(stream)
    if dtype.hasobject:
        raise DataError(f"{path} {what} could not be read: it holds Python objects, which genmodels never "
                        "unpickles; save it again with numpy.save (no object arrays).")
    if any(d < 0 for d in shape):
        raise ValueError(f"negative dimension in shape {shape}")
    return shape, fortran, dtype, math.prod(shape) * dtype.itemsize


def _array_error(path: Path, err: BaseException, kind: str = "array", fix: str = "numpy.save") -> DataError:
    return DataError(f"{path} could not be read as a NumPy {kind} ({one_line(err)}); "
                     f"save it again with {fix} (no object arrays).")


def read_npy(path: Path) -> np.ndarray:
    """A .npy file, memory-mapped read-only (so larger-than-memory arrays work) once its header's
    claim matches the file's size."""
    with open_data(path, ".npy file") as f:
        size = os.fstat(f.fileno()).st_size
        try:
            shape, fortran, dtype, count = _npy_header(f, path, "array")
            start = f.tell()
            if size - start != count:
                raise DataError(f"{path} holds {size - start:,} data bytes but its header (shape {shape}, {dtype}) "
                                f"needs {count:,}, so it is truncated or corrupt; save it again with numpy.save.")
            if not count:
                return np.empty(shape, dtype)
            return np.memmap(f, dtype, "r", offset=start, shape=shape, order="F" if fortran else "C")  # as read_idx
        except (ValueError, OverflowError, *READ_ERRORS) as e:
            raise _array_error(path, e) from None


def read_npz(path: Path, pick: Callable[[list[str]], list[str]],
             max_data_gb: float | None = None) -> dict[str, np.ndarray]:
    """The arrays of a .npz archive that pick(sorted keys) names (the others are never decompressed),
    each read into a buffer of the size its header claims once that matches the zip's entry, and once their
    sizes together fit in memory (check_fits: --max-data-gb and the memory available)."""
    with open_data(path, ".npz file") as file:
        try:
            with zipfile.ZipFile(file) as zf:
                infos = {i.filename[:-4]: i for i in zf.infolist() if i.filename.endswith(".npy")}
                keys = pick(sorted(infos))
                check_fits(sum(infos[k].file_size for k in keys), f"{path} (arrays {', '.join(keys)}) decompressed",
                           max_data_gb, "save the arrays as .npy files (numpy.save), which are memory-mapped "
                           "instead of read into memory")
                return {k: _read_member(zf, infos[k], path) for k in keys}
        except (ValueError, OverflowError, RuntimeError, NotImplementedError, *READ_ERRORS) as e:
            raise _array_error(path, e, ".npz archive", "numpy.savez") from None


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> np.ndarray:
    key = info.filename[:-4]
    if info.compress_type == zipfile.ZIP_DEFLATED and info.file_size > INFLATE_RATIO * info.compress_size + 1024:
        raise ValueError(f"member {key} claims {info.file_size:,} bytes from {info.compress_size:,} compressed")
    with zf.open(info) as f:
        shape, fortran, dtype, count = _npy_header(f, path, f"array {key}")
        if info.file_size - f.tell() != count:
            raise ValueError(f"array {key} holds {info.file_size - f.tell():,} data bytes but its header "
                             f"(shape {shape}, {dtype}) needs {count:,}")
        buf = np.empty(count, np.uint8)
        if _fill(f, buf) < count or f.read(1):  # reading to the end also checks the CRC
            raise ValueError(f"array {key} is truncated")
    return buf.view(dtype).reshape(shape, order="F" if fortran else "C")


# --- CSV -----------------------------------------------------------------------------------------


def read_csv(path: Path, max_data_gb: float | None = None) -> tuple[list[str], list[list[str]]]:
    """A CSV file of vectors as its header (the column names) and its rows of cells, as text: a regular file,
    refused unless its size, parsed, fits in memory (check_fits: a cell of text costs about 100 bytes as a
    Python string, so 100 x the file's size is what is checked), UTF-8, with a header of column names and every
    row as long as the header. The cells are turned into numbers by the caller (data's CSV loader)."""
    with open_data(path, "CSV file") as file:
        size = os.fstat(file.fileno()).st_size
        check_fits(size * 100, f"{path} ({size:,} bytes) parsed", max_data_gb,
                   "save the vectors as a float32 .npy file (numpy.save), which is memory-mapped")
        try:
            text = file.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise DataError(f"{path} is not UTF-8 text; save the CSV file as UTF-8.") from None
        except READ_ERRORS as e:
            raise _damaged(path, e) from None
    try:
        rows = [row for row in csv.reader(io.StringIO(text)) if row]
    except csv.Error as e:
        raise DataError(f"{path} could not be read as CSV ({one_line(e)}); save it again as plain CSV.") from None
    if not rows:
        raise DataError(f"{path} is empty; give a CSV file with a header of column names and one row per vector.")
    header, body = [name.strip() for name in rows[0]], rows[1:]
    if all(is_number(name) for name in header):
        raise DataError(f"{path} starts with a row of numbers, not column names; add a header line naming the "
                        "columns (x1,x2,...).")
    for i, row in enumerate(body):
        if len(row) != len(header):
            raise DataError(f"{path} line {i + 2} has {len(row)} cells but the header names {len(header)} columns; "
                            "give every row one cell per column.")
    return header, body


def is_number(text: str) -> bool:
    """Whether `text` reads as a float (a CSV cell, a TOML value written in quotes)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


# --- image files -------------------------------------------------------------------------------


def read_image(path: Path) -> tuple[np.ndarray, bool]:
    """One 8-bit image file as (H, W) grey or (H, W, 3) RGB pixels, and whether its mode is grey; its
    pixel count is checked from the header before it is decoded."""
    with open_data(path, "image") as file:
        return image_pixels(file, str(path), "replace or remove the file")


def image_pixels(file: BinaryIO, where: str, fix: str, on_white: bool = False) -> tuple[np.ndarray, bool]:
    """The image in an open file (or io.BytesIO) as read_image gives it; `where` names it and `fix` ends
    each error's sentence (what the user does about a bad file). on_white: transparent pixels are drawn
    on white, as an image viewer shows them (else their colour values are kept, as data folders are read)."""
    from PIL import Image  # imported here: only image files need Pillow

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the check below is stricter
        try:
            with Image.open(file) as im:
                (w, h), mode = im.size, im.mode
                if w * h > MAX_IMAGE_PIXELS:
                    raise DataError(f"{where} is {w}x{h} pixels, over the {MAX_IMAGE_PIXELS:,} (4096x4096) genmodels "
                                    "decodes per image; resize it smaller or remove it.")
                if mode in ("I", "F") or mode.startswith("I;"):
                    raise DataError(f"{where} is a {mode} (16/32-bit) image but only 8-bit images are supported; "
                                    "convert it to 8-bit.")
                grey = mode in ("1", "L", "LA")
                picture: Image.Image = im
                if on_white and ("A" in mode or "transparency" in im.info):
                    picture = Image.alpha_composite(Image.new("RGBA", im.size, "white"), im.convert("RGBA"))
                return np.asarray(picture.convert("L" if grey else "RGB")), grey
        except Image.DecompressionBombError:  # Pillow refuses it at open, before its size can be read
            raise DataError(f"{where} is an image of far more than {MAX_IMAGE_PIXELS:,} (4096x4096) pixels, the most "
                            "genmodels decodes per image; resize it smaller or remove it.") from None
        except (SyntaxError, ValueError, *READ_ERRORS) as e:
            why = re.sub(r"<[^<>]* at 0x[0-9a-f]+>", "it", one_line(e))  # Pillow names an in-memory file by its repr
            raise DataError(f"{where} could not be read as an image ({why}); {fix}.") from None
