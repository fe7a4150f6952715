"""What identifies a model in run keys: the bytes of a local directory, or a hub commit.

A local directory's revision is a digest of the bytes of every file transformers may load from it
(config, weights, tokenizer files, chat template, ...), so weights retrained and saved in place,
at the same size, make a new revision. Files under ALWAYS_HASH_BELOW bytes (configs, tokenizers)
are hashed on every plan. Hashing gigabytes of weights on every plan would be slow, so a larger
file's digest is cached in `<cache>/file-digests.json` by its path, size, inode, mtime_ns and
ctime_ns. The ctime is what catches weights rewritten in place with their old mtime restored
(`os.utime`, `cp -p`, `rsync -t`): no user call sets it back; the inode catches a file replaced
by another. A file whose mtime or ctime is within RACY_SECONDS of the moment it was hashed is
never cached: a rewrite in the same timestamp tick would keep the same stamps (git's "racy clean"
rule).

A hub model's revision is the commit its id resolves to when the sweep is planned; the model is
then loaded at that commit, so the key names what ran.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

from promptworth.atomic import locked, replace_atomically
from promptworth.backbones.cache import cache_root
from promptworth.errors import PromptworthError

log = logging.getLogger("promptworth")

RACY_SECONDS = 2.0
ALWAYS_HASH_BELOW = 1 << 20  # about a millisecond of hashing
# Files in a model directory that never affect loading: documentation, images, VCS and OS files.
# Everything else at the top level is hashed (transformers reads no subdirectory by default).
IGNORED_SUFFIXES = (".md", ".rst", ".png", ".jpg", ".jpeg", ".gif", ".svg")
IGNORED_PREFIXES = (".", "LICENSE", "LICENCE", "NOTICE", "COPYING")
CHUNK = 1 << 20


def loaded_files(directory: Path) -> list[Path]:
    """The top-level files of a model directory that can affect what is loaded, sorted."""
    return sorted(
        p
        for p in directory.iterdir()
        if p.is_file()
        and not p.name.startswith(IGNORED_PREFIXES)
        and not p.name.lower().endswith(IGNORED_SUFFIXES)
    )


def directory_revision(directory: Path) -> str:
    """`dir-` + a digest over the names and byte digests of the directory's loaded files."""
    digests = FileDigests()
    total = hashlib.sha256()
    for path in loaded_files(directory):
        total.update(f"{path.name}\0{digests.get(path)}\n".encode())
    digests.save()
    return f"dir-{total.hexdigest()[:16]}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def stat_key(stat: os.stat_result) -> dict[str, int]:
    """What must be unchanged for a cached digest to be reused."""
    return {
        "size": stat.st_size,
        "inode": stat.st_ino,
        "mtime_ns": stat.st_mtime_ns,
        "ctime_ns": stat.st_ctime_ns,
    }


class FileDigests:
    """sha256 of files, remembered across processes by path and `stat_key`."""

    def __init__(self, path: Path | None = None):
        self.path = path or cache_root() / "file-digests.json"
        self._entries = self._read()
        self._new: dict[str, dict] = {}

    def _read(self) -> dict[str, dict]:
        try:
            entries = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:  # a damaged cache only costs rehashing
            log.warning("%s: unreadable digest cache (%s); rehashing model files", self.path, error)
            return {}
        return entries if isinstance(entries, dict) else {}

    def get(self, path: Path) -> str:
        stat = path.stat()
        if stat.st_size < ALWAYS_HASH_BELOW:
            return sha256_file(path)
        key, known = str(path.resolve()), stat_key(stat)
        entry = self._entries.get(key)
        if entry and all(entry.get(field) == value for field, value in known.items()):
            return entry["sha256"]
        started = time.time_ns()
        digest = sha256_file(path)
        if max(stat.st_mtime_ns, stat.st_ctime_ns) < started - RACY_SECONDS * 1e9:
            self._new[key] = {**known, "sha256": digest}
        return digest

    def save(self) -> None:
        """Merge new entries into the file under its lock (other processes may add theirs),
        dropping entries of files that no longer exist."""
        if not self._new:
            return
        with locked(self.path):
            merged = {**self._read(), **self._new}
            entries = {k: v for k, v in merged.items() if os.path.exists(k)}
            replace_atomically(self.path, lambda h: h.write(json.dumps(entries).encode()))
        self._entries.update(self._new)
        self._new = {}


def hub_commit(repo_id: str) -> str:
    """The commit `repo_id` resolves to: asked of the hub when online, else (or when the hub
    cannot be reached) the commit of the locally cached snapshot."""
    from huggingface_hub import HfApi, constants

    reason = "offline (HF_HUB_OFFLINE)"
    if not constants.is_offline_mode():
        try:
            return HfApi().model_info(repo_id, timeout=30).sha
        except Exception as error:  # network, auth, unknown repo: the cache may still know it
            reason = f"the hub did not answer ({type(error).__name__}: {error})".splitlines()[0]
    snapshot = cached_snapshot(repo_id)
    if snapshot is not None:
        return snapshot.name
    raise PromptworthError(
        f"model {repo_id!r}: not a local directory, a packaged alias, nor a Hugging Face model "
        f"whose commit can be resolved: {reason}, and not in the local Hugging Face cache; give "
        f"an existing directory, or download the model once while online"
    )


def cached_snapshot(repo_id: str) -> Path | None:
    """The local Hugging Face cache's snapshot of `repo_id` that holds its config.json, if any
    (its directory name is the commit)."""
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # an id that is not a valid repo name has no cache either
        return None
    return Path(cached).parent if isinstance(cached, str) else None
