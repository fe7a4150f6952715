"""Intervals and paired tests: the bootstrap arithmetic, the refusals, and the report's marks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from sklearn.metrics import f1_score

from promptworth.analysis import uncertainty as unc
from promptworth.analysis.summary import BEST, TIED, summarize
from promptworth.backbones import BackboneCache
from promptworth.backbones.device import Placement
from promptworth.errors import PromptworthError
from promptworth.methods.base import Method, Prediction, RunContext, TrainingCost
from promptworth.report.outputs import write_outputs
from promptworth.run import runner
from promptworth.testing import tiny_task

N_ROWS = 100
LABELS = np.arange(N_ROWS) % 4


def right(*rows: range | list[int], n: int = N_ROWS) -> np.ndarray:
    """A 0/1 vector: 1 on the given rows."""
    mask = np.zeros(n, dtype=bool)
    for r in rows:
        mask[list(r)] = True
    return mask


def scored(method: str, correct: np.ndarray, seed: int = 0, n_train: int = 10, digest="rows"):
    labels = LABELS[: len(correct)]
    return unc.ScoredRun.from_store(
        f"{method}-{n_train}-{seed}",
        method,
        {"n_train": n_train, "seed": seed},
        stored_result(correct, labels, digest),
    )


def stored_result(correct: np.ndarray, labels: np.ndarray, digest="rows") -> dict:
    predictions = np.where(correct, labels, (labels + 1) % 4)
    return {
        "accuracy": float(correct.mean()),
        "macro_f1": 0.0,
        "n_test": len(labels),
        "predictions": predictions.tolist(),
        "test_labels": labels.tolist(),
        "test_digest": digest,
        "extra": {},
    }


def test_row_bootstrap_of_a_proportion_matches_the_normal_approximation():
    correct = right(range(65))
    low, high = unc.percentile_interval(unc.resampled_means(correct)[0])
    half = 1.96 * np.sqrt(0.65 * 0.35 / N_ROWS)  # 0.0935
    assert low == pytest.approx(0.65 - half, abs=0.015)
    assert high == pytest.approx(0.65 + half, abs=0.015)
    # fixed seed: the same interval every time, and for any order of the same rows
    assert unc.percentile_interval(unc.resampled_means(correct)[0]) == (low, high)


def test_one_run_accuracy_is_clopper_pearson_from_the_beta_quantiles():
    """The exact interval: the 2.5 % and 97.5 % quantiles of Beta(k, n-k+1) and Beta(k+1, n-k);
    at k = n = 1 it is [0.025, 1], not the bootstrap's [1, 1]."""
    from scipy.stats import beta

    for k, n in ((65, N_ROWS), (1, 1), (0, 3), (29, 29)):
        low = beta.ppf(0.025, k, n - k + 1) if k else 0.0
        high = beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
        assert unc.binomial_interval(k, n) == pytest.approx((low, high))
    assert unc.proportion_interval(0.65, N_ROWS) == unc.binomial_interval(65, N_ROWS)
    assert unc.binomial_interval(1, 1) == pytest.approx((0.025, 1.0))
    one_row = unc.run_intervals(np.array([2]), np.array([2]), 3)
    assert one_row["accuracy_ci95"] == pytest.approx([0.025, 1.0])
    assert one_row["macro_f1_ci95"] == [0.0, 1.0]  # no spread, no exact interval: [0, 1]


def test_run_intervals_cover_accuracy_and_sklearn_macro_f1():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 300)
    predictions = np.where(rng.random(300) < 0.7, labels, rng.integers(-1, 4, 300))  # -1 unmapped
    intervals = unc.run_intervals(labels, predictions, 4)
    classes = np.arange(4)[:, None]
    tp = ((labels == classes) & (predictions == classes)).sum(1)
    f1 = unc.macro_f1(tp, (labels == classes).sum(1), (predictions == classes).sum(1))
    expected = f1_score(labels, predictions, labels=range(4), average="macro", zero_division=0)
    assert f1 == pytest.approx(expected)
    accuracy = (labels == predictions).mean()
    low, high = intervals["accuracy_ci95"]
    assert low < accuracy < high and 0.08 < high - low < 0.13  # ±1.96·sqrt(.7·.3/300) = ±0.052
    low, high = intervals["macro_f1_ci95"]
    assert low < f1 < high
    assert unc.run_intervals(labels, predictions, 4) == intervals


