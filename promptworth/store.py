"""Finished runs in an embedded SQLite database: written once per run, in one transaction.

A run is recorded only when it has finished, so a crash at any moment loses at most the run
in progress and a half-written run never counts. One process (the sweep) writes the store.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    result TEXT NOT NULL,
    finished_at TEXT NOT NULL DEFAULT (datetime('now'))
)
"""


class RunStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(SCHEMA)
        self._db.commit()

    def finished(self, key: str) -> bool:
        return self._db.execute("SELECT 1 FROM runs WHERE key = ?", (key,)).fetchone() is not None

    def record(self, key: str, config: dict[str, Any], result: dict[str, Any]) -> None:
        with self._db:  # one transaction: the row appears whole or not at all
            self._db.execute(
                "INSERT OR REPLACE INTO runs (key, config, result) VALUES (?, ?, ?)",
                (key, json.dumps(config, sort_keys=True, default=str), json.dumps(result)),
            )

    def load(self, keys: list[str] | None = None) -> list[tuple[str, dict, dict]]:
        """(key, config, result) of finished runs, all or those in `keys`."""
        rows = self._db.execute(
            "SELECT key, config, result FROM runs ORDER BY finished_at"
        ).fetchall()
        wanted = set(keys) if keys is not None else None
        return [
            (k, json.loads(c), json.loads(r)) for k, c, r in rows if wanted is None or k in wanted
        ]

    def close(self) -> None:
        self._db.close()
