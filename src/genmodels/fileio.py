"""File helpers every layer may use: atomic writes and size-bounded reads (docs/ARCHITECTURE.md, "Files")."""

from __future__ import annotations

import os
from pathlib import Path


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to a temporary name beside `path`, fsync it and rename it into place, so a crash at
    any moment leaves either the previous complete file or the new one, never a torn one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
