"""The frozen-feature cache: computed once, reused, and charged at what computing cost."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from promptworth.backbones.features import FeatureCache, read_features, text_key


def slow_vectors(texts: list[str]) -> np.ndarray:
    time.sleep(0.01 * len(texts))
    return np.array([[len(t), t.count("a")] for t in texts], dtype=np.float32)


def test_cached_vectors_are_charged_in_a_new_process(tmp_path):
    first = FeatureCache(tmp_path)
    vectors = first.get("ns", ["a", "bb", "aaa"], slow_vectors)
    charge = first.cost("ns", 3)
    assert charge >= 0.03

    resumed = FeatureCache(tmp_path)  # what a resumed sweep or a later invocation sees
    np.testing.assert_array_equal(resumed.get("ns", ["a", "bb", "aaa"], never), vectors)
    assert resumed.cost("ns", 3) == charge
    assert resumed.cost("other", 3) == 0.0


def vectors_of(texts: list[str]) -> np.ndarray:
    return np.array([[len(t), t.count("a")] for t in texts], dtype=np.float32)


def only_file(directory) -> Path:
    (path,) = directory.glob("*.npz")
    return path


def test_two_writers_keep_each_others_entries(tmp_path):
    """Two sweeps into one --out, each with its own in-memory cache: the file ends with both."""
    first, second = FeatureCache(tmp_path), FeatureCache(tmp_path)
    first.get("ns", ["a", "bb"], vectors_of)
    second.get("ns", ["ccc"], vectors_of)  # it read nothing of "a", "bb" before computing
    first.get("ns", ["dddd"], vectors_of)
    keys, _ = read_features(only_file(tmp_path))
    assert set(keys) == {text_key(t) for t in ["a", "bb", "ccc", "dddd"]}
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []


def test_vectors_another_process_saved_meanwhile_are_taken_not_recomputed(tmp_path):
    """Two Ray workers (or sweeps) on one --out: the second read the file before the first
    saved; it still computes only what neither has, and is charged what the first measured."""
    first, second = FeatureCache(tmp_path), FeatureCache(tmp_path)
    first.get("ns", ["zz"], vectors_of)
    second.get("ns", ["zz"], never)  # its table is loaded now, without "a" and "bb"
    first.get("ns", ["a", "bb"], slow_vectors)
    np.testing.assert_array_equal(second.get("ns", ["a", "bb"], never), vectors_of(["a", "bb"]))
    assert second.cost("ns", 2) == first.cost("ns", 2) >= 0.02
    computed = []
    second.get("ns", ["a", "c"], lambda t: computed.extend(t) or vectors_of(t))
    assert computed == ["c"]


def never(texts):
    raise AssertionError(f"recomputed {texts}")


def mismatched(path: Path) -> None:
    with path.open("wb") as handle:
        np.savez(handle, keys=np.array(["x", "y"]), vectors=np.ones((3, 2)))


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
        lambda path: path.write_bytes(b""),
        mismatched,
    ],
    ids=["truncated", "empty", "mismatched-shapes"],
)
def test_a_damaged_file_is_reported_removed_and_recomputed(tmp_path, caplog, damage):
    FeatureCache(tmp_path).get("ns", ["a", "bb"], vectors_of)
    path = only_file(tmp_path)
    damage(path)
    computed = []
    vectors = FeatureCache(tmp_path).get(
        "ns", ["a", "bb"], lambda t: computed.extend(t) or vectors_of(t)
    )
    assert computed == ["a", "bb"]
    np.testing.assert_array_equal(vectors, vectors_of(["a", "bb"]))
    assert any(str(path) in r.getMessage() and "damaged" in r.getMessage() for r in caplog.records)
    keys, _ = read_features(path)  # rewritten whole
    assert len(keys) == 2
