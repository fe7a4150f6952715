"""The frozen-feature cache: computed once, reused, and charged at what computing cost."""

from __future__ import annotations

import time

import numpy as np

from promptworth.features import FeatureCache


def slow_vectors(texts: list[str]) -> np.ndarray:
    time.sleep(0.01 * len(texts))
    return np.array([[len(t), t.count("a")] for t in texts], dtype=np.float32)


def test_cached_vectors_are_charged_in_a_new_process(tmp_path):
    first = FeatureCache(tmp_path)
    vectors = first.get("ns", ["a", "bb", "aaa"], slow_vectors)
    charge = first.cost("ns", 3)
    assert charge >= 0.03

    def never(texts):
        raise AssertionError(f"recomputed {texts}")

    resumed = FeatureCache(tmp_path)  # what a resumed sweep or a later invocation sees
    np.testing.assert_array_equal(resumed.get("ns", ["a", "bb", "aaa"], never), vectors)
    assert resumed.cost("ns", 3) == charge
    assert resumed.cost("other", 3) == 0.0
