"""Data files that are not what they claim: decompression bombs, headers that claim more than a file holds, sizes that
overflow, FIFOs and devices posing as data, unreadable folders, and a convert that must not overwrite.
Each must end in one sentence, quickly, with little memory, and leave the user's files as they were."""

import functools
import gzip
import io
import os
import re
import signal
import struct
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genmodels.cli import main
from genmodels.data import Dataset, DataSplits, load_data, write_idx
from genmodels.datafiles import MAX_IMAGE_PIXELS
from genmodels.errors import DataError

MiB = 1 << 20


def idx_bytes(dims, payload=b"") -> bytes:
    return struct.pack(">HBB", 0, 0x08, len(dims)) + struct.pack(f">{len(dims)}I", *dims) + payload


def idx_folder(folder: Path, train: bytes, name="train-images-idx3-ubyte") -> Path:
    """A folder whose train images are `train` (as named) and whose test images are two 2x2 images."""
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes(train)
    (folder / "t10k-images-idx3-ubyte").write_bytes(idx_bytes([2, 2, 2], bytes(8)))
    return folder


def refused(source, pattern: str) -> str:
    """load_data fails with a one-sentence DataError matching pattern."""
    with pytest.raises(DataError, match=pattern) as info:
        load_data(str(source))
    message = str(info.value)
    assert "\n" not in message and message.endswith("."), message
    return message


def peak_bytes(fn) -> int:
    """Peak bytes Python and NumPy allocated while fn ran (NumPy reports its buffers to tracemalloc)."""
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.fixture
def no_hang():
    """Fail, instead of hanging, if a read blocks on a FIFO or streams /dev/zero for more than 5 s."""
    def timeout(signum, frame):
        raise AssertionError("load_data hung on a FIFO or a device")

    before = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(5)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, before)


# --- gzip IDX bombs -----------------------------------------------------------------------------


def test_gzip_idx_bomb_is_refused_without_expanding_it(tmp_path):
    # A header claiming 10 images of 28x28 (7,840 bytes), then 50 MiB of zeros: about 50 KB compressed.
    z = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip stream
    zeros = bytes(MiB)
    blob = z.compress(idx_bytes([10, 28, 28])) + b"".join(z.compress(zeros) for _ in range(50)) + z.flush()
    folder = idx_folder(tmp_path / "bomb", blob, "train-images-idx3-ubyte.gz")
    assert len(blob) < 100_000
    message = []
    peak = peak_bytes(lambda: message.append(refused(folder, r"holds more than the 7,840 data bytes its header "
                                                             r"\(10, 28, 28\) claims, so it is corrupt")))
    assert peak < 4 * MiB, f"peak {peak / MiB:.1f} MiB for a 50 MiB bomb"


def test_gzip_idx_header_claiming_more_than_the_stream_can_hold(tmp_path):
    # 100,000 images of 28x28 claimed by a 40-byte gzip file: refused before a buffer is allocated.
    folder = idx_folder(tmp_path / "a", gzip.compress(idx_bytes([100_000, 28, 28])), "train-images-idx3-ubyte.gz")
    peak = peak_bytes(lambda: refused(folder, r"claims 78,400,000 bytes of data .* more than a \d+-byte gzip file can "
                                              "hold, so it is corrupt"))
    assert peak < 4 * MiB
    short = gzip.compress(idx_bytes([10, 28, 28], bytes(7000)))  # 840 bytes short
    idx_folder(tmp_path / "b", short, "train-images-idx3-ubyte.gz")
    refused(tmp_path / "b", "ends after 7,000 of the 7,840 data bytes .* so it is truncated")


def test_gzip_idx_reads_about_its_claimed_size(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (40, 224, 224), np.uint8)  # 2 MB of data
    folder = idx_folder(tmp_path, gzip.compress(idx_bytes(images.shape, images.tobytes()), 1),
                        "train-images-idx3-ubyte.gz")
    (folder / "t10k-images-idx3-ubyte").write_bytes(idx_bytes([2, 224, 224], images[:2].tobytes()))
    out = []
    peak = peak_bytes(lambda: out.append(load_data(str(folder))))
    assert torch.equal(out[0].train.images[:, 0], torch.from_numpy(images))
    assert peak < images.nbytes + 2 * MiB, f"peak {peak / MiB:.1f} MiB for {images.nbytes / MiB:.1f} MiB of images"


# --- IDX sizes that overflow or are empty -------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_idx_dims_whose_product_overflows_int64(tmp_path, gz):
    raw = idx_bytes([1 << 16] * 4)  # 2**64 bytes: 0 in int64 arithmetic, so it once matched an empty file
    name = "train-images-idx4-ubyte" + (".gz" if gz else "")
    idx_folder(tmp_path, gzip.compress(raw) if gz else raw, name)
    refused(tmp_path, ("claims 18,446,744,073,709,551,616 bytes" if gz else "needs 18446744073709551616")
            + ".*corrupt")