class Constant(Method):
    """Predicts label 0 for everything (the tiny task's labels cycle 0, 1, 2)."""

    name, summary = "constant", "test double"

    def fit(self, train, context):
        self.cost_ = TrainingCost()
        return self

    def predict(self, texts):
        return Prediction(np.zeros(len(texts), dtype=int))


def test_runner_stores_what_recomputes_the_intervals():
    task = tiny_task(n_test=30)
    backbones = BackboneCache(Placement("cpu", "float32"))
    context = RunContext(task=task, seed=0, backbones=backbones, model="", encoder="")
    result = runner.execute(Constant(), task.train, task.test, context)
    assert result["test_labels"] == task.test.labels.tolist()
    assert result["test_digest"] == runner.split_digest(task.test)
    assert result["test_digest"] != runner.split_digest(task.test.subset(range(29)))
    assert result["accuracy"] == pytest.approx(1 / 3)
    low, high = result["accuracy_ci95"]
    assert low < 1 / 3 < high
    run = unc.ScoredRun.from_store("k", "constant", {"n_train": 0, "seed": 0}, result)
    assert run.correct.mean() == pytest.approx(result["accuracy"])


def test_identical_methods_differ_by_zero_with_p_one():
    correct = right(range(65))
    [comparison] = unc.compare_methods(
        {("a", 10): [scored("a", correct)], ("b", 10): [scored("b", correct)]}, "a", "b"
    )
    assert comparison.difference == 0 and (comparison.low, comparison.high) == (0, 0)
    assert comparison.p_value == 1 and comparison.within_noise
    assert comparison.mcnemar == [{"seed": 0, "method_only": 0, "baseline_only": 0, "p_value": 1}]


def test_a_method_right_on_30_more_rows_is_significantly_better():
    baseline, method = right(range(50)), right(range(80))
    [comparison] = unc.compare_methods(
        {("a", 10): [scored("a", baseline)], ("b", 10): [scored("b", method)]}, "a", "b"
    )
    assert comparison.difference == pytest.approx(0.3)
    assert comparison.low > 0 and not comparison.within_noise
    assert comparison.p_value == pytest.approx(2 / (unc.N_RESAMPLES + 1))  # no resample <= 0
    assert comparison.mcnemar[0]["p_value"] == pytest.approx(binomtest(30, 30).pvalue)


def test_mcnemar_exact_p_by_hand():
    # b = 8 rows only the method gets right, c = 2 only the baseline: 2 * P(X <= 2), X ~ B(10, .5)
    method, baseline = right(range(8), range(20, 30)), right(range(8, 10), range(20, 30))
    test = unc.mcnemar_exact(baseline, method)
    assert (test["method_only"], test["baseline_only"]) == (8, 2)
    assert test["p_value"] == pytest.approx(2 * (1 + 10 + 45) / 2**10) == 0.109375


def test_one_seed_gets_the_exact_binomial_interval_macro_f1_the_row_bootstrap():
    correct = right(range(65))
    interval = unc.accuracy_interval([scored("a", correct)])
    assert (interval.low, interval.high) == unc.binomial_interval(65, N_ROWS)
    assert interval.std is None and "one run" in interval.procedure
    assert interval.procedure.startswith("exact binomial (Clopper–Pearson)")
    run = unc.ScoredRun.from_store(
        "k", "a", {"n_train": 10, "seed": 0}, {**stored_result(correct, LABELS), "n_labels": 4}
    )
    f1 = unc.accuracy_interval([run], "macro_f1")
    assert (f1.low, f1.high) == unc.percentile_interval(run.resampled("macro_f1"))
    assert f1.procedure == "test rows only (one run: no seed variance measured)"


def test_seeds_that_all_get_every_row_right_get_the_exact_interval():
    interval = unc.accuracy_interval([scored("a", right(range(20), n=20), seed=s) for s in (0, 1)])
    assert (interval.low, interval.high) == unc.binomial_interval(20, 20)
    assert interval.high - interval.low > 0.1 and "no bootstrap spread" in interval.procedure


