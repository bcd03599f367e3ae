"""File helpers every layer may use: atomic writes and size-bounded reads of regular files
(docs/ARCHITECTURE.md, "Files").

Nothing here trusts a path: a FIFO, a device (/dev/zero), a folder or a file larger than its limit is
refused before a byte is read, and a failed write leaves no temporary file and the previous file intact.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from .errors import GenmodelsError

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
JSON_LIMIT = 16 * MiB  # config.json, eval.json, features.json: a few KiB in practice
TEXT_LIMIT = 1 * GiB  # metrics.jsonl: about 200 bytes a logged step

# errno -> what it means and what to do, for the write failures a user can fix.
_WRITE_FIXES: dict[int | None, tuple[str, str]] = {
    errno.ENOSPC: ("the disk is full", "free some space and run the command again"),
    errno.EDQUOT: ("the disk quota is exceeded", "free some space and run the command again"),
    errno.EACCES: ("permission is denied", "make the folder writable or choose another output"),
    errno.EPERM: ("the operation is not permitted", "make the folder writable or choose another output"),
    errno.EROFS: ("the file system is read-only", "choose an output on a writable disk"),
    errno.EISDIR: ("a folder has that name", "move the folder away or choose another output"),
    errno.ENOTDIR: ("a file stands where a folder should be", "move the file away or choose another output"),
    errno.EEXIST: ("a file stands where a folder should be", "move the file away or choose another output"),
}


class FileError(GenmodelsError):
    """A file cannot be read or written: not a regular file, too large, a full disk, no permission.
    cause: for a failed write, what went wrong in a few words ("the disk is full")."""

    cause: str = ""


def write_error(path: Path, err: OSError, what: str = "write") -> FileError:
    """One sentence for an OSError while writing `path`: what went wrong and how to fix it."""
    unknown = ((err.strerror or type(err).__name__).lower(), "check the path and try again")
    cause, fix = _WRITE_FIXES.get(err.errno, unknown)
    error = FileError(f"Could not {what} {path}: {cause}; {fix} (files written before are unchanged).")
    error.cause = cause
    return error


def atomic_write(path: Path, data: bytes | Iterable[bytes], parents: bool = False) -> None:
    """Write `data` (bytes, or chunks of bytes written one after another, so a large file need not be held
    whole) to a temporary name beside `path`, fsync it and rename it into place, so a crash at any moment
    leaves either the previous complete file or the new one, never a torn one. A failed write (a full disk,
    say) removes its temporary file and raises a FileError; `path` is left as it was.
    parents: create the missing folders above `path` first."""
    path = Path(path)
    tmp = temp_name(path)
    try:
        if parents:
            path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            for chunk in [data] if isinstance(data, (bytes, bytearray, memoryview)) else data:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        _test_fault(path)
        os.replace(tmp, path)
    except BaseException as err:  # a full disk, or an interrupt between write and rename
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise write_error(path, err) from None
        raise


# Test-only fault injection (tests/test_crash_safety.py), read at every atomic write and unset in normal use:
# GENMODELS_TEST_KILL_BEFORE_RENAME="NAME:N" makes the process SIGKILL itself in its N-th atomic write of a
# file named NAME, after the temporary file is written and synced and before the rename: the one moment a
# crash leaves a temporary file beside the previous complete file. A chosen point, not a timed kill.
KILL_BEFORE_RENAME = "GENMODELS_TEST_KILL_BEFORE_RENAME"
_writes: dict[str, int] = {}


def _test_fault(path: Path) -> None:
    spec = os.environ.get(KILL_BEFORE_RENAME)
    if not spec:
        return
    name, _, count = spec.rpartition(":")
    if path.name == name:
        _writes[name] = _writes.get(name, 0) + 1
        if str(_writes[name]) == count:
            os.kill(os.getpid(), signal.SIGKILL)


def temp_name(path: Path) -> Path:
    """The temporary file atomic_write uses for `path` (dot-prefixed, with this process's id)."""
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def _read_error(path: Path, what: str, err: OSError) -> FileError:
    return FileError(f"Could not read the {what} {path}: {(err.strerror or str(err)).lower()}; check its permissions.")


def regular_size(path: Path, what: str = "file", limit: int | None = None) -> int:
    """The size of `path`, which must be a regular file (after symlinks) no larger than `limit` bytes;
    a FileError otherwise (FileNotFoundError passes through for callers that say what is missing)."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise
    except OSError as err:
        raise _read_error(path, what, err) from None
    if stat.S_ISDIR(st.st_mode):
        raise FileError(f"The {what} {path} is a folder, not a file; pass the file itself.")
    if not stat.S_ISREG(st.st_mode):
        kind = "a pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else "a device or socket"
        raise FileError(f"The {what} {path} is {kind}, not a regular file; genmodels reads only regular files.")
    if limit is not None and st.st_size > limit:
        raise FileError(f"The {what} {path} is {st.st_size / MiB:,.1f} MiB, over the {limit / MiB:,.0f} MiB such a "
                        "file can hold; it is not a genmodels file or it is damaged.")
    return st.st_size


def open_regular(path: Path, what: str = "file", limit: int | None = None) -> BinaryIO:
    """A regular file (no larger than `limit`) opened for reading. It is opened without blocking and checked
    again through the open descriptor, so a file swapped for a FIFO after the first check cannot hang a read."""
    regular_size(path, what, limit)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise _read_error(path, what, err) from None
    f = open(fd, "rb")
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or (limit is not None and st.st_size > limit):
        f.close()
        raise FileError(f"The {what} {path} changed while it was opened; is another program replacing it? Try again.")
    return f


def read_bounded(path: Path, what: str = "file", limit: int | None = JSON_LIMIT) -> bytes:
    """The bytes of a regular file no larger than `limit` (None: its own size is the bound), read once."""
    with open_regular(path, what, limit) as f:
        size = os.fstat(f.fileno()).st_size
        try:
            data = f.read(size + 1)
        except OSError as err:
            raise _read_error(path, what, err) from None
    if len(data) > size:
        raise FileError(f"The {what} {path} grew while it was read; is another program writing it? Try again.")
    return data
