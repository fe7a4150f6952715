"""The metrics a classification run is scored by: one table, read by the runner that scores the
predictions, the curves and summaries that read the store, the reports that name them, and the
CLI's `--metric` choices. A metric added here is scored, stored, plotted and selectable."""

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
    score: Callable[[np.ndarray, np.ndarray, int], float]

    @property
    def text(self) -> str:
        """The name inside a sentence: "macro-F1"."""
        return self.name[0].lower() + self.name[1:]


METRICS: dict[str, Metric] = {
    metric.key: metric
    for metric in (
        Metric("accuracy", "Accuracy", accuracy),
        Metric("macro_f1", "Macro-F1", macro_f1),
    )
}


def metric_text(key: str) -> str:
    return METRICS[key].text


def scores(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> dict[str, float]:
    """Every metric of predicted labels against true ones."""
    return {key: metric.score(y_true, y_pred, n_labels) for key, metric in METRICS.items()}