def test_a_zero_one_generation_metric_without_spread_gets_the_exact_interval():
    """Every row wrong by exact match: [0, 0.018] on 200 rows, not the uninformative [0, 1] a
    graded score (ROUGE) without spread gets."""

    def generation_run(seed: int, exact: list[float], rouge: list[float]) -> unc.ScoredRun:
        result = {
            "n_test": len(exact),
            "headline_metric": "exact_match",
            "test_labels": [0] * len(exact),
            "row_scores": {"exact_match": exact, "rougeL": rouge},
        }
        return unc.ScoredRun.from_store(f"k{seed}", "a", {"n_train": 0, "seed": seed}, result)

    runs = [generation_run(s, [0.0] * 200, [0.25] * 200) for s in (0, 1)]
    exact = unc.accuracy_interval(runs, "exact_match")
    assert (exact.low, exact.high) == unc.binomial_interval(0, 200)
    assert 0.01 < exact.high < 0.02 and "no bootstrap spread" in exact.procedure
    graded = unc.accuracy_interval(runs, "rougeL")
    assert (graded.low, graded.high) == (0.0, 1.0) and graded.procedure == unc.NO_SPREAD


def test_seeds_share_each_row_resample_and_add_their_own_variance():
    correct = right(range(65))
    low, high = unc.percentile_interval(unc.resampled_means(correct)[0])
    rows_only = unc.AccuracyInterval("a", 10, 0.65, None, low, high, 1, N_ROWS, "test rows only")
    # identical seeds: resampling seeds changes nothing, and a shared row resample keeps the
    # width (independent row resamples per seed would shrink it by about sqrt(2))
    same = unc.accuracy_interval([scored("a", correct, seed=s) for s in range(3)])
    assert (same.low, same.high) == pytest.approx((rows_only.low, rows_only.high))
    assert same.procedure == "seeds (3) and test rows"
    # seeds at 0.45 and 0.85: the interval of the mean is wider than either seed's row interval
    apart = unc.accuracy_interval(
        [scored("a", right(range(45)), 0), scored("a", right(range(85)), 1)]
    )
    assert apart.mean == pytest.approx(0.65)
    assert apart.high - apart.low > rows_only.high - rows_only.low + 0.1
    assert apart.low < 0.5 and apart.high > 0.8


def test_refuses_to_pair_runs_scored_on_different_rows():
    groups = {("a", 10): [scored("a", right(range(65)))]}
    groups[("b", 10)] = [scored("b", right(range(60)), digest="other rows")]
    with pytest.raises(PromptworthError, match="different test rows"):
        unc.compare_methods(groups, "a", "b")
    groups[("b", 10)] = [scored("b", right(range(60), n=90))]
    with pytest.raises(PromptworthError, match="90 and 100 rows"):
        unc.compare_methods(groups, "a", "b")
    old = unc.ScoredRun.from_store("old", "c", {"n_train": 10, "seed": 0}, {"accuracy": 0.6})
    with pytest.raises(unc.MissingLabels, match="without its test labels"):
        unc.accuracy_interval([old])


def test_a_no_training_baseline_is_paired_with_every_seed_at_every_size():
    groups = {
        ("zero-shot", 0): [scored("zero-shot", right(range(60)), n_train=0)],
        ("head", 10): [scored("head", right(range(50)), s) for s in (0, 1)],
        ("head", 100): [scored("head", right(range(80)), s, n_train=100) for s in (0, 1)],
        ("lora", 10): [scored("lora", right(range(55)), s) for s in (1, 2)],
    }
    against_zero_shot = unc.compare_methods(groups, "zero-shot", "head")
    assert [(c.n_train, c.baseline_n_train, c.seeds) for c in against_zero_shot] == [
        (10, 0, [0, 1]),
        (100, 0, [0, 1]),
    ]
    assert [round(c.difference, 3) for c in against_zero_shot] == [-0.1, 0.2]
    reverse = unc.compare_methods(groups, "head", "zero-shot")
    assert [(c.n_train, c.baseline_n_train, c.seeds) for c in reverse] == [
        (0, 10, [0, 1]),
        (0, 100, [0, 1]),
    ]
    assert [round(c.difference, 3) for c in reverse] == [0.1, -0.2]
    [shared] = unc.compare_methods(groups, "head", "lora")  # only seed 1 ran for both
    assert shared.seeds == [1] and shared.difference == pytest.approx(0.05)


def store_rows(methods: dict[str, list[np.ndarray]], n_train: int = 10) -> list:
    """Store rows (key, config, result) of methods at one size, one correctness vector a seed."""
    return [
        (
            f"{method}-{n_train}-{seed}",
            {"task": "t", "model": "m", "method": method, "n_train": n_train, "seed": seed},
            stored_result(correct, LABELS),
        )
        for method, seeds in methods.items()
        for seed, correct in enumerate(seeds)
    ]


