"""Nested training subsets and the fixed test subset.

For each seed one ordering of the training pool is drawn; the subset of size n is its first n
rows, so the 10 examples are among the 32, which are among the 100, and so on.

- `balanced` (the default, as in few-shot work: PET, LM-BFF, SetFit draw examples per label):
  each class's rows are shuffled, then dealt round-robin, one row per class per round, each
  round in a fresh random class order. Every prefix of n rows therefore holds ⌊n/k⌋ or ⌈n/k⌉
  rows of each of the k classes. When a class runs out of rows, later rounds deal only the
  classes that still have some: that class keeps all its rows, the others stay within one row
  of each other (as balanced as the pool allows). Sizes below k are refused: some class would
  have no example.
- `random`: a plain permutation of the pool (the reference's draw); class counts follow the
  pool's proportions and a small subset can miss a class.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from promptworth.errors import PromptworthError, quoted
from promptworth.tasks.base import Split

SAMPLINGS = ("balanced", "random")
DEFAULT_SAMPLING = "balanced"
TEST_SUBSET_SEED = 20210315  # fixed: every run of every sweep sees the same test rows


def interleave(groups: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """The rows of `groups` dealt round-robin: round d holds the d-th row of every group that has
    one, in a random order. Every prefix takes ⌊n/g⌋ or ⌈n/g⌉ rows of each of the g groups while
    all of them have rows; a round's draw depends only on how many groups reach it."""
    order = []
    for depth in range(max((len(g) for g in groups), default=0)):
        order.extend(rng.permutation([g[depth] for g in groups if depth < len(g)]))
    return np.asarray(order, dtype=int)


def pool_order(labels: np.ndarray, seed: int, sampling: str) -> np.ndarray:
    check_sampling(sampling)
    rng = np.random.default_rng(seed)
    if sampling == "random":
        return rng.permutation(len(labels))
    classes = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    return interleave(classes, rng)


def check_sampling(sampling: str) -> None:
    if sampling not in SAMPLINGS:
        raise PromptworthError(
            f"--sampling {quoted(sampling)}: choose one of {', '.join(SAMPLINGS)}"
        )


def check_sizes(labels: np.ndarray, sizes: list[int], sampling: str, flag: str = "--sizes") -> None:
    """Refuse sizes the pool cannot give, before any model loads; `flag` gave them."""
    check_sampling(sampling)
    too_big = [n for n in sizes if n > len(labels)]
    if too_big:
        raise PromptworthError(
            f"{flag} {', '.join(map(str, too_big))}: the training pool has only "
            f"{len(labels)} examples"
        )
    n_classes = len(np.unique(labels))
    too_small = [n for n in sizes if 0 < n < n_classes]
    if sampling == "balanced" and too_small:
        raise PromptworthError(
            f"{flag} {too_small} are below the {n_classes} classes of the training pool: "
            f"balanced sampling gives every class an example; use sizes of at least "
            f"{n_classes} (or --sampling random)"
        )


def nested_subsets(
    labels: np.ndarray, sizes: list[int], seed: int, sampling: str
) -> dict[int, np.ndarray]:
    check_sizes(labels, sizes, sampling)
    order = pool_order(labels, seed, sampling)
    return {n: order[:n] for n in sizes}


def fixed_test_indices(n_test: int, size: int | None) -> np.ndarray:
    """A fixed sample of the test set (all of it when size is None or too large), in order."""
    if size is None or size >= n_test:
        return np.arange(n_test)
    rng = np.random.default_rng(TEST_SUBSET_SEED)
    return np.sort(rng.choice(n_test, size=size, replace=False))


@dataclass(frozen=True)
class Remainder:
    """The training pool without a run's labelled rows (RunContext.pool), as a view: rows are
    copied only when a method takes a subset (distill samples a few hundred), not per run."""

    pool: Split
    taken: list[int]

    @cached_property
    def indices(self) -> np.ndarray:
        return np.setdiff1d(np.arange(len(self.pool)), self.taken)

    def __len__(self) -> int:
        return len(self.indices)

    def subset(self, indices: np.ndarray | list[int]) -> Split:
        return self.pool.subset(self.indices[np.asarray(indices, dtype=int)])
