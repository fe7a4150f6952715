"""Nested training subsets (balanced and random) and the fixed test subset."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from promptworth.errors import PromptworthError
from promptworth.tasks.subsets import SAMPLINGS, fixed_test_indices, nested_subsets

LABELS = np.repeat(np.arange(4), 250)
SIZES = [10, 32, 100, 320]
# Uneven pools: five classes of very different sizes; a class of 3 rows runs out early.
UNEVEN = np.repeat(np.arange(5), [400, 40, 3, 150, 90])
SHUFFLED = np.random.default_rng(7).permutation(np.repeat(np.arange(3), [50, 20, 80]))


@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_subsets_are_nested(sampling):
    subsets = nested_subsets(LABELS, SIZES, seed=3, sampling=sampling)
    for small, large in itertools.pairwise(SIZES):
        np.testing.assert_array_equal(subsets[large][:small], subsets[small])  # a prefix
    assert all(len(subsets[n]) == len(set(subsets[n])) == n for n in SIZES)


@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_seeds_differ_and_repeat(sampling):
    a = nested_subsets(LABELS, SIZES, seed=0, sampling=sampling)
    b = nested_subsets(LABELS, SIZES, seed=1, sampling=sampling)
    again = nested_subsets(LABELS, SIZES, seed=0, sampling=sampling)
    assert set(a[100]) != set(b[100])
    for n in SIZES:
        np.testing.assert_array_equal(a[n], again[n])


def water_filled(counts: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The per-class bounds of the most balanced n rows a pool with `counts` rows per class can
    give: each class min(count, t) or min(count, t + 1) rows for the level t that sums to n."""
    level = max(t for t in range(n + 1) if np.minimum(counts, t).sum() <= n)
    return np.minimum(counts, level), np.minimum(counts, level + 1)


@pytest.mark.parametrize("labels", [LABELS, UNEVEN, SHUFFLED], ids=["even", "uneven", "shuffled"])
@pytest.mark.parametrize("seed", [0, 1, 2, 11])
def test_balanced_prefixes_are_balanced_at_every_size(labels, seed):
    classes, counts = np.unique(labels, return_counts=True)
    order = nested_subsets(labels, [len(labels)], seed, "balanced")[len(labels)]
    assert sorted(order) == list(range(len(labels)))  # the whole pool, each row once
    for n in range(len(classes), len(labels) + 1):  # every prefix size, not only the sweep's
        held = np.bincount(labels[order[:n]], minlength=len(classes))
        low, high = water_filled(counts, n)
        assert np.all(held >= low) and np.all(held <= high), (n, held)
        if n <= len(classes) * counts.min():  # no class has run out: exactly ⌊n/k⌋ or ⌈n/k⌉
            assert set(held) <= {n // len(classes), -(-n // len(classes))}


def test_balanced_prefix_of_an_uneven_pool_after_a_class_runs_out():
    subset = nested_subsets(UNEVEN, [100], seed=0, sampling="balanced")[100]
    # The 3-row class gives all it has; the others share the rest within one of each other.
    assert sorted(np.bincount(UNEVEN[subset]).tolist()) == [3, 24, 24, 24, 25]


def test_random_sampling_is_the_plain_permutation():
    for seed in (0, 1, 5):
        subsets = nested_subsets(UNEVEN, [10, 200], seed, "random")
        expected = np.random.default_rng(seed).permutation(len(UNEVEN))
        np.testing.assert_array_equal(subsets[200], expected[:200])
        np.testing.assert_array_equal(subsets[10], expected[:10])


def test_too_large_size_is_refused():
    with pytest.raises(PromptworthError, match=r"--sizes 2000: the training pool has only 1000"):
        nested_subsets(LABELS, [2000], seed=0, sampling="random")


def test_balanced_sizes_below_the_number_of_classes_are_refused():
    with pytest.raises(PromptworthError, match=r"--sizes \[2, 3\] are below the 4 classes"):
        nested_subsets(LABELS, [2, 3, 10], seed=0, sampling="balanced")
    assert len(nested_subsets(LABELS, [2], seed=0, sampling="random")[2]) == 2
    assert len(nested_subsets(LABELS, [4], seed=0, sampling="balanced")[4]) == 4


def test_sweep_refuses_small_sizes_before_any_model_loads(tmp_path):
    from promptworth.run.sweep import Sweep, SweepSpec
    from promptworth.testing import tiny_task

    task = tiny_task(n_train=30)
    rows = {"text": task.train.texts, "label": [task.label_names[y] for y in task.train.labels]}
    pd.DataFrame(rows).to_csv(tmp_path / "train.csv", index=False)
    spec = SweepSpec(
        task=str(tmp_path / "train.csv"),
        models=[str(tmp_path / "no-such-model")],  # never read: the sizes are refused first
        sizes=[2, 10],
        out=tmp_path / "out",
    )
    with pytest.raises(PromptworthError, match=r"--sizes \[2\] are below the 3 classes"):
        Sweep(spec, quiet=True)
    assert not (tmp_path / "out").exists()


def test_unknown_sampling_is_refused_with_the_known_ones():
    with pytest.raises(PromptworthError, match="balanced, random"):
        nested_subsets(LABELS, [10], seed=0, sampling="stratified")


def test_fixed_test_indices_are_fixed_and_sorted():
    first, second = fixed_test_indices(7600, 500), fixed_test_indices(7600, 500)
    np.testing.assert_array_equal(first, second)
    assert len(set(first)) == 500 and np.all(np.diff(first) > 0)
    assert len(fixed_test_indices(50, None)) == 50 and len(fixed_test_indices(50, 80)) == 50


def test_cli_sampling_flag_reaches_the_spec():
    from promptworth.cli import build_parser
    from promptworth.cli.run import build_spec

    parse = build_parser().parse_args
    assert build_spec(parse(["run"])).sampling == "balanced"
    assert build_spec(parse(["run", "--sampling", "random"])).sampling == "random"
    with pytest.raises(SystemExit):  # argparse lists the choices
        parse(["run", "--sampling", "stratified"])