def test_report_marks_what_is_within_noise_of_the_best(tmp_path):
    rows = store_rows(
        {
            "best": [right(range(80)), right(range(78))],
            # 2 points lower, right and wrong on other rows than best's
            "close": [right(range(10, 87)), right(range(8, 85))],
            "far": [right(range(40)), right(range(45))],
        }
    )
    rows += store_rows({"best": [right(range(85))] * 2, "far": [right(range(3, 87))] * 2}, 100)
    result = write_outputs(rows, tmp_path, ["- test"], compare=("far", "best"))
    table = result["summary"]
    assert table.loc["best", 10].endswith(BEST) and table.loc["close", 10].endswith(TIED)
    assert table.loc["far", 10].endswith("]")  # significantly below: no mark
    assert table.loc["far", 100].endswith(TIED)  # one row apart at 100
    report = (tmp_path / "report.md").read_text()
    assert "≈ within noise of it" in report and "| best | " in report
    assert "Paired test of the accuracy difference best − far" in report
    summary = pd.read_csv(tmp_path / "summary.csv")
    marks = dict(zip(summary["method"] + "@" + summary["n_train"].astype(str), summary["mark"]))
    assert marks == {
        "best@10": "best",
        "close@10": "within noise of best",
        "far@10": "below best",
        "best@100": "best",
        "far@100": "within noise of best",
    }
    document = json.loads((tmp_path / "uncertainty.json").read_text())
    headline = document["headline"]["comparisons"]
    assert [c["n_train"] for c in headline] == [10, 100]
    assert headline[0]["difference"] == pytest.approx(0.365) and not headline[0]["within_noise"]
    results = pd.read_csv(tmp_path / "results.csv")
    assert (results["accuracy_ci_low"] < results["accuracy"]).all()


def test_a_best_mean_over_fewer_seeds_is_named_in_the_notes(tmp_path):
    rows = store_rows({"full": [right(range(80))] * 3, "partial": [right(range(85))]})
    rows += store_rows({"full": [right(range(60))] * 3, "partial": [right(range(50))] * 3}, 100)
    notes = summarize(write_outputs(rows, tmp_path, ["- test"])["frame"], rows).notes
    assert notes == [
        "At n_train=10 the best mean, partial's, is over 1 of the 3 seeds other methods ran "
        "there: a mean over fewer seeds is more often the highest by chance; its paired tests "
        "use only the seeds both methods ran."
    ]  # none at 100, where the best ran every seed
    assert notes[0] in (tmp_path / "report.md").read_text()


def test_report_of_a_store_without_test_labels_says_what_is_missing(tmp_path):
    rows = store_rows({"a": [right(range(60))] * 2, "b": [right(range(70))] * 2})
    for _, _, result in rows:
        del result["test_labels"], result["test_digest"]
    result = write_outputs(rows, tmp_path, ["- old store"])
    assert result["summary"].loc["a", 10] == "0.600 ± 0.000"  # no interval, no mark
    report = (tmp_path / "report.md").read_text()
    assert "4 of 4 runs were stored without the test labels" in report
    assert "No paired test of b against a" in report
    results = pd.read_csv(tmp_path / "results.csv")
    assert results["accuracy_ci_low"].notna().all() and results["macro_f1_ci_low"].isna().all()
    assert summarize(result["frame"], rows).verdicts == {}


def test_compare_command_pairs_two_methods_of_a_store(tmp_path, capsys):
    from promptworth.cli import main
    from promptworth.report.outputs import compare_text
    from promptworth.store.database import RunStore

    store = RunStore(tmp_path / "runs.sqlite")
    for key, config, result in store_rows({"a": [right(range(50))], "b": [right(range(80))]}):
        store.record(key, config, result)
    store.close()
    assert main(["compare", str(tmp_path), "--baseline", "a", "--method", "b", "--json"]) == 0
    [test] = json.loads(capsys.readouterr().out)
    assert test["difference"] == pytest.approx(0.3) and not test["within_noise"]
    assert "| 10 | +0.300 |" in compare_text(tmp_path, "a", "b")
    with pytest.raises(PromptworthError, match="no runs of method 'c'; methods here: a, b"):
        compare_text(tmp_path, "a", "c")
    with pytest.raises(PromptworthError, match="no store here"):
        compare_text(tmp_path / "nowhere", "a", "b")
