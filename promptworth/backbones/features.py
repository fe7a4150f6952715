"""Frozen-backbone features, computed once per example and reused across sizes, seeds and runs.

Vectors are kept in memory and in `<out>/features/<namespace-hash>.npz`, so a resumed sweep
does not recompute them either. Sweeps and Ray workers sharing an output directory share these
files: missing vectors are computed holding the file's lock, after taking those another process
saved meanwhile, so each is computed once; the file is replaced atomically (promptworth.atomic),
and a file that cannot be read whole (truncated, damaged, inconsistent) is reported, removed
and recomputed rather than failing every later run.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from promptworth.atomic import clean_staging, locked, replace_atomically
from promptworth.tasks.base import Example, example_key

log = logging.getLogger("promptworth")


def text_key(example: Example) -> str:
    """The cache key of an example: a digest of its text, or of all its inputs in order."""
    return hashlib.sha1(example_key(example).encode()).hexdigest()


class DamagedFeatures(ValueError):
    """A feature file that cannot be read whole."""


def read_features(path: Path) -> tuple[dict[str, np.ndarray], float | None]:
    """(text key -> vector, seconds per text) from a feature file; DamagedFeatures if it is not
    a complete, consistent one."""
    try:
        with np.load(path) as stored:
            keys, vectors = stored["keys"], stored["vectors"]
            seconds = float(stored["seconds_per_text"]) if "seconds_per_text" in stored else None
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise DamagedFeatures(f"{type(error).__name__}: {error}") from error
    if keys.ndim != 1 or vectors.ndim != 2 or len(keys) != len(vectors):
        raise DamagedFeatures(f"{len(keys)} keys but vectors of shape {vectors.shape}")
    return dict(zip(keys.tolist(), vectors)), seconds


class FeatureCache:
    def __init__(self, directory: Path | None = None):
        self.directory = directory
        self._tables: dict[str, dict[str, np.ndarray]] = {}
        self._seconds_per_text: dict[str, float] = {}

    def clean(self) -> None:
        """Remove what feature writes killed midway left in the directory (atomic.clean_staging)."""
        if self.directory is not None:
            clean_staging(self.directory)

    def _path(self, namespace: str) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / f"{hashlib.sha1(namespace.encode()).hexdigest()[:16]}.npz"

    def _load(self, path: Path | None) -> tuple[dict[str, np.ndarray], float | None]:
        """What `path` holds; a damaged file counts as empty (see `_load_locked`)."""
        if path is None or not path.exists():
            return {}, None
        try:
            return read_features(path)
        except DamagedFeatures:
            with locked(path):  # a writer may be replacing it: look again under the lock
                return self._load_locked(path)

    @staticmethod
    def _load_locked(path: Path) -> tuple[dict[str, np.ndarray], float | None]:
        """`_load` with the file's lock held: a damaged file is reported and removed."""
        if not path.exists():
            return {}, None
        try:
            return read_features(path)
        except DamagedFeatures as error:
            log.warning(
                "%s: damaged feature cache (%s); removed, its vectors are recomputed", path, error
            )
            path.unlink()
            return {}, None

    def _table(self, namespace: str) -> dict[str, np.ndarray]:
        if namespace not in self._tables:
            table, seconds = self._load(self._path(namespace))
            if seconds is not None:  # so a resumed sweep charges the same
                self._seconds_per_text[namespace] = seconds
            self._tables[namespace] = table
        return self._tables[namespace]

    def get(
        self, namespace: str, texts: list[Example], compute: Callable[[list[Example]], np.ndarray]
    ) -> np.ndarray:
        """Vectors for `texts`, computing (in one batch) only those never seen before."""
        table = self._table(namespace)
        keys = [text_key(t) for t in texts]
        if any(k not in table for k in keys):
            self._fill(namespace, table, dict(zip(keys, texts)), compute)
        return np.stack([table[k] for k in keys])

    def _fill(self, namespace: str, table: dict, wanted: dict[str, str], compute) -> None:
        """Compute the `wanted` vectors (text key -> text) `table` lacks, holding the file's lock:
        vectors another process saved meanwhile (a Ray worker, another sweep) are taken from
        the file, so each is computed once, and the file is replaced with them all."""
        path = self._path(namespace)
        with locked(path, timeout=-1) if path else contextlib.nullcontext():  # waits for a writer
            stored, seconds = self._load_locked(path) if path else ({}, None)
            if seconds is not None:  # the rate measured when the file was last filled
                self._seconds_per_text[namespace] = seconds
            shape = next((v.shape for v in table.values()), None)
            table.update(
                {k: v for k, v in stored.items() if k not in table and shape in (None, v.shape)}
            )
            missing = {k: t for k, t in wanted.items() if k not in table}
            if not missing:
                return
            start = time.perf_counter()
            vectors = compute(list(missing.values()))
            self._seconds_per_text[namespace] = (time.perf_counter() - start) / len(missing)
            table.update(zip(missing.keys(), vectors))
            if path:
                self._write(path, namespace, table)

    def cost(self, namespace: str, n_texts: int) -> float:
        """Seconds computing `n_texts` vectors costs, measured when the namespace was last filled.

        Runs that reuse cached vectors report this, so their cost is not understated."""
        return self._seconds_per_text.get(namespace, 0.0) * n_texts

    def _write(self, path: Path, namespace: str, table: dict[str, np.ndarray]) -> None:
        """Replace the file with `table` (the caller holds its lock and merged the file in)."""
        seconds = np.array(self._seconds_per_text.get(namespace, 0.0))
        replace_atomically(
            path,
            lambda handle: np.savez(
                handle,
                keys=np.array(list(table)),
                vectors=np.stack(list(table.values())),
                seconds_per_text=seconds,
            ),
        )
