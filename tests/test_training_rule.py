"""The shared training rule's dev split (methods/training.py)."""

import numpy as np

from promptworth.methods.training import Schedule, split_dev


def test_dev_split_is_a_fraction_above_min_dev_and_capped_at_max_dev():
    rule = Schedule(learning_rate=1e-3, dev_fraction=0.2, min_dev=8, max_dev=64)
    fit, dev = split_dev(30, rule, seed=0)
    assert len(dev) == 0 and sorted(fit) == list(range(30))  # 6 < min_dev: no dev split
    fit, dev = split_dev(100, rule, seed=0)
    assert len(dev) == 20 and len(fit) == 80
    fit, dev = split_dev(1000, rule, seed=0)
    assert len(dev) == 64 and len(fit) == 936  # capped; the rest trains
    assert not set(fit) & set(dev)
    uncapped = Schedule(learning_rate=1e-3, dev_fraction=0.2, min_dev=8)
    assert len(split_dev(1000, uncapped, seed=0)[1]) == 200
    again, other_seed = split_dev(1000, rule, seed=0)[1], split_dev(1000, rule, seed=1)[1]
    np.testing.assert_array_equal(again, dev)
    assert set(other_seed) != set(dev)
