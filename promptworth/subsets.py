"""Nested training subsets and the fixed test subset.

For each seed one ordering of the training pool is drawn; the subset of size n is its first n
rows, so the 10 examples are among the 32, which are among the 100, and so on. Stratified
orderings interleave the classes, so every prefix is as balanced as it can be.
"""

from __future__ import annotations

import numpy as np

TEST_SUBSET_SEED = 20210315  # fixed: every run of every sweep sees the same test rows


def pool_order(labels: np.ndarray, seed: int, stratify: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if not stratify:
        return rng.permutation(len(labels))
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    order = []
    for depth in range(max(len(p) for p in per_class)):
        rows = [p[depth] for p in per_class if depth < len(p)]
        order.extend(rng.permutation(rows))
    return np.asarray(order, dtype=int)


def nested_subsets(
    labels: np.ndarray, sizes: list[int], seed: int, stratify: bool
) -> dict[int, np.ndarray]:
    too_big = [n for n in sizes if n > len(labels)]
    if too_big:
        raise ValueError(f"sizes {too_big} exceed the {len(labels)} training examples available")
    order = pool_order(labels, seed, stratify)
    return {n: order[:n] for n in sizes}


def fixed_test_indices(n_test: int, size: int | None) -> np.ndarray:
    """A fixed sample of the test set (all of it when size is None or too large), in order."""
    if size is None or size >= n_test:
        return np.arange(n_test)
    rng = np.random.default_rng(TEST_SUBSET_SEED)
    return np.sort(rng.choice(n_test, size=size, replace=False))
