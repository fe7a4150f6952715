"""95 % intervals and paired tests for accuracy or macro-F1: bootstrap over test rows and seeds,
and the exact binomial interval for the accuracy of a single run.

A test subset of 200-300 rows measures accuracy to about ±6 points, so most differences between
methods in a results table are noise. Everything here is recomputed from what the store keeps for
each run (its predictions and the test labels it was scored on); no model is needed.

The bootstrap (docs/concepts/uncertainty.md#the-bootstrap):

- **Test rows.** `N_RESAMPLES` resamples of the n test rows with replacement, drawn from
  `numpy.random.default_rng(ROWS_SEED)`. They depend only on n, so every run scored on the same
  rows (every seed, every method) is resampled with the *same* rows: a resample that happens to
  hold hard rows is hard for all of them, which keeps the pairing.
- **Seeds.** `N_RESAMPLES` resamples of the S seeds with replacement, from
  `default_rng(SEEDS_SEED)`; resample b pairs seed resample b with row resample b.
- A statistic's resample b is the mean over the resampled seeds of each seed's score on the
  resampled rows (accuracy, or macro-F1 from the per-class counts of those rows); the 95 %
  interval is the 2.5th and 97.5th percentile of the resamples. With one seed only the rows are
  resampled.
- **One run's accuracy** (one seed, a 0/1 score per row) gets the exact binomial interval
  (Clopper–Pearson, `scipy.stats.binomtest(...).proportion_ci(method="exact")`) instead: the row
  bootstrap of a run that got every row right (or wrong) has no spread and would print
  `1.000 [1.000, 1.000]`, which no 95 % interval on a few rows can honestly be. So does a group
  of seeds whose bootstrap has no spread (every seed got the same rows right), and a 0/1
  generation metric (exact match, a number read right) whose bootstrap has none. Macro-F1 and
  graded scores (ROUGE) have no exact interval: without spread, the interval is [0, 1].
- Below MIN_TEST_ROWS test rows, the report and the recommendation say so beside the number.
- **Paired difference** of two methods: the same procedure on the difference of their scores on
  each resample (method minus baseline), seed by seed. Two-sided p-value by inverting the percentile
  interval: p = 2·(min(#resamples ≤ 0, #resamples ≥ 0) + 1) / (N_RESAMPLES + 1), at most 1.
- **McNemar's exact test** per seed, as a check: the rows only one method gets right, binomial
  with p = 1/2 (`scipy.stats.binomtest`); it is about correctness (accuracy) for either metric.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from promptworth.errors import PromptworthError, quoted

N_RESAMPLES = 2000
ROWS_SEED = 0
SEEDS_SEED = 1
LEVEL = 0.95
MIN_TEST_ROWS = 30  # fewer test rows than this: the score is flagged wherever it is printed
EXACT = "exact binomial (Clopper–Pearson) over the test rows"
NO_SPREAD = "none: every resample scored the same, so the whole range [0, 1]"
PROCEDURE = (
    f"{N_RESAMPLES} resamples; each draws the test rows with replacement (rng seed {ROWS_SEED}, "
    "one draw shared by every run scored on those rows, so seeds and methods stay paired) and the "
    f"seeds with replacement (rng seed {SEEDS_SEED}); a resample's value is the mean over its "
    "seeds of the accuracy (or paired accuracy difference) on its rows; the interval is the 2.5th "
    "to 97.5th percentile; p = 2 (min(#resamples <= 0, #resamples >= 0) + 1) / (resamples + 1). "
    f"The accuracy of a single seed, and any accuracy whose resamples have no spread: {EXACT}. "
    f"A macro-F1 whose resamples have no spread: {NO_SPREAD}"
)
DRAW_CHUNK = 2_000_000  # row draws held in memory at once while building the resamples


@lru_cache(maxsize=1)
def row_resamples(n_rows: int) -> np.ndarray:
    """[N_RESAMPLES, n_rows] float32: how often each test row is drawn in each resample."""
    rng = np.random.default_rng(ROWS_SEED)
    weights = np.empty((N_RESAMPLES, n_rows), dtype=np.float32)
    chunk = max(1, DRAW_CHUNK // n_rows)
    for start in range(0, N_RESAMPLES, chunk):
        size = min(chunk, N_RESAMPLES - start)
        draws = rng.integers(0, n_rows, size=(size, n_rows))
        cells = (draws + n_rows * np.arange(size)[:, None]).ravel()
        weights[start : start + size] = np.bincount(cells, minlength=size * n_rows).reshape(
            size, n_rows
        )
    return weights


def resampled_means(values: np.ndarray) -> np.ndarray:
    """[k, n] per-row values -> [k, N_RESAMPLES]: each row vector's mean on each row resample.

    The values are small integers (0/1 correctness, class indicators or their differences), so
    the float32 sums are exact; a generation metric's per-row scores in [0, 1] sum to within
    float32 rounding (about 1e-7 of the mean)."""
    values = np.atleast_2d(np.asarray(values, dtype=np.float32))
    sums = values @ row_resamples(values.shape[1]).T
    return sums.astype(np.float64) / values.shape[1]


def percentile_interval(samples: np.ndarray) -> tuple[float, float]:
    tail = 100 * (1 - LEVEL) / 2
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def binomial_interval(n_right: int, n_rows: int) -> tuple[float, float]:
    """The exact (Clopper–Pearson) 95 % interval of a proportion: never zero-width, and it
    covers at least 95 % at every n, however small."""
    from scipy.stats import binomtest

    ci = binomtest(int(n_right), int(n_rows)).proportion_ci(LEVEL, method="exact")
    return float(ci.low), float(ci.high)


def spread_or_whole_range(samples: np.ndarray) -> tuple[float, float]:
    """The percentile interval of a score in [0, 1], or [0, 1] when the resamples have no spread
    (a zero-width interval says nothing about what other test rows would give)."""
    low, high = percentile_interval(samples)
    return (low, high) if high > low else (0.0, 1.0)


def few_rows_warning(n_rows: int) -> str | None:
    """The short warning printed beside a score measured on fewer than MIN_TEST_ROWS rows."""
    if n_rows >= MIN_TEST_ROWS:
        return None
    return f"⚠ {n_rows} test row{'' if n_rows == 1 else 's'} (under {MIN_TEST_ROWS})"


def macro_f1(tp: np.ndarray, true: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Macro-F1 from per-class counts ([n_labels, ...] each): 2tp / (true + predicted) per class,
    0 for a class neither present nor predicted (sklearn's zero_division=0), averaged."""
    denominator = true + predicted
    per_class = np.divide(
        2 * tp, denominator, out=np.zeros_like(denominator, dtype=float), where=denominator > 0
    )
    return per_class.mean(axis=0)


