"""Files several processes share (feature caches, the digest cache): locked and replaced whole.

A reader never sees a half-written file: each write goes to a unique temporary file in the same
directory and is renamed over the old one (`os.replace` is atomic on POSIX and Windows). Writers
that merge with what is on disk hold a lock file beside it (the `filelock` package: fcntl on
POSIX, msvcrt on Windows), so two sweeps never drop each other's entries. A write killed
midway leaves its temporary file, which whoever next holds the lock removes (`locked`).
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger("promptworth")
STAGING_SUFFIX = ".tmp"  # a staging file: .<name>.<random>.tmp beside <name>


@contextlib.contextmanager
def locked(path: Path, timeout: float = 600) -> Iterator[None]:
    """Hold `<path>.lock` (created if needed) for the duration of the block; staging files of
    `path` older than the lock are removed first."""
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock", timeout=timeout):
        remove_stale_staging(path, time.time())
        yield


def remove_stale_staging(path: Path, since: float) -> None:
    """The staging files of `path` last written before `since`, when the caller took its lock:
    every writer holds the lock while its staging file exists, so these were left by a write
    that was killed (a live writer removes its own, even on an exception)."""
    for staging in path.parent.glob(f".{glob.escape(path.name)}.*{STAGING_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            if staging.stat().st_mtime < since:
                staging.unlink()
                log.info("%s: removed what a killed write of %s left", staging, path.name)


def clean_staging(directory: Path) -> None:
    """Remove the staging files killed writes left in `directory`, each once the lock of its
    file is free (a file a live process is writing keeps its staging file)."""
    from filelock import Timeout

    staging = directory.glob(f".*.*{STAGING_SUFFIX}") if directory.is_dir() else []
    names = {p.name[1 : -len(STAGING_SUFFIX)].rpartition(".")[0] for p in staging}
    for name in sorted(names):
        with contextlib.suppress(Timeout), locked(directory / name, timeout=0):
            pass


def replace_atomically(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write `path` through `write(handle)` to a unique temporary file, then rename it over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, staging = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=STAGING_SUFFIX
    )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
