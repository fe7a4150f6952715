"""The headline sentence: the seed-mean advantage beside the paper's, and what the paired tests
of the same pair find, in words that never claim more than the tests; and the section on where
the recommended method errs, from stored predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from promptworth.analysis.uncertainty import PairedComparison, ScoredRun
from promptworth.report import verdict as wording
from promptworth.report.predictions import prediction_lines


def comparison(n_train: int, low: float, high: float) -> PairedComparison:
    return PairedComparison(
        "head", "pet", n_train, n_train, [0, 1], (low + high) / 2, low, high, 0.5, [], 100, "x"
    )


def test_within_noise_everywhere_is_said_so():
    found = wording.tests_clause(
        "pet", "head", [comparison(10, -0.01, 0.08), comparison(100, 0, 0.04)]
    )
    assert found == (
        "the paired tests find no significant difference at any measured size (10, 100 labels)"
    )


def test_significant_sizes_are_named_each_way():
    found = wording.tests_clause(
        "pet",
        "head",
        [comparison(10, 0.01, 0.08), comparison(100, -0.02, 0.01), comparison(1000, -0.05, -0.01)],
    )
    assert found == (
        "the paired tests find pet significantly better than head at 10 labels and significantly "
        "worse than head at 1,000 labels, within noise at 100"
    )
    assert "no paired test" in wording.tests_clause("pet", "head", "runs without labels")


def test_the_sentence_quotes_the_seed_mean_then_the_paper():
    rows = [
        {"method": m, "seed": s, "n_train": n, "metric": "accuracy", "value": v}
        for m, lift in (("head", 0.0), ("pet", 0.04))
        for s, luck in ((0, 0.1), (1, 0.0), (2, 0.0))
        for n, v in ((10, 0.5), (100, 0.7), (1000, 0.8))
        for v in [v + lift + (luck if m == "pet" else 0.0)]
    ]
    verdict = wording.headline_verdict(
        pd.DataFrame(rows), ("head", "pet"), [comparison(10, -1, 1)], "accuracy"
    )
    seed_mean, paper = verdict.estimates["seed-mean"], verdict.estimates["accumulated-max"]
    assert seed_mean.advantage < paper.advantage  # the lucky seed counts only in the paper's
    assert verdict.sentence.startswith(f"pet is worth {seed_mean.advantage:.0f} ± ")
    assert f"the paper's accumulated max over seeds: {paper.advantage:.0f} ± " in verdict.sentence
    assert verdict.sentence.endswith("no significant difference at any measured size (10 labels)")


def run(method: str, seed: int, predictions: list[int], labels: list[int]) -> ScoredRun:
    predictions, labels = np.array(predictions), np.array(labels)
    return ScoredRun(
        f"{method}{seed}",
        method,
        8,
        seed,
        float(np.mean(predictions == labels)),
        len(labels),
        predictions == labels,
        labels,
        "digest",
        None,
        predictions,
        2,
    )


def test_where_the_recommended_method_errs_quotes_the_saved_texts():
    labels = [0, 0, 1, 1]
    groups = {
        ("head", 8): [run("head", 0, [0, 1, 1, 1], labels), run("head", 1, [0, 1, 1, 0], labels)],
        ("pet", 8): [run("pet", 0, [0, 0, 0, 1], labels), run("pet", 1, [0, 0, 0, 1], labels)],
    }
    recommendation = {
        "inputs": {"labels": {"value": 100}},
        "recommended": {"method": "head"},
        "runner_up": {"method": "pet"},
    }
    saved = {"digest": {"texts": ["a", "b | c", "d", "e"], "label_names": ["neg", "pos"]}}
    text = "\n".join(prediction_lines(groups, recommendation, saved))
    assert "## Where head errs" in text
    assert "| neg | 2 | 0.500 |" in text and "| pos | 2 | 0.750 |" in text  # pooled over seeds
    assert "| neg | 2 | 2 |" in text and "| pos | 1 | 3 |" in text  # the confusion counts
    assert "give different answers on 2 of 4 test rows" in text
    assert "| 1 | b \\| c | neg | ✗ pos (2/2 seeds) | ✓ neg (2/2 seeds) |" in text
    assert "| 2 | d | pos | ✓ pos (2/2 seeds) | ✗ neg (2/2 seeds) |" in text
    assert "not saved" not in prediction_lines(groups, recommendation, saved)[-2]
    assert "were not saved in this store" in "\n".join(prediction_lines(groups, recommendation, {}))