def resampled_macro_f1(labels: np.ndarray, predictions: np.ndarray, n_labels: int) -> np.ndarray:
    """[N_RESAMPLES]: one run's macro-F1 on each resample of its test rows."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    classes = np.arange(n_labels)[:, None]
    is_true, is_predicted = labels == classes, predictions == classes
    counts = resampled_means(np.vstack([is_true & is_predicted, is_true, is_predicted]))
    return macro_f1(*np.split(counts * len(labels), 3))


def run_intervals(labels: np.ndarray, predictions: np.ndarray, n_labels: int) -> dict:
    """One run's 95 % intervals: accuracy exact binomial, macro-F1 over resamples of its rows."""
    right = int(np.sum(np.asarray(predictions) == np.asarray(labels)))
    return {
        "accuracy_ci95": list(binomial_interval(right, len(labels))),
        "macro_f1_ci95": list(
            spread_or_whole_range(resampled_macro_f1(labels, predictions, n_labels))
        ),
    }


def proportion_interval(accuracy: float, n_rows: int) -> tuple[float, float]:
    """The exact binomial interval of an accuracy known only as (accuracy, n_test): runs stored
    without their test labels."""
    return binomial_interval(round(accuracy * n_rows), n_rows)


class MissingLabels(PromptworthError):
    """A run was stored without the test labels it was scored on (older stores)."""


