"""Runs in an embedded SQLite database: each written once, in one transaction, with its outcome.

A run is recorded when it ends: `finished` with its result, or `failed` with the error text (a
failed run is retried by the next sweep, and a later success replaces it). A crash at any moment
loses at most the runs in progress; a half-written run never counts.

Several sweeps may share one store (one output directory): a sweep takes a run only after
claiming its *lease* (one row in `leases`, written in an IMMEDIATE transaction, so two claims
never both succeed), renews it while the run goes on, and drops it when recording the outcome.
A lease whose owner died (kill -9) is taken over at once on the same host (its pid is gone), and
after LEASE_SECONDS without renewal from any host.

The `meta` table carries the schema version and the versions of the code that created the
store; every run row also keeps the environment it ran in. A store of an older schema is
migrated in place; a newer one, a file that is not a promptworth store, or a damaged row is
refused with one line naming the file, and the file is left exactly as it was.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import json
import logging
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from promptworth.errors import PromptworthError, quoted

log = logging.getLogger("promptworth")
SCHEMA_VERSION = 3
SQLITE_HEADER = b"SQLite format 3\x00"
LEASE_SECONDS = 120.0  # a lease not renewed for this long is free
RENEW_SECONDS = LEASE_SECONDS / 4
NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"  # UTC, milliseconds: orders rows of one second
PACKAGES = ("promptworth", "torch", "transformers", "peft")
WAIT_VARIABLE = "PROMPTWORTH_STORE_WAIT"  # seconds to wait for a store another program locked
DEFAULT_WAIT = 60.0
QUIET_WAIT = 2.0  # sweeps sharing a store take turns within this; longer is said on stderr
# Where SQLite's write lock lives (POSIX byte-range locks): in WAL mode byte 120 of the -shm file
# (the writer slot), in rollback-journal mode the lock bytes of the database from 1 GiB on.
WRITE_LOCKS = (("-shm", 120, 1), ("", 0x40000000, 512))

STALE_TIE = (
    "kept its untrained start on an accuracy tie with training, a rule promptworth no longer "
    "uses (store schema 3): rerun the sweep to replace this run"
)
# Version 1: finished runs only. Fresh stores are created at version 1 and migrated like old
# ones, so there is one path to the current schema.
SCHEMA_V1 = """
CREATE TABLE runs (
    key TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    result TEXT NOT NULL,
    finished_at TEXT NOT NULL DEFAULT (datetime('now'))
)
"""
MIGRATIONS: dict[int, list[str]] = {  # from version N to N + 1
    1: [
        "ALTER TABLE runs ADD COLUMN status TEXT NOT NULL DEFAULT 'finished'",
        "ALTER TABLE runs ADD COLUMN error TEXT",
        "ALTER TABLE runs ADD COLUMN environment TEXT",
        "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE leases (
            key TEXT PRIMARY KEY, owner TEXT NOT NULL, host TEXT NOT NULL,
            pid INTEGER NOT NULL, expires REAL NOT NULL
        )""",
    ],
    # Until schema 3 the untrained start won an accuracy tie with training on the dev loss; now
    # only a strictly more accurate start is kept (methods/training.py `start_wins`). Runs that
    # rule decided are another experiment under the same key: they become failed, so a resumed
    # sweep reruns them, and keep their old result until it does.
    2: [
        f"""UPDATE runs SET status = 'failed', error = '{STALE_TIE}'
        WHERE status = 'finished' AND json_extract(result, '$.extra.selected_step') = 0
        AND json_extract(result, '$.extra.start_accuracy')
            = json_extract(result, '$.extra.trained_accuracy')"""
    ],
}
V1_COLUMNS = {"key", "config", "result", "finished_at"}
# A result's re-measurements of its serving (promptworth report --measure-serving), oldest first,
# each with when and where it was measured; readers use the last (analysis.results). The key is
# optional in a result, so stores with and without it share one schema.
SERVING_MEASUREMENTS = "serving_measurements"


class Claim(Enum):
    TAKEN = "taken"  # the caller holds the lease and runs it
    HELD = "held"  # another live sweep holds it
    DONE = "done"  # finished, or failed since the caller's sweep started


@dataclass(frozen=True)
class Failure:
    key: str
    config: dict
    error: str


def damaged(path: Path, what: str) -> PromptworthError:
    return PromptworthError(
        f"{path}: {what}; promptworth leaves this file untouched. Move it aside "
        f"(mv {path} {path}.damaged) and run again to start a new store there, or give another "
        "--out; its finished runs stay in the moved file"
    )


class StoreLocked(PromptworthError):
    """Another program held the store's lock for longer than the wait."""


