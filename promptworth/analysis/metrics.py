"""The metrics a run is scored by: one table, read by the runner that scores the predictions,
the curves and summaries that read the store, the reports that name them, and the CLI's
`--metric` choices. A metric added here is scored, stored, plotted and selectable.

A classification metric scores predicted labels against true ones (`score`). A generation
metric scores each output text against its references (`rows`, a score in [0, 1] per row whose
mean is the run's score) and says which outputs it could not read (`unparsed`); a generation
task names the metrics it is scored by (`GENERATION_METRICS` groups them as task files do)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI reads the table to build --help, which imports no numpy
    import numpy as np


def accuracy(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(y_true, y_pred))


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> float:
    """Unmapped answers (-1) count as wrong for every class."""
    from sklearn.metrics import f1_score

    labels = list(range(n_labels))
    return float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))


@dataclass(frozen=True)
class Metric:
    key: str  # the store's and the CSVs' column, and the --metric value
    name: str  # as a heading: "Macro-F1"
    # classification: (true labels, predicted labels, n_labels) -> score
    score: Callable[[np.ndarray, np.ndarray, int], float] | None = None
    # generation: (outputs, references per row) -> [n] scores in [0, 1]
    rows: Callable[[list[str], list[tuple[str, ...]]], np.ndarray] | None = None
    unparsed: Callable[[str], bool] | None = None  # generation: an output it cannot read
    # generation, scored by a model rather than `rows`: "encoder" (the run's --encoder) or
    # "judge" (--judge-model); the runner computes them (run/model_scores.py) and stores their
    # per-row scores like the others', so everything here only reads them
    needs: str | None = None

    @property
    def task_type(self) -> str:
        return "classification" if self.score is not None else "generation"

    @property
    def model_scored(self) -> bool:
        return self.needs is not None

    @property
    def text(self) -> str:
        """The name inside a sentence: "macro-F1"."""
        return self.name[0].lower() + self.name[1:]


def lazy(name: str, *args: str) -> Callable:
    """analysis/text_scores.py's `name` (a scorer, or with `args` the scorer it makes), imported
    on first use: the CLI reads this table to build --help, which imports no numpy."""

    def call(*inputs):
        from promptworth.analysis import text_scores

        found = getattr(text_scores, name)
        return (found(*args) if args else found)(*inputs)

    return call


def text_metric(key: str, name: str, rows: Callable, unparsed: str = "empty") -> Metric:
    return Metric(key, name, rows=rows, unparsed=lazy(unparsed))


def model_metric(key: str, name: str, needs: str) -> Metric:
    return Metric(key, name, unparsed=lazy("empty"), needs=needs)


METRICS: dict[str, Metric] = {
    metric.key: metric
    for metric in (
        Metric("accuracy", "Accuracy", accuracy),
        Metric("macro_f1", "Macro-F1", macro_f1),
        text_metric("exact_match", "Exact match", lazy("exact_match")),
        text_metric("token_f1", "Token F1", lazy("token_f1")),
        text_metric("rougeL", "ROUGE-L", lazy("rouge_rows", "rougeL")),
        text_metric("rouge1", "ROUGE-1", lazy("rouge_rows", "rouge1")),
        text_metric("rouge2", "ROUGE-2", lazy("rouge_rows", "rouge2")),
        text_metric(
            "numeric_flexible",
            "Numeric (last number)",
            lazy("numeric_flexible"),
            "flexible_unparsed",
        ),
        text_metric(
            "numeric_strict", 'Numeric ("The answer is")', lazy("numeric_strict"), "strict_unparsed"
        ),
        model_metric("bertscore", "BERTScore-F1", "encoder"),
        model_metric("judge", "Judge", "judge"),
    )
}
# The metric names a task file gives (`metrics:`) -> the metrics they score, headline first.
GENERATION_METRICS: dict[str, tuple[str, ...]] = {
    "exact_match": ("exact_match",),
    "token_f1": ("token_f1",),
    "rouge": ("rougeL", "rouge1", "rouge2"),
    "numeric": ("numeric_flexible", "numeric_strict"),
    "bertscore": ("bertscore",),
    "judge": ("judge",),
}
# The 0/1 metrics a judge's verdicts are compared with (Cohen's kappa), where a task has them.
JUDGE_REFERENCE_METRICS = ("exact_match", "numeric_flexible", "numeric_strict")
CLASSIFICATION_METRICS = ("accuracy", "macro_f1")


def task_metrics(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The metric keys a generation task's metric names score, the first name's first."""
    return tuple(key for name in names for key in GENERATION_METRICS[name])


def metric_text(key: str) -> str:
    return METRICS[key].text


def scores(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> dict[str, float]:
    """Every classification metric of predicted labels against true ones."""
    return {key: METRICS[key].score(y_true, y_pred, n_labels) for key in CLASSIFICATION_METRICS}


def text_row_scores(
    keys: tuple[str, ...], outputs: list[str], references: list[tuple[str, ...]]
) -> dict[str, tuple[list[float], float]]:
    """Per metric key: each row's score and the fraction of outputs the metric cannot read
    (the metrics scored by a model are left to the runner: run/model_scores.py)."""
    result = {}
    for key in keys:
        if METRICS[key].model_scored:
            continue
        rows = METRICS[key].rows(outputs, references)
        result[key] = ([float(v) for v in rows], unparsed_share(key, outputs))
    return result


def unparsed_share(key: str, outputs: list[str]) -> float:
    """The fraction of `outputs` metric `key` cannot read."""
    return sum(METRICS[key].unparsed(o) for o in outputs) / max(len(outputs), 1)