@dataclass(frozen=True)
class ScoredRun:
    """One stored run as this module sees it; `correct` is None for runs stored without the test
    labels they were scored on (stores written before they were kept)."""

    key: str
    method: str
    n_train: int
    seed: int
    accuracy: float
    n_test: int
    correct: np.ndarray | None
    labels: np.ndarray | None
    test_digest: str | None
    macro_f1: float | None = None
    predictions: np.ndarray | None = None
    n_labels: int | None = None  # the task's classes: macro-F1 averages over all of them
    # a generation run: each metric's per-row scores (`correct` holds the headline metric's)
    row_scores: dict[str, np.ndarray] | None = None

    @classmethod
    def from_store(cls, key: str, method: str, config: dict, result: dict) -> ScoredRun:
        if result.get("row_scores") is not None:
            return cls.generation_run(key, method, config, result)
        labels = result.get("test_labels")
        predictions = result.get("predictions")
        have = labels is not None and predictions is not None
        return cls(
            key=key,
            method=method,
            n_train=int(config["n_train"]),
            seed=int(config["seed"]),
            accuracy=float(result["accuracy"]),
            n_test=int(result.get("n_test", len(predictions or []))),
            correct=np.asarray(predictions) == np.asarray(labels) if have else None,
            labels=np.asarray(labels) if have else None,
            test_digest=result.get("test_digest"),
            macro_f1=result.get("macro_f1"),
            predictions=np.asarray(predictions) if have else None,
            n_labels=result.get("n_labels"),
        )

    @classmethod
    def generation_run(cls, key: str, method: str, config: dict, result: dict) -> ScoredRun:
        """A run on a generation task: its score by each metric is the mean of its row scores;
        it has no accuracy."""
        rows = {metric: np.asarray(v, dtype=float) for metric, v in result["row_scores"].items()}
        return cls(
            key=key,
            method=method,
            n_train=int(config["n_train"]),
            seed=int(config["seed"]),
            accuracy=float("nan"),
            n_test=int(result["n_test"]),
            correct=rows[result["headline_metric"]],
            labels=np.asarray(result["test_labels"]),
            test_digest=result.get("test_digest"),
            row_scores=rows,
        )

    def describe(self) -> str:
        return f"{self.method} n_train={self.n_train} seed={self.seed} (run {self.key})"

    def score(self, metric: str) -> float:
        if self.row_scores is not None:
            return float(self.rows_of(metric).mean())
        if metric not in ("accuracy", "macro_f1"):
            raise PromptworthError(
                f"{self.describe()} is a classification run: scored by accuracy and macro_f1, "
                f"not {metric}"
            )
        return self.accuracy if metric == "accuracy" else float(self.macro_f1)

    def rows_of(self, metric: str) -> np.ndarray:
        """A generation run's per-row scores by `metric`, or why it has none."""
        if metric not in self.row_scores:
            raise PromptworthError(
                f"{self.describe()} was scored by {', '.join(self.row_scores)}, not {metric}: "
                f"give --metric {next(iter(self.row_scores))}"
            )
        return self.row_scores[metric]

    def resampled(self, metric: str) -> np.ndarray:
        """[N_RESAMPLES]: this run's `metric` on each resample of its test rows."""
        if self.row_scores is not None:
            return resampled_means(self.rows_of(metric))[0]
        if metric == "accuracy":
            return resampled_means(self.correct)[0]
        return resampled_macro_f1(self.labels, self.predictions, self.classes())

    def classes(self) -> int:
        """The task's number of classes: stored with the run, or (runs stored before it was)
        the count that reproduces the stored macro-F1 (classes neither in the test rows nor
        predicted add 0 to the sum and 1 to the count); else refused, never guessed."""
        if self.n_labels is not None:
            return self.n_labels
        seen = int(max(self.labels.max(), self.predictions.max())) + 1
        classes = np.arange(seen)[:, None]
        is_true, is_predicted = self.labels == classes, self.predictions == classes
        total = float(
            seen * macro_f1((is_true & is_predicted).sum(1), is_true.sum(1), is_predicted.sum(1))
        )
        if total == 0 and self.macro_f1 == 0:
            return seen  # no class ever right: every resample scores 0 whatever the count
        count = round(total / self.macro_f1) if self.macro_f1 else 0
        if count >= seen and abs(total / count - self.macro_f1) < 1e-9:
            return count
        raise MissingLabels(
            f"{self.describe()} was stored without the task's number of classes, and its "
            "macro-F1 does not give it: no macro-F1 interval; run a new sweep into a fresh --out"
        )