@pytest.mark.parametrize("dims, pattern", [([3, 0, 0], "images of 0x0 pixels"), ([3, 0, 5], "images of 0x5 pixels"),
                                           ([0, 2, 2], "zero images")])
def test_idx_with_a_zero_dimension(tmp_path, dims, pattern):
    idx_folder(tmp_path, idx_bytes(dims))
    refused(tmp_path, "train-images-idx3-ubyte holds " + pattern)


# --- .npy / .npz headers that claim too much, odd labels ------------------------------------------


def npy_header(shape, descr="<f4") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def test_npy_and_npz_claiming_730_gib_are_refused_before_allocating(tmp_path):
    claim = npy_header((100_000, 3, 1024, 640)) + bytes(100)  # 786 GB of float32 claimed, 100 bytes held
    (tmp_path / "huge.npy").write_bytes(claim)
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as zf:
        zf.writestr("images.npy", claim)
    for name in ("huge.npy", "huge.npz"):
        pattern = (rf"{name} .*100 data bytes but its header "
                   r"\(shape \(100000, 3, 1024, 640\), float32\) needs 786,432,000,000")
        peak = peak_bytes(functools.partial(refused, tmp_path / name, pattern))
        assert peak < 4 * MiB


def test_npz_reads_only_the_arrays_it_uses(tmp_path):
    with zipfile.ZipFile(tmp_path / "extra.npz", "w") as zf:
        zf.writestr("junk.npy", npy_header((10**12,)))  # a member never decompressed
        for key, array in (("images", np.zeros((4, 2, 2), np.uint8)), ("labels", np.arange(4))):
            buf = io.BytesIO()
            np.save(buf, array)
            zf.writestr(f"{key}.npy", buf.getvalue())
    assert load_data(str(tmp_path / "extra.npz")).num_classes == 4


def test_npy_truncated_empty_and_object_arrays(tmp_path):
    np.save(tmp_path / "cut.npy", np.zeros((4, 3, 3), np.float32))
    (tmp_path / "cut.npy").write_bytes((tmp_path / "cut.npy").read_bytes()[:-10])
    refused(tmp_path / "cut.npy", "cut.npy holds 134 data bytes but its header .* needs 144, so it is truncated")
    (tmp_path / "empty.npy").write_bytes(b"")
    refused(tmp_path / "empty.npy", "empty.npy could not be read as a NumPy array")
    (tmp_path / "empty.npz").write_bytes(b"")
    refused(tmp_path / "empty.npz", "empty.npz could not be read as a NumPy .npz archive")
    np.savez(tmp_path / "obj.npz", images=np.array([{"a": 1}] * 4, dtype=object))
    refused(tmp_path / "obj.npz", "obj.npz array images could not be read: it holds Python objects, which genmodels "
                                  "never unpickles")


@pytest.mark.parametrize("labels, pattern", [
    (np.array([0, 1, 2**40, 3], np.uint64), "holds label 1099511627776 but labels must be non-negative class "
                                            "indices under 10,000"),
    (np.array([0, 1, 2**63 + 5, 3], np.uint64), "holds label 9223372036854775813"),  # negative as int64
    (np.array([0, -1, 2, 3]), "must be one non-negative integer label per image")])
def test_npz_labels_must_be_small_class_indices(tmp_path, labels, pattern):
    np.savez(tmp_path / "l.npz", images=np.zeros((4, 2, 2), np.uint8), labels=labels)
    refused(tmp_path / "l.npz", pattern)


def test_arrays_of_empty_images(tmp_path):
    np.save(tmp_path / "z.npy", np.zeros((4, 0, 0), np.uint8))
    refused(tmp_path / "z.npy", "z.npy the array holds images of 0x0 pixels with 1 channel")
    np.savez(tmp_path / "z.npz", x_train=np.zeros((4, 3, 5, 0), np.float32))
    refused(tmp_path / "z.npz", "array x_train holds images of 5x0 pixels with 3 channel")


# --- huge images ----------------------------------------------------------------------------------


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A grey PNG whose header says width x height, with one row of pixel data: a few hundred bytes."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(width + 1)))
                     + chunk(b"IEND", b""))
    return path


