"""The run store: outcomes, schema and migration, damage refused untouched, run leases."""

from __future__ import annotations

import importlib.metadata
import json
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from promptworth.errors import PromptworthError
from promptworth.store import database as store_module
from promptworth.store.database import (
    SCHEMA_V1,
    SCHEMA_VERSION,
    Claim,
    RunStore,
    environment,
    git_revision,
)

CONFIG = {"method": "head", "n_train": 4, "seed": 0}


@pytest.fixture
def path(tmp_path):
    return tmp_path / "runs.sqlite"


def test_failed_run_is_listed_never_loaded_and_replaced_by_a_success(path):
    store = RunStore(path)
    store.record_failure("k1", CONFIG, "RuntimeError: boom")
    store.record("k2", CONFIG, {"accuracy": 0.5})
    assert [(f.key, f.error) for f in store.failures()] == [("k1", "RuntimeError: boom")]
    assert [key for key, _, _ in store.load()] == ["k2"]
    assert not store.finished("k1") and store.status("k1") == "failed"
    store.record("k1", CONFIG, {"accuracy": 0.7})
    assert store.failures() == [] and {k for k, _, _ in store.load()} == {"k1", "k2"}


def test_schema_version_and_versions_of_the_code_are_in_meta(path):
    meta = RunStore(path).meta()
    assert meta["schema_version"] == str(SCHEMA_VERSION)
    assert {"promptworth", "torch", "transformers", "peft", "created_at"} <= set(meta)
    assert meta["torch"] == importlib.metadata.version("torch")
    # what the store computed once for this process (a commit landing while the tests run
    # moves HEAD, not the code this process imported: git_revision is tested on its own below)
    assert {name: meta[name] for name in environment()} == environment()
    if (Path(store_module.__file__).resolve().parents[1] / ".git").exists():
        assert "git" in meta  # imported from a git work tree: its revision is recorded


def test_the_revision_recorded_is_that_of_the_package_work_tree(path, monkeypatch):
    roots = []
    monkeypatch.setattr(
        store_module, "git_revision", lambda root: roots.append(root) or "abc1+dirty"
    )
    environment.cache_clear()
    try:
        assert RunStore(path).meta()["git"] == "abc1+dirty"
    finally:
        environment.cache_clear()  # the next caller computes the real one
    assert roots == [Path(store_module.__file__).resolve().parents[1]]


def test_git_revision_is_head_and_says_dirty(tmp_path):
    def git(*args: str) -> str:
        command = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
        return subprocess.run([*command, *args], capture_output=True, text=True, check=True).stdout

    assert git_revision(tmp_path) is None  # not a work tree
    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", "code.py")
    git("commit", "-q", "-m", "first")
    head = git("rev-parse", "HEAD").strip()
    assert git_revision(tmp_path) == head
    (tmp_path / "untracked.py").write_text("")  # untracked files do not make it dirty
    assert git_revision(tmp_path) == head
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_revision(tmp_path) == head + "+dirty"


def test_every_run_keeps_the_environment_it_ran_in(path):
    store = RunStore(path)
    store.record("k", CONFIG, {"accuracy": 0.5})
    (row,) = sqlite3.connect(path).execute("SELECT environment FROM runs").fetchall()
    assert json.loads(row[0])["transformers"] == store.meta()["transformers"]


def test_a_schema_1_store_is_migrated_and_keeps_its_runs(path):
    with sqlite3.connect(path) as db:
        db.execute(SCHEMA_V1)
        db.execute(
            "INSERT INTO runs (key, config, result) VALUES (?, ?, ?)",
            ("old", json.dumps(CONFIG), json.dumps({"accuracy": 0.6})),
        )
    store = RunStore(path)
    assert store.load() == [("old", CONFIG, {"accuracy": 0.6})]
    assert store.meta()["schema_version"] == str(SCHEMA_VERSION)
    assert store.meta()["migrated_from"] == "1"
    store.record_failure("new", CONFIG, "ValueError: x")  # the new columns work
    assert [f.key for f in store.failures()] == ["new"]


def test_runs_the_old_tie_rule_decided_are_marked_for_rerun(path):
    """Schema 2 -> 3: a run that kept its start on an accuracy tie is failed (so a resume reruns
    it) with its old result kept; every other run, ties that training won included, stays."""
    store = RunStore(path)
    extras = {
        "tie-start": {"selected_step": 0, "start_accuracy": 0.8, "trained_accuracy": 0.8},
        "tie-trained": {"selected_step": 50, "start_accuracy": 0.75, "trained_accuracy": 0.75},
        "start-better": {"selected_step": 0, "start_accuracy": 0.9, "trained_accuracy": 0.6},
        "no-selection": {},
    }
    for key, extra in extras.items():
        store.record(key, CONFIG, {"accuracy": 0.7, "extra": extra})
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '2' WHERE name = 'schema_version'")
    store = RunStore(path)
    assert sorted(key for key, _, _ in store.load()) == [
        "no-selection",
        "start-better",
        "tie-trained",
    ]
    (stale,) = store.failures()
    assert stale.key == "tie-start" and "accuracy tie" in stale.error
    assert store.meta()["migrated_from"] == "2"
    (result,) = sqlite3.connect(path).execute("SELECT result FROM runs WHERE key = 'tie-start'")
    assert json.loads(result[0])["extra"] == extras["tie-start"]


