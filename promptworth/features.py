"""Frozen-backbone features, computed once per example and reused across sizes, seeds and runs.

Vectors are kept in memory and in `<out>/features/<namespace-hash>.npz`, so a resumed sweep
does not recompute them either.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


class FeatureCache:
    def __init__(self, directory: Path | None = None):
        self.directory = directory
        self._tables: dict[str, dict[str, np.ndarray]] = {}
        self._seconds_per_text: dict[str, float] = {}

    def _path(self, namespace: str) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / f"{hashlib.sha1(namespace.encode()).hexdigest()[:16]}.npz"

    def _table(self, namespace: str) -> dict[str, np.ndarray]:
        if namespace not in self._tables:
            table: dict[str, np.ndarray] = {}
            path = self._path(namespace)
            if path is not None and path.exists():
                with np.load(path) as stored:
                    table = dict(zip(stored["keys"].tolist(), stored["vectors"]))
                    if "seconds_per_text" in stored:  # so a resumed sweep charges the same
                        self._seconds_per_text[namespace] = float(stored["seconds_per_text"])
            self._tables[namespace] = table
        return self._tables[namespace]

    def get(
        self, namespace: str, texts: list[str], compute: Callable[[list[str]], np.ndarray]
    ) -> np.ndarray:
        """Vectors for `texts`, computing (in one batch) only those never seen before."""
        table = self._table(namespace)
        keys = [text_key(t) for t in texts]
        missing = {k: t for k, t in zip(keys, texts) if k not in table}
        if missing:
            start = time.perf_counter()
            vectors = compute(list(missing.values()))
            self._seconds_per_text[namespace] = (time.perf_counter() - start) / len(missing)
            table.update(zip(missing.keys(), vectors))
            self._save(namespace, table)
        return np.stack([table[k] for k in keys])

    def cost(self, namespace: str, n_texts: int) -> float:
        """Seconds computing `n_texts` vectors costs, measured when the namespace was last filled.

        Runs that reuse cached vectors report this, so their cost is not understated."""
        return self._seconds_per_text.get(namespace, 0.0) * n_texts

    def _save(self, namespace: str, table: dict[str, np.ndarray]) -> None:
        path = self._path(namespace)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_suffix(".tmp.npz")
        np.savez(
            staging,
            keys=np.array(list(table)),
            vectors=np.stack(list(table.values())),
            seconds_per_text=np.array(self._seconds_per_text.get(namespace, 0.0)),
        )
        os.replace(staging, path)
