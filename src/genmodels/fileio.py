"""File helpers every layer may use: atomic writes and size-bounded reads of regular files
(docs/ARCHITECTURE.md, "Files"), and the memory the host can still give (/proc/meminfo, a cgroup's limit).

Nothing here trusts a path: a FIFO, a device (/dev/zero), a folder or a file larger than its limit is
refused before a byte is read, and a failed write leaves no temporary file and the previous file intact.
A write never goes through a symbolic link, nor replaces one or anything but a regular file, and inside a run
directory (a folder holding the RUN_MARKER) never through a linked folder: what a link points at is someone's.
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
RUN_MARKER = ".genmodels"  # the file that makes a folder a run directory (rundir.RunDir.MARKER)
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
    errno.ELOOP: ("a symbolic link stands in the way", "remove the link or choose another output"),
    errno.ENAMETOOLONG: ("the path is too long for the file system", "choose a shorter path"),
}
NAME_MAX, PATH_MAX = 255, 4095  # bytes of a name and of a path on Linux (a file system may allow fewer)
LONG_PATH = 160  # characters of a path a sentence shows whole; a longer one is cut in the middle (short_path)


class FileError(GenmodelsError):
    """A file cannot be read or written: not a regular file, too large, a full disk, no permission.
    cause: for a failed write, what went wrong in a few words ("the disk is full")."""

    cause: str = ""


def short_path(path: str | os.PathLike[str]) -> str:
    """A path as a sentence shows it: whole up to LONG_PATH characters, else its start and end around "..."."""
    text = str(path)
    return text if len(text) <= LONG_PATH else f"{text[:LONG_PATH // 3]}...{text[-LONG_PATH // 2:]}"


def write_error(path: Path, err: OSError, what: str = "write") -> FileError:
    """One sentence for an OSError while writing `path`: what went wrong and how to fix it."""
    unknown = ((err.strerror or type(err).__name__).lower(), "check the path and try again")
    cause, fix = _WRITE_FIXES.get(err.errno, unknown)
    error = FileError(f"Could not {what} {short_path(path)}: {cause}; {fix} (files written before are unchanged).")
    error.cause = cause
    return error


def atomic_write(path: Path, data: bytes | Iterable[bytes], parents: bool = False) -> None:
    """Write `data` (bytes, or chunks of bytes written one after another, so a large file need not be held
    whole) to a temporary name beside `path`, fsync it and rename it into place, so a crash at any moment
    leaves either the previous complete file or the new one, never a torn one. A failed write (a full disk,
    say) removes its temporary file and raises a FileError; `path` is left as it was. A link, a FIFO or a
    device at `path`, or a linked folder inside the run directory holding it, is refused first (check_target).
    parents: create the missing folders above `path` first."""
    path = Path(path)
    check_target(path)
    tmp, made = temp_name(path), False
    try:
        if parents:
            path.parent.mkdir(parents=True, exist_ok=True)
        # Never through a link standing at the temporary name; a stale file of a dead writer with our pid is reused.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o666)
        made = True
        with open(fd, "wb") as f:
            for chunk in [data] if isinstance(data, (bytes, bytearray, memoryview)) else data:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        _test_fault(path)
        os.replace(tmp, path)
    except BaseException as err:  # a full disk, or an interrupt between write and rename
        if made:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise write_error(path, err) from None
        raise


def check_target(path: Path) -> None:
    """A one-sentence FileError unless `path` may be written: absent or a regular file (never a symbolic link,
    whose target is someone's, nor a FIFO or a device), in no folder that is a link inside a run directory."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError:  # a name too long, no permission: the write itself says so
        return
    if mode is not None and stat.S_ISLNK(mode):
        raise FileError(f"{short_path(path)} is a symbolic link; genmodels never writes through "
                        "a link or replaces one, so remove the link or choose another output.")
    if mode is not None and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # a folder: the write says so
        raise FileError(f"{short_path(path)} is {_kind(mode)}, not a regular file; genmodels replaces only regular "
                        "files, so move it away or choose another output.")
    folder = linked_folder(path)
    if folder is not None:
        raise FileError(f"{short_path(folder)} is a symbolic link inside the run directory, which genmodels never "
                        f"makes or writes through; remove the link (put the real folder there) or choose another "
                        "output.")


def linked_folder(path: Path) -> Path | None:
    """The first folder above `path` that is a symbolic link and lies inside a run directory (the outermost
    folder above it holding a genmodels marker); None when there is none. The run directory itself may be
    a link: its owner chose where it lives."""
    below: list[Path] = []
    found = None
    for folder in Path(path).absolute().parents:
        if _is_marker(folder / RUN_MARKER):
            found = next((f for f in below if f.is_symlink()), found)
        below.append(folder)
    return found


def _is_marker(path: Path) -> bool:
    """Whether `path` is a run directory's marker: a small regular file that says so (a folder named .genmodels,
    another program's settings, say, is not)."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        return b'"run directory"' in read_bounded(path, "marker", KiB)
    except (OSError, GenmodelsError):
        return False


def _kind(mode: int) -> str:
    return "a pipe (FIFO)" if stat.S_ISFIFO(mode) else "a device or socket"


def check_length(path: str | os.PathLike[str], what: str, room: int = 0) -> None:
    """A one-sentence FileError where the file system cannot name `path` (ENAMETOOLONG: a name over 255 bytes,
    or a path over 4,095), so that no later step meets it as a traceback; what: the sentence's name for it.
    room: bytes the names of the files to be written inside the folder `path` add to it."""
    size = len(os.fsencode(path))
    longest = max((len(os.fsencode(name)) for name in Path(path).parts), default=0)
    if longest <= NAME_MAX and size + room <= PATH_MAX:
        try:
            os.lstat(path)
            return
        except OSError as err:  # what a file system with shorter limits says; anything else, the next step says
            if err.errno != errno.ENAMETOOLONG:
                return
    if longest > NAME_MAX:
        why = f"a name in it has {longest:,} bytes, over the {NAME_MAX} a name may have"
    elif size > PATH_MAX:
        why = f"it has {size:,} bytes, over the {PATH_MAX:,} a path may have"
    else:
        why = f"it has {size:,} bytes, so the paths of the files in it would pass the {PATH_MAX:,} a path may have"
    raise FileError(f"{what} {short_path(path)} is too long for the file system ({why}); choose a shorter path.")


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
    if err.errno == errno.ENAMETOOLONG:
        cause, fix = _WRITE_FIXES[errno.ENAMETOOLONG]
        return FileError(f"Could not read the {what} {short_path(path)}: {cause}; {fix}.")
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
        raise FileError(f"The {what} {path} is {_kind(st.st_mode)}, not a regular file; genmodels reads only regular "
                        "files.")
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


# -- how much memory the machine can still give (the data readers and the model-size check ask) ------------
def available_memory() -> int | None:
    """Bytes the host can still allocate without swapping: MemAvailable (else the free physical pages), less
    where a cgroup (a container) allows less; None where neither is known."""
    found = [b for b in (_meminfo_available(), _cgroup_room()) if b is not None]
    return min(found) if found else None


def _meminfo_available() -> int | None:
    """MemAvailable of /proc/meminfo (what can be allocated without swapping), else free physical pages."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


# (limit, usage) files of a cgroup's memory: version 2, then version 1
_CGROUP_FILES = (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                 ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"))


def _cgroup_room() -> int | None:
    """A container's memory limit less what it uses; None without a limit ("max", or version 1's near 2**63)."""
    for limit_file, usage_file in _CGROUP_FILES:
        try:
            limit, usage = Path(limit_file).read_text().strip(), Path(usage_file).read_text().strip()
        except OSError:
            continue
        if not limit.isdigit() or not usage.isdigit() or int(limit) >= 2**60:
            return None
        return max(0, int(limit) - int(usage))
    return None