def correctness(runs: list[ScoredRun]) -> np.ndarray:
    """[runs, rows] 0/1 matrix; refuses runs without labels or scored on different test rows."""
    missing = [run for run in runs if run.correct is None]
    if missing:
        raise MissingLabels(
            f"{missing[0].describe()} was stored without its test labels (stores written before "
            "promptworth kept them): no interval or paired test; run a new sweep into a fresh --out"
        )
    first = runs[0]
    for run in runs[1:]:
        digests = {run.test_digest, first.test_digest} - {None}
        same_labels = run.n_test == first.n_test and np.array_equal(run.labels, first.labels)
        if not same_labels or len(digests) > 1:
            raise PromptworthError(
                f"{run.describe()} and {first.describe()} were scored on different test rows "
                f"({run.n_test} and {first.n_test} rows): their accuracies cannot be paired; "
                "compare runs of one sweep (same task, --test-size and test file)"
            )
    return np.vstack([run.correct for run in runs]).astype(np.float64)


def resampled_scores(runs: list[ScoredRun], metric: str) -> np.ndarray:
    """[runs, N_RESAMPLES]: each run's `metric` on the row resamples shared by all of them
    (after `correctness` checked that they were scored on the same rows)."""
    correctness(runs)
    return np.vstack([run.resampled(metric) for run in runs])


def resample_seeds(per_seed: np.ndarray) -> np.ndarray:
    """[seeds, N_RESAMPLES] scores on shared row resamples -> N_RESAMPLES resamples of their
    mean over seeds, the seeds resampled as well (the second level of the bootstrap)."""
    n_seeds = per_seed.shape[0]
    if n_seeds == 1:
        return per_seed[0]
    rng = np.random.default_rng(SEEDS_SEED)
    picks = rng.multinomial(n_seeds, np.full(n_seeds, 1 / n_seeds), size=N_RESAMPLES)
    return (picks * per_seed.T).sum(axis=1) / n_seeds


def procedure(n_seeds: int) -> str:
    """How a bootstrap interval over `n_seeds` seeds was drawn."""
    if n_seeds == 1:
        return "test rows only (one run: no seed variance measured)"
    return f"seeds ({n_seeds}) and test rows"


def interval_of(runs: list[ScoredRun], metric: str) -> tuple[float, float, str]:
    """(low, high, how): the bootstrap over seeds and rows, except where it cannot be honest
    (the module docstring): one run's accuracy, or resamples without spread."""
    samples = resample_seeds(resampled_scores(runs, metric))
    low, high = percentile_interval(samples)
    one_accuracy = metric == "accuracy" and len(runs) == 1
    if (one_accuracy or high == low) and zero_one_rows(runs, metric):
        n_rows = runs[0].n_test
        mean = float(np.mean([run.score(metric) for run in runs]))
        why = "one run: no seed variance measured" if len(runs) == 1 else "no bootstrap spread"
        return (*binomial_interval(round(mean * n_rows), n_rows), f"{EXACT} ({why})")
    if high == low:
        return 0.0, 1.0, NO_SPREAD
    return low, high, procedure(len(runs))


