"""Nested training subsets and the fixed test subset."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from promptworth.subsets import fixed_test_indices, nested_subsets

LABELS = np.repeat(np.arange(4), 250)
SIZES = [10, 32, 100, 320]


@pytest.mark.parametrize("stratify", [False, True])
def test_subsets_are_nested(stratify):
    subsets = nested_subsets(LABELS, SIZES, seed=3, stratify=stratify)
    for small, large in itertools.pairwise(SIZES):
        assert set(subsets[small]) <= set(subsets[large])
    assert all(len(subsets[n]) == len(set(subsets[n])) == n for n in SIZES)


def test_seeds_differ_and_repeat():
    a = nested_subsets(LABELS, SIZES, seed=0, stratify=False)
    b = nested_subsets(LABELS, SIZES, seed=1, stratify=False)
    again = nested_subsets(LABELS, SIZES, seed=0, stratify=False)
    assert set(a[100]) != set(b[100])
    np.testing.assert_array_equal(a[100], again[100])


def test_stratified_prefixes_are_balanced():
    subsets = nested_subsets(LABELS, [12, 100], seed=0, stratify=True)
    assert np.bincount(LABELS[subsets[12]]).tolist() == [3, 3, 3, 3]
    assert np.bincount(LABELS[subsets[100]]).tolist() == [25, 25, 25, 25]


def test_too_large_size_is_refused():
    with pytest.raises(ValueError, match="exceed"):
        nested_subsets(LABELS, [2000], seed=0, stratify=False)


def test_fixed_test_indices_are_fixed_and_sorted():
    first, second = fixed_test_indices(7600, 500), fixed_test_indices(7600, 500)
    np.testing.assert_array_equal(first, second)
    assert len(set(first)) == 500 and np.all(np.diff(first) > 0)
    assert len(fixed_test_indices(50, None)) == 50 and len(fixed_test_indices(50, 80)) == 50