def test_a_store_from_a_newer_promptworth_is_refused(path):
    store = RunStore(path)
    with store.transaction() as db:
        db.execute("UPDATE meta SET value = '99' WHERE name = 'schema_version'")
    store.close()
    with pytest.raises(PromptworthError, match=r"newer promptworth.*schema 99"):
        RunStore(path)


def unchanged_after_refusal(path, match: str) -> str:
    before = path.read_bytes()
    with pytest.raises(PromptworthError, match=match) as error:
        RunStore(path)
    assert path.read_bytes() == before
    message = str(error.value)
    assert "\n" not in message and str(path) in message and "Move it aside" in message
    return message


def test_garbage_bytes_are_refused_with_the_file_named_and_left_untouched(path):
    path.write_bytes(b"\x00garbage, not a database" * 100)
    unchanged_after_refusal(path, "not an SQLite database")


def test_a_row_of_invalid_json_is_refused_before_anything_is_written(path):
    store = RunStore(path)
    store.record("good", CONFIG, {"accuracy": 0.5})
    store.record("bad", CONFIG, {"accuracy": 0.5})
    store.close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE runs SET result = '{\"accuracy\": 0.' WHERE key = 'bad'")
    db.close()
    assert not path.with_name("runs.sqlite-wal").exists()  # everything is in the main file
    message = unchanged_after_refusal(path, "run bad: its result is not valid JSON")
    assert "finished runs stay" in message


def test_a_foreign_sqlite_database_is_refused_untouched(path):
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE photos (id INTEGER)")
    db.close()
    unchanged_after_refusal(path, "not a promptworth store.*photos")


def test_damaged_pages_are_a_one_line_error(path):
    store = RunStore(path)
    for i in range(200):  # enough pages that damage lands in the runs table's b-tree
        store.record(f"k{i}", CONFIG, {"accuracy": 0.5, "padding": "x" * 500})
    store.close()
    data = bytearray(path.read_bytes())
    data[4096 * 3 : 4096 * 6] = b"\xff" * (4096 * 3)
    path.write_bytes(bytes(data))
    with pytest.raises(PromptworthError, match="damaged SQLite database"):
        RunStore(path).load()


# -- leases ------------------------------------------------------------------------------


def test_a_claimed_run_is_held_from_others_until_recorded(path):
    a, b = RunStore(path), RunStore(path)
    owner_a, owner_b, since = a.new_owner(), b.new_owner(), a.now()
    assert a.claim("k", owner_a, since) is Claim.TAKEN
    assert b.claim("k", owner_b, since) is Claim.HELD
    assert a.claim("k", owner_a, since) is Claim.TAKEN  # one's own lease
    a.record("k", CONFIG, {"accuracy": 0.5}, owner_a)
    assert b.claim("k", owner_b, since) is Claim.DONE


def test_a_failure_since_the_sweep_began_is_done_an_older_one_is_retried(path):
    store = RunStore(path)
    store.record_failure("old", CONFIG, "boom")
    time.sleep(0.01)
    since = store.now()
    store.record_failure("new", CONFIG, "boom")
    assert store.claim("old", store.new_owner(), since) is Claim.TAKEN
    assert store.claim("new", store.new_owner(), since) is Claim.DONE


def insert_lease(store: RunStore, host: str, pid: int, expires: float) -> None:
    with store.transaction() as db:
        db.execute(
            "INSERT INTO leases (key, owner, host, pid, expires) VALUES ('k', 'other', ?, ?, ?)",
            (host, pid, expires),
        )


def test_the_lease_of_a_dead_process_on_this_host_is_taken_over(path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store = RunStore(path)
    insert_lease(store, socket.gethostname(), dead.pid, time.time() + 3600)
    assert store.claim("k", store.new_owner(), store.now()) is Claim.TAKEN


def test_an_expired_lease_from_another_host_is_taken_over_a_live_one_is_not(path):
    store = RunStore(path)
    insert_lease(store, "elsewhere", 1, time.time() + 3600)
    assert store.claim("k", store.new_owner(), store.now()) is Claim.HELD
    with store.transaction() as db:
        db.execute("UPDATE leases SET expires = ?", (time.time() - 1,))
    assert store.claim("k", store.new_owner(), store.now()) is Claim.TAKEN


def test_leases_are_released_however_the_block_ends(path):
    store = RunStore(path)
    owner = store.new_owner()
    with pytest.raises(KeyboardInterrupt), store.leases_kept(owner):
        assert store.claim("k", owner, store.now()) is Claim.TAKEN
        raise KeyboardInterrupt
    other = RunStore(path)
    assert other.claim("k", other.new_owner(), other.now()) is Claim.TAKEN