def zero_one_rows(runs: list[ScoredRun], metric: str) -> bool:
    """Whether every test row of every run scores 0 or 1 (accuracy, exact match, a number read
    right): the mean is then a proportion, with an exact interval when resamples cannot give
    one (all rows wrong, say)."""
    if metric == "accuracy":
        return True
    rows = [(run.row_scores or {}).get(metric) for run in runs]
    return all(found is not None and np.isin(found, (0.0, 1.0)).all() for found in rows)


@dataclass(frozen=True)
class AccuracyInterval:
    """Mean score (accuracy or macro-F1) over seeds at one (method, size), 95 % interval."""

    method: str
    n_train: int
    mean: float
    std: float | None
    low: float
    high: float
    n_seeds: int
    n_rows: int
    procedure: str
    metric: str = "accuracy"

    def to_dict(self) -> dict:
        return asdict(self)


def accuracy_interval(runs: list[ScoredRun], metric: str = "accuracy") -> AccuracyInterval:
    """The (method, size) group's mean `metric` over seeds, its 95 % interval (`interval_of`)."""
    low, high, how = interval_of(runs, metric)
    scores = np.array([run.score(metric) for run in runs])
    return AccuracyInterval(
        method=runs[0].method,
        n_train=runs[0].n_train,
        mean=float(scores.mean()),
        std=float(scores.std(ddof=1)) if len(runs) > 1 else None,
        low=low,
        high=high,
        n_seeds=len(runs),
        n_rows=runs[0].n_test,
        procedure=how,
        metric=metric,
    )


def mcnemar_exact(baseline_correct: np.ndarray, method_correct: np.ndarray) -> dict:
    """McNemar's exact test on one pair of runs: the discordant rows are binomial(b + c, 1/2)."""
    from scipy.stats import binomtest

    method_only = int(np.sum((method_correct > 0) & (baseline_correct == 0)))
    baseline_only = int(np.sum((baseline_correct > 0) & (method_correct == 0)))
    discordant = method_only + baseline_only
    p = binomtest(method_only, discordant, 0.5).pvalue if discordant else 1.0
    return {"method_only": method_only, "baseline_only": baseline_only, "p_value": float(p)}


@dataclass(frozen=True)
class PairedComparison:
    """method − baseline score on the same test rows and seeds, with its 95 % interval."""

    baseline: str
    method: str
    n_train: int
    baseline_n_train: int
    seeds: list[int]
    difference: float
    low: float
    high: float
    p_value: float
    mcnemar: list[dict]
    n_rows: int
    procedure: str
    metric: str = "accuracy"

    @property
    def within_noise(self) -> bool:
        """The marking rule: the 95 % interval of the difference contains 0."""
        return self.low <= 0 <= self.high

    def to_dict(self) -> dict:
        return {**asdict(self), "within_noise": self.within_noise}


def paired_comparison(
    baseline: list[ScoredRun], method: list[ScoredRun], metric: str = "accuracy"
) -> PairedComparison:
    """Paired bootstrap of the `metric` difference; run i of each list share seed and rows
    (a no-training baseline's one run may be repeated against every seed of the method)."""
    if len(baseline) != len(method) or not method:
        raise ValueError("paired_comparison needs two aligned, non-empty lists of runs")
    matrix = correctness([*baseline, *method])
    base, meth = matrix[: len(baseline)], matrix[len(baseline) :]
    scores = resampled_scores([*baseline, *method], metric)
    samples = resample_seeds(scores[len(baseline) :] - scores[: len(baseline)])
    gaps = [m.score(metric) - b.score(metric) for b, m in zip(baseline, method)]
    low, high = percentile_interval(samples)
    tail = min(np.sum(samples <= 0), np.sum(samples >= 0))
    # the seeds are those of the side that varies (not the repeated run of a no-training method)
    seeded = baseline if len({run.key for run in method}) < len(method) else method
    return PairedComparison(
        baseline=baseline[0].method,
        method=method[0].method,
        n_train=method[0].n_train,
        baseline_n_train=baseline[0].n_train,
        seeds=[run.seed for run in seeded],
        difference=float(np.mean(gaps)),
        low=low,
        high=high,
        p_value=min(1.0, 2 * (int(tail) + 1) / (N_RESAMPLES + 1)),
        mcnemar=[
            {"seed": run.seed, **mcnemar_exact(b, m)}
            for run, b, m in zip(seeded, base, meth, strict=True)
        ],
        n_rows=matrix.shape[1],
        procedure=procedure(len(method)),
        metric=metric,
    )


