"""The writer's lock of a run directory (docs/ARCHITECTURE.md, "The run directory"): one training or
evaluation at a time. `RunDir.lock` takes it; this module knows only the lock file it is given."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import sys
import time
from pathlib import Path
from types import ModuleType

from .errors import CheckpointError
from .fileio import write_error

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one writer per run directory is then the user's care
    fcntl = None


class RunLock:
    """The writer's lock on one run directory: an exclusive flock on RUN/.genmodels.lock, held from before
    the folder is cleared until training (or evaluation) ends. The kernel drops it when the process dies,
    so a crash never leaves a stale lock; the file holds who took it, for the refusal's sentence."""

    def __init__(self, fd: int | None, path: Path):
        self.fd, self.path = fd, path

    @classmethod
    def take(cls, path: Path, what: str) -> RunLock:
        if fcntl is None:
            return cls(None, path)
        try:  # never through a symbolic link: the holder's name is written into this file
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except IsADirectoryError:
            raise CheckpointError(f"{path} is a folder where genmodels keeps its lock; move it away.") from None
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise CheckpointError(f"{path} is a symbolic link, which genmodels never makes; remove it.") from None
            raise write_error(path.parent, err, "lock") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 1024, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise CheckpointError(f"{path.parent} is in use by {holder}; wait for it to finish, "
                                  "or choose another folder.") from None
        argv = " ".join(["genmodels", *sys.argv[1:]])[:200]
        text = f"{what} (pid {os.getpid()} on {socket.gethostname()}, `{argv}`, since {time.strftime('%H:%M:%S')})"
        with contextlib.suppress(OSError):  # the name is for the refusal's sentence; the lock holds without it
            os.ftruncate(fd, 0)
            os.pwrite(fd, text.encode(), 0)
        return cls(fd, path)

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, 0)
            os.close(self.fd)  # closing drops the flock
            self.fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
