"""Files several processes share (feature caches, the digest cache): locked and replaced whole.

A reader never sees a half-written file: each write goes to a unique temporary file in the same
directory and is renamed over the old one (`os.replace` is atomic on POSIX and Windows). Writers
that merge with what is on disk hold a lock file beside it (the `filelock` package: fcntl on
POSIX, msvcrt on Windows), so two sweeps never drop each other's entries.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def locked(path: Path, timeout: float = 600) -> Iterator[None]:
    """Hold `<path>.lock` (created if needed) for the duration of the block."""
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock", timeout=timeout):
        yield


def replace_atomically(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write `path` through `write(handle)` to a unique temporary file, then rename it over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
