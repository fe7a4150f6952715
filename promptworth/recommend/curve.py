"""Reading a measured learning curve at the user's label budget, and the labels a target needs.

The score (the curve's metric: accuracy or macro-F1) between two measured sizes is interpolated
linearly in log n (the learning-curve figure's axis), and so are the ends of its 95 % interval;
at a measured size it is the measured value. Beyond the largest measured size nothing is
extrapolated: the method is read at that size and the answer says so. Below the smallest measured
size the method has no measurement.
Labels to reach a target come from promptworth.analysis.advantage.labels_to_target (the mean
curve made monotone, interpolated; outside it the inverse-power-law fit, flagged).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from promptworth.analysis.advantage import labels_to_target
from promptworth.analysis.curves import AnalysisError
from promptworth.recommend.measured import Curve


@dataclass(frozen=True)
class AtBudget:
    """A method read at a label budget: labels it uses and its score (the curve's metric)."""

    labels: int  # labels used: 0 for a method that trains on nothing
    score: float
    low: float
    high: float
    train_seconds: float
    how: str  # "measured", "interpolated", "no training", "capped at the largest measured size"


def at_budget(curve: Curve, budget: int) -> AtBudget | None:
    """The curve read at `budget` labels; None below its smallest measured size."""
    sizes = curve.sizes
    if curve.untrained:
        return AtBudget(0, *_point(curve, 0), curve.train_seconds[0], "no training")
    if budget < sizes[0]:
        return None
    if budget >= sizes[-1]:
        how = "measured" if budget == sizes[-1] else "capped at the largest measured size"
        return AtBudget(int(sizes[-1]), *_point(curve, -1), curve.train_seconds[-1], how)
    x = np.log(np.maximum(sizes, 1))
    at = np.log(max(budget, 1))

    def read(values: np.ndarray) -> float:
        return float(np.interp(at, x, values))

    how = "measured" if budget in sizes else "interpolated"
    seconds = float(np.interp(budget, sizes, curve.train_seconds))  # time grows with n, not log n
    return AtBudget(
        int(budget), read(curve.means), read(curve.lows), read(curve.highs), seconds, how
    )


def _point(curve: Curve, i: int) -> tuple[float, float, float]:
    return float(curve.means[i]), float(curve.lows[i]), float(curve.highs[i])


@dataclass(frozen=True)
class ToTarget:
    labels: float | None  # None: not reachable, or no estimate
    extrapolated: bool
    note: str | None


def to_target(long_df, method: str, metric: str, target: float) -> ToTarget:
    """Labels `method` needs to reach `target` in `metric` (interpolated, or extrapolated and
    flagged) on its mean curve."""
    try:
        found = labels_to_target(long_df, method, metric, target, estimator="mean-bootstrap")
    except AnalysisError as error:  # e.g. measured at a single size
        return ToTarget(None, False, str(error))
    return ToTarget(found["n_train"], bool(found["extrapolated"]), found["note"])