def is_busy(error: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED: another connection holds the lock."""
    code = getattr(error, "sqlite_errorcode", None)  # Python 3.11+
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) if code else "locked" in str(error)


def store_wait() -> float:
    """How long to wait for a store another program locked: $PROMPTWORTH_STORE_WAIT seconds."""
    given = os.environ.get(WAIT_VARIABLE)
    try:
        seconds = float(given) if given else DEFAULT_WAIT
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise PromptworthError(f"{WAIT_VARIABLE}={quoted(given)}: expected seconds, e.g. 60")
    return seconds


def lock_holder(path: Path) -> str:
    """Who holds the write lock of the store at `path`: "process PID (NAME)" where POSIX
    locks tell (Linux), else "another program"."""
    pid = write_lock_pid(path) if sys.platform.startswith("linux") else None
    if pid is None:
        return "another program"
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return f"process {pid}"
    return f"process {pid} ({name})"


def write_lock_pid(path: Path) -> int | None:
    """The pid holding a write lock on SQLite's lock bytes of `path` (fcntl F_GETLK, whose
    struct flock is laid out as on Linux), or None."""
    import fcntl
    import struct

    layout = "hhqqi4x"  # l_type, l_whence, l_start, l_len, l_pid
    for suffix, start, length in WRITE_LOCKS:
        try:
            descriptor = os.open(f"{path}{suffix}", os.O_RDONLY)
        except OSError:
            continue
        try:
            query = struct.pack(layout, fcntl.F_RDLCK, os.SEEK_SET, start, length, 0)
            kind, _, _, _, pid = struct.unpack(
                layout, fcntl.fcntl(descriptor, fcntl.F_GETLK, query)
            )
        except OSError:
            continue
        finally:
            os.close(descriptor)
        if kind != fcntl.F_UNLCK:
            return pid
    return None


def locked_error(path: Path, waited: float) -> StoreLocked:
    return StoreLocked(
        f"{path}: locked by {lock_holder(path)} for over {waited:g} s; let it finish or stop it, "
        f"then run again (finished runs are kept), or wait longer with {WAIT_VARIABLE}=SECONDS"
    )


@contextlib.contextmanager
def readable(path: Path) -> Iterator[None]:
    """SQLite's own corruption errors as one line naming the file; a lock held past the wait
    as one line naming the holder (other operational errors keep their type)."""
    try:
        yield
    except sqlite3.OperationalError as error:
        if is_busy(error):
            raise locked_error(path, store_wait()) from None
        raise
    except sqlite3.DatabaseError as error:
        raise damaged(path, f"damaged SQLite database ({error})") from error


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


@functools.cache
def environment() -> dict[str, str]:
    """Versions of the code that produced a run: packages, and the git revision when the
    package is imported from a git work tree ("+dirty" with uncommitted changes)."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    revision = git_revision(Path(__file__).resolve().parents[1])
    if revision:
        versions["git"] = revision
    return versions


def git_revision(root: Path) -> str | None:
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


class RunStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.check_header()
        self._db = self.connect()
        with readable(self.path):
            self.open()

    def connect(self) -> sqlite3.Connection:
        # autocommit mode: every transaction below is explicit
        return sqlite3.connect(self.path, timeout=store_wait(), isolation_level=None)

    def check_header(self) -> None:
        if self.path.exists() and self.path.stat().st_size > 0:
            with self.path.open("rb") as handle:
                if handle.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
                    raise damaged(self.path, "not an SQLite database, so not a promptworth store")

    def open(self) -> None:
        """Check what the file holds before writing anything; then migrate and set up."""
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise PromptworthError(
                f"{self.path}: written by a newer promptworth (store schema {version}; this one "
                f"reads up to {SCHEMA_VERSION}); upgrade promptworth, or give another --out"
            )
        if version:
            self.check_rows()
        if version == SCHEMA_VERSION:
            return
        self._db.execute("PRAGMA journal_mode=WAL")
        with self.transaction():
            version = self.schema_version()  # again under the lock: another sweep may have begun
            if not version:
                self._db.execute(SCHEMA_V1)
            for step in range(max(version, 1), SCHEMA_VERSION):
                for statement in MIGRATIONS[step]:
                    self._db.execute(statement)
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            if not version:
                self.write_meta({**environment(), "created_at": now})
            elif version < SCHEMA_VERSION:
                self.write_meta(
                    {**environment(), "migrated_at": now, "migrated_from": str(version)}
                )
            self.write_meta({"schema_version": str(SCHEMA_VERSION)})

    def schema_version(self) -> int:
        """0 for an empty database; 1 for a store from before the `meta` table."""
        query = "SELECT name FROM sqlite_master WHERE type='table'"
        tables = {row[0] for row in self._db.execute(query)}
        if not tables:
            return 0
        if "meta" in tables:
            row = self._db.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone()
            if row is not None and row[0].isdigit():
                return int(row[0])
        elif tables == {"runs"}:
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(runs)")}
            if columns == V1_COLUMNS:
                return 1
        raise damaged(
            self.path,
            f"an SQLite database but not a promptworth store (tables: {', '.join(sorted(tables))})",
        )

    def check_rows(self) -> None:
        """Every stored config and result must be JSON; a damaged row is found before any
        write, never at the end of a sweep that has already added to the file."""
        for key, config, result in self._db.execute("SELECT key, config, result FROM runs"):
            for column, text in (("config", config), ("result", result)):
                try:
                    json.loads(text)
                except (TypeError, ValueError) as error:
                    raise damaged(
                        self.path, f"run {key}: its {column} is not valid JSON ({error})"
                    ) from error

    def save_meta(self, values: dict[str, str]) -> None:
        """Set `meta` entries in their own transaction (what a sweep leaves for its report)."""
        with readable(self.path), self.transaction():
            self.write_meta(values)

    def write_meta(self, values: dict[str, str]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", sorted(values.items())
        )

    @contextlib.contextmanager
    def transaction(self, db: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE takes the write lock at once: a claim's check and write are one."""
        db = db or self._db
        self.begin(db)
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def begin(self, db: sqlite3.Connection) -> None:
        """BEGIN IMMEDIATE; a lock held past QUIET_WAIT is said on stderr, with its holder,
        before waiting the rest of the store wait; past that, `readable` names the holder."""
        wait = store_wait()
        quiet = min(wait, QUIET_WAIT)
        try:
            db.execute(f"PRAGMA busy_timeout = {int(quiet * 1000)}")
            try:
                db.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if not is_busy(error) or wait <= quiet:
                    raise
            log.warning(
                "%s is locked by %s; waiting up to %g s for it (%s sets how long)",
                self.path,
                lock_holder(self.path),
                wait,
                WAIT_VARIABLE,
            )
            db.execute(f"PRAGMA busy_timeout = {int((wait - quiet) * 1000)}")
            db.execute("BEGIN IMMEDIATE")
        finally:
            db.execute(f"PRAGMA busy_timeout = {int(wait * 1000)}")

    # -- reading --------------------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        with readable(self.path):
            return dict(self._db.execute("SELECT name, value FROM meta"))

    def status(self, key: str) -> str | None:
        with readable(self.path):
            row = self._db.execute("SELECT status FROM runs WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def finished(self, key: str) -> bool:
        return self.status(key) == "finished"

    def now(self) -> str:
        """The store's clock (UTC, ms), to tell outcomes recorded since a moment."""
        return self._db.execute(f"SELECT {NOW}").fetchone()[0]

    def _rows(self, status: str, keys: list[str] | None):
        with readable(self.path):
            rows = self._db.execute(
                "SELECT key, config, result, error FROM runs WHERE status = ? ORDER BY finished_at",
                (status,),
            ).fetchall()
        wanted = set(keys) if keys is not None else None
        return [row for row in rows if wanted is None or row[0] in wanted]

    def load(self, keys: list[str] | None = None) -> list[tuple[str, dict, dict]]:
        """(key, config, result) of finished runs, all or those in `keys`."""
        return [(k, json.loads(c), json.loads(r)) for k, c, r, _ in self._rows("finished", keys)]

    def finished_keys(self) -> set[str]:
        """The keys of every finished run, without reading their results."""
        with readable(self.path):
            rows = self._db.execute("SELECT key FROM runs WHERE status = 'finished'").fetchall()
        return {key for (key,) in rows}

    def configs(self) -> list[tuple[str, dict]]:
        """(key, config) of every stored run, finished or failed."""
        with readable(self.path):
            rows = self._db.execute("SELECT key, config FROM runs").fetchall()
        return [(key, json.loads(config)) for key, config in rows]

    def failures(self, keys: list[str] | None = None) -> list[Failure]:
        """Runs whose last attempt failed (not finished since), all or those in `keys`."""
        return [Failure(k, json.loads(c), e or "") for k, c, _, e in self._rows("failed", keys)]

    # -- leases ---------------------------------------------------------------------------

    def claim(self, key: str, owner: str, since: str) -> Claim:
        """Take `key`'s lease for `owner` unless the run is done or another live sweep holds
        it. A failure recorded before `since` (the claiming sweep's start) is retried."""
        with readable(self.path), self.transaction() as db:
            row = db.execute(
                "SELECT status, finished_at FROM runs WHERE key = ?", (key,)
            ).fetchone()
            if row and (row[0] == "finished" or row[1] >= since):
                return Claim.DONE
            lease = db.execute(
                "SELECT owner, host, pid, expires FROM leases WHERE key = ?", (key,)
            ).fetchone()
            if lease and lease[0] != owner and not self.abandoned(*lease[1:]):
                return Claim.HELD
            db.execute(
                "INSERT OR REPLACE INTO leases (key, owner, host, pid, expires) "
                "VALUES (?, ?, ?, ?, ?)",
                (key, owner, self.host, self.pid, time.time() + LEASE_SECONDS),
            )
            return Claim.TAKEN

    def abandoned(self, host: str, pid: int, expires: float) -> bool:
        return expires < time.time() or (host == self.host and not pid_alive(pid))

    def release(self, owner: str) -> None:
        with readable(self.path), self.transaction() as db:
            db.execute("DELETE FROM leases WHERE owner = ?", (owner,))

    @contextlib.contextmanager
    def leases_kept(self, owner: str) -> Iterator[None]:
        """Renew `owner`'s leases every RENEW_SECONDS (a thread with its own connection) while
        the block runs; release them when it ends, however it ends (a kill -9 cannot)."""
        stop = threading.Event()

        def renew() -> None:
            db = self.connect()
            try:
                while not stop.wait(RENEW_SECONDS):
                    try:
                        with self.transaction(db):
                            db.execute(
                                "UPDATE leases SET expires = ? WHERE owner = ?",
                                (time.time() + LEASE_SECONDS, owner),
                            )
                    except sqlite3.OperationalError:  # busy for a minute: try at the next tick
                        continue
            finally:
                db.close()

        thread = threading.Thread(target=renew, name="promptworth-leases", daemon=True)
        thread.start()
        locked_out = False
        try:
            yield
        except StoreLocked:  # no second wait to release: the leases lapse, or go with this pid
            locked_out = True
            raise
        finally:
            stop.set()
            thread.join()
            if not locked_out:
                self.release(owner)

    def new_owner(self) -> str:
        return f"{self.host}:{self.pid}:{uuid.uuid4().hex[:8]}"

    # -- writing --------------------------------------------------------------------------

    def record(
        self, key: str, config: dict[str, Any], result: dict[str, Any], owner: str = ""
    ) -> None:
        """A finished run; replaces an earlier failure of the same key."""
        self._write(key, config, "finished", json.dumps(result), None, owner)

    def record_failure(self, key: str, config: dict[str, Any], error: str, owner: str = "") -> None:
        self._write(key, config, "failed", "null", error, owner)

    def _write(self, key, config, status, result, error, owner) -> None:
        with readable(self.path), self.transaction() as db:  # the row appears whole or not at all
            db.execute(
                "INSERT OR REPLACE INTO runs "
                "(key, config, result, status, error, environment, finished_at) "
                f"VALUES (?, ?, ?, ?, ?, ?, {NOW})",
                (
                    key,
                    json.dumps(config, sort_keys=True, default=str),
                    result,
                    status,
                    error,
                    json.dumps(environment(), sort_keys=True),
                ),
            )
            db.execute("DELETE FROM leases WHERE key = ? AND owner = ?", (key, owner))

    def add_serving_measurement(self, key: str, measurement: dict[str, Any]) -> None:
        """Append a re-measurement of finished run `key`'s serving to its result's
        SERVING_MEASUREMENTS list; the run's own figures, config and times stay as they were."""
        with readable(self.path), self.transaction() as db:
            row = db.execute(
                "SELECT result FROM runs WHERE key = ? AND status = 'finished'", (key,)
            ).fetchone()
            if row is None:
                raise PromptworthError(f"{self.path}: no finished run {key} to re-measure")
            result = json.loads(row[0])
            result[SERVING_MEASUREMENTS] = [*result.get(SERVING_MEASUREMENTS, []), measurement]
            db.execute("UPDATE runs SET result = ? WHERE key = ?", (json.dumps(result), key))

    def rekey(self, key: str, new_key: str, config: dict[str, Any]) -> bool:
        """Store run `key` under `new_key` with `config` (a default changed, the run did not),
        keeping its result and times; False if `new_key` is already stored."""
        with readable(self.path), self.transaction() as db:
            if db.execute("SELECT 1 FROM runs WHERE key = ?", (new_key,)).fetchone():
                return False
            db.execute(
                "UPDATE runs SET key = ?, config = ? WHERE key = ?",
                (new_key, json.dumps(config, sort_keys=True, default=str), key),
            )
            return True

    def close(self) -> None:
        self._db.close()