Groups = dict[tuple[str, int], list[ScoredRun]]


def aligned_runs(groups: Groups, baseline: str, method: str) -> list[tuple[list, list]]:
    """(baseline runs, method runs) aligned by seed at each size both can be compared at.

    Two trained methods are compared at the sizes both ran, on the seeds both ran (a seed draws
    the same training subset for every method). A method that trains on nothing (one run at
    n_train 0) is a flat line: its run is compared with every seed of the other at each size."""
    sizes = {name: sorted(n for m, n in groups if m == name) for name in (baseline, method)}
    for name, found in sizes.items():
        if not found:
            known = ", ".join(sorted({m for m, _ in groups}))
            raise PromptworthError(f"no runs of method {quoted(name)}; methods here: {known}")
    flat = {name: found == [0] and len(groups[(name, 0)]) == 1 for name, found in sizes.items()}
    if flat[baseline] and not flat[method]:
        steps = [(0, n) for n in sizes[method]]
    elif flat[method] and not flat[baseline]:
        steps = [(n, 0) for n in sizes[baseline]]
    else:
        steps = [(n, n) for n in sizes[baseline] if n in sizes[method]]
    pairs = []
    for base_n, meth_n in steps:
        base, meth = groups[(baseline, base_n)], groups[(method, meth_n)]
        if flat[baseline] != flat[method]:
            repeated = [base[0]] * len(meth) if flat[baseline] else base
            pairs.append((repeated, meth if flat[baseline] else [meth[0]] * len(base)))
            continue
        by_seed = {run.seed: run for run in base}
        common = [run for run in meth if run.seed in by_seed]
        if common:
            pairs.append(([by_seed[run.seed] for run in common], common))
    if not pairs:
        raise PromptworthError(
            f"{method} and {baseline} share no training size and seed: nothing to pair"
        )
    return pairs


def compare_methods(
    groups: Groups, baseline: str, method: str, metric: str = "accuracy"
) -> list[PairedComparison]:
    """The paired comparison of `method` against `baseline` at every size both can be paired."""
    return [paired_comparison(b, m, metric) for b, m in aligned_runs(groups, baseline, method)]


def against_best(groups: Groups, metric: str = "accuracy") -> dict[int, dict]:
    """At each size with at least two methods: the method with the best mean `metric`, and every
    other method's paired comparison with it (or why none could be made)."""
    by_size: dict[int, list[str]] = {}
    for method, n_train in groups:
        by_size.setdefault(n_train, []).append(method)
    verdicts = {}
    for n_train, methods in sorted(by_size.items()):
        if len(methods) < 2:
            continue
        mean = {m: np.mean([run.score(metric) for run in groups[(m, n_train)]]) for m in methods}
        best = max(sorted(methods), key=mean.__getitem__)
        others: dict[str, PairedComparison | PromptworthError] = {}
        for method in sorted(set(methods) - {best}):
            pair = {key: groups[key] for key in ((best, n_train), (method, n_train))}
            try:
                others[method] = compare_methods(pair, best, method, metric)[0]
            except PromptworthError as error:
                others[method] = error
        verdicts[n_train] = {"best": best, "others": others}
    return verdicts