def test_images_larger_than_the_limit_are_refused_from_their_header(tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(folder / "a.png")
    png_claiming(folder / "b.png", 12000, 12000)  # 144 M pixels: Pillow only warns
    peak = peak_bytes(lambda: refused(folder, r"b.png is 12000x12000 pixels, over the 16,777,216 \(4096x4096\)"))
    assert peak < 4 * MiB
    png_claiming(folder / "b.png", 20000, 20000)  # 400 M pixels: Pillow raises DecompressionBombError
    refused(folder, r"b.png is an image of far more than 16,777,216 \(4096x4096\) pixels")
    side = int(MAX_IMAGE_PIXELS ** 0.5)
    png_claiming(folder / "b.png", side, side + 1)
    refused(folder, f"b.png is {side}x{side + 1} pixels")


# --- FIFOs and devices posing as data files -------------------------------------------------------


@pytest.mark.parametrize("where", ["idx labels", "idx images gz", "npy", "npz", "image", "only idx"])
@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_fifos_and_devices_are_refused_not_read_or_skipped(tmp_path, no_hang, where, kind):
    folder = tmp_path / "data"
    folder.mkdir()
    if where.startswith("idx"):
        idx_folder(folder, idx_bytes([2, 2, 2], bytes(8)))
    if where == "image":
        for i in range(3):
            Image.fromarray(np.zeros((4, 4), np.uint8)).save(folder / f"{i}.png")
    name = {"idx labels": "train-labels-idx1-ubyte", "idx images gz": "t10k-images-idx3-ubyte.gz",
            "npy": "x.npy", "npz": "x.npz", "image": "x.png", "only idx": "train-images-idx3-ubyte"}[where]
    if where == "idx images gz":
        (folder / "t10k-images-idx3-ubyte").unlink()
    target = folder / name
    os.mkfifo(target) if kind == "fifo" else os.symlink("/dev/zero", target)
    source = target if where in ("npy", "npz") else folder
    what = "a pipe (FIFO)" if kind == "fifo" else "a device or socket"
    refused(source, f"{re.escape(name)} is {re.escape(what)}, not a regular file; genmodels reads only regular files")


def test_a_broken_link_named_like_an_image_is_refused(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a.png")
    os.symlink(tmp_path / "gone.png", tmp_path / "b.png")
    refused(tmp_path, "b.png is a broken link")


# --- folders that cannot be listed ------------------------------------------------------------------


def test_proc_ends_in_one_sentence(no_hang):
    if not Path("/proc/self").is_dir():
        pytest.skip("no /proc on this system")
    refused("/proc", "/proc holds no IDX files and no images")


def test_unreadable_folders(tmp_path, monkeypatch):
    """chmod 0 stops a user listing the folder or reaching into it; root, whom permissions do not stop (as in CI),
    gets the same answers from the kernel calls genmodels makes, so the refusals are tested either way."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    if os.geteuid() == 0:
        scandir, stat = os.scandir, os.stat

        def inside(path) -> bool:
            return Path(path) == locked or locked in Path(path).parents

        def deny(call, path, *args, **kwargs):
            if inside(path) and (call is scandir or Path(path) != locked):  # stat of the folder itself works
                raise PermissionError(13, "Permission denied", str(path))
            return call(path, *args, **kwargs)

        monkeypatch.setattr(os, "scandir", lambda path=".": deny(scandir, path))
        monkeypatch.setattr(os, "stat", lambda path, *a, **k: deny(stat, path, *a, **k))
    try:
        refused(locked, "Could not list the folder .*locked .*permission denied")
        refused(locked / "x.npy", "could not be reached .*permission denied")
    finally:
        locked.chmod(0o700)


def test_an_unlistable_class_folder_is_refused_not_dropped(tmp_path, monkeypatch):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / cls / "0.png")
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / cls / "1.png")
    scandir = os.scandir

    def denied(path):  # what a chmod-000 folder gives a user who is not root
        if Path(path).name == "b":
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", denied)
    refused(tmp_path, "holds images but its subfolder .*b cannot be listed; make it readable")


# --- convert never overwrites -----------------------------------------------------------------------


def test_convert_refuses_a_folder_with_idx_files_and_changes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "train-images-idx3-ubyte").write_bytes(b"precious")
    (out / "notes.txt").write_text("mine")
    assert main(["data", "convert", "digits", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("genmodels: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert f"{out} already holds train-images-idx3-ubyte; choose an empty folder" in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "train-images-idx3-ubyte"]
    assert (out / "train-images-idx3-ubyte").read_bytes() == b"precious"
    # An IDX file the new ones would not replace but a later load could pick up (idx3 before idx4) counts too.
    (out / "train-images-idx3-ubyte").rename(out / "t10k-images.idx3-ubyte.gz")
    assert main(["data", "convert", "digits", "--out", str(out)]) == 2
    assert "already holds t10k-images.idx3-ubyte.gz" in capsys.readouterr().err
    # Files of other names are left as they are, and the convert goes ahead.
    (out / "t10k-images.idx3-ubyte.gz").unlink()
    assert main(["data", "convert", "digits", "--out", str(out)]) == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "train-labels-idx1-ubyte").is_file()


def test_convert_checks_labels_before_writing_anything(tmp_path):
    x = torch.zeros(3, 1, 2, 2, dtype=torch.uint8)
    data = DataSplits(Dataset(x, torch.tensor([0, 1, 2]), "t/train"), Dataset(x, torch.tensor([0, 1, 300]), "t/test"),
                      "t")
    with pytest.raises(DataError, match="t/test has labels outside 0..255"):
        write_idx(data, tmp_path / "out")
    assert not (tmp_path / "out").exists()
