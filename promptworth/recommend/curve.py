"""A measured learning curve read one way for every question the recommender asks: the score
(the curve's metric: accuracy or macro-F1) at the user's label budget, the labels a target
needs, and the budgets the proposed changes try.

Between two measured sizes the mean and both ends of its 95 % interval are interpolated linearly
in log n (the learning-curve figure's axis); at a measured size they are the measured values.
A budget beyond the largest measured size is read at that size (the extra labels are not
assumed to help). The labels a target needs are the same line solved for n: the mean's answer
with the upper and lower ends' answers as its range. Past the largest measured size the last
measured segment is extended, at most to EXTRAPOLATION_LIMIT times that size; further than that
the answer is "not reachable within the measured range", never a number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from promptworth.recommend.measured import Curve

EXTRAPOLATION_LIMIT = 10  # × the largest measured size: how far labels-to-target may extrapolate
Z95 = NormalDist().inv_cdf(0.975)
UNREACHABLE = "not reachable within the measured range"


@dataclass(frozen=True)
class AtBudget:
    """A method read at a label budget: labels it uses and its score (the curve's metric)."""

    labels: int  # labels used: 0 for a method that trains on nothing
    score: float
    low: float
    high: float
    train_seconds: float
    how: str  # "measured", "interpolated", "no training", "capped at the largest measured size"
    between: tuple[int, int] | None = None  # the measured sizes an interpolation lies between

    def chance_of(self, target: float) -> float:
        """P(score >= target), reading the 95 % interval as a normal one around the mean."""
        spread = (self.high - self.low) / (2 * Z95)
        if spread <= 0:
            return float(self.score >= target)
        return 1 - NormalDist(self.score, spread).cdf(target)


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
    if budget in sizes:
        i = int(np.flatnonzero(sizes == budget)[0])
        return AtBudget(int(budget), *_point(curve, i), curve.train_seconds[i], "measured")
    upper = int(np.searchsorted(sizes, budget))
    x = np.log(np.maximum(sizes, 1))
    at = math.log(max(budget, 1))
    scores = (float(np.interp(at, x, values)) for values in (curve.means, curve.lows, curve.highs))
    seconds = float(np.interp(budget, sizes, curve.train_seconds))  # time grows with n, not log n
    between = (int(sizes[upper - 1]), int(sizes[upper]))
    return AtBudget(int(budget), *scores, seconds, "interpolated", between)


def _point(curve: Curve, i: int) -> tuple[float, float, float]:
    return float(curve.means[i]), float(curve.lows[i]), float(curve.highs[i])


@dataclass(frozen=True)
class ToTarget:
    """Labels a method needs to reach a target: the mean curve's answer, with the labels at
    which the interval's upper end (fewest) and lower end (most) reach it; None: not within
    reach (`note` says why)."""

    labels: float | None
    fewest: float | None
    most: float | None
    extrapolated: bool
    note: str | None


def to_target(curve: Curve, target: float) -> ToTarget:
    """Labels the curve needs to reach `target`, read as at_budget reads it (module docstring)."""
    if curve.untrained:
        reached = curve.means[0] >= target
        note = None if reached else "it trains on no labels, so more labels do not help"
        return ToTarget(0.0 if reached else None, None, None, False, note)
    labels = labels_where(curve.sizes, curve.means, target)
    if labels is None:
        limit = EXTRAPOLATION_LIMIT * int(curve.sizes[-1])
        return ToTarget(None, None, None, False, f"{UNREACHABLE} (up to {limit:,} labels)")
    return ToTarget(
        labels,
        labels_where(curve.sizes, curve.highs, target),
        labels_where(curve.sizes, curve.lows, target),
        labels > curve.sizes[-1],
        None,
    )


def labels_where(sizes: np.ndarray, values: np.ndarray, target: float) -> float | None:
    """The smallest n at which the line through (log size, value) reaches `target`: within the
    measured sizes, or on the last segment extended up to EXTRAPOLATION_LIMIT × the largest."""
    if values[0] >= target:
        return float(sizes[0])
    x = np.log(np.maximum(sizes, 1))
    for i in range(len(sizes) - 1):
        if values[i] < target <= values[i + 1]:
            share = (target - values[i]) / (values[i + 1] - values[i])
            return float(math.exp(x[i] + share * (x[i + 1] - x[i])))
    if len(sizes) < 2 or values[-1] <= values[-2]:
        return None
    slope = (values[-1] - values[-2]) / (x[-1] - x[-2])
    needed = math.exp(x[-1] + (target - values[-1]) / slope)
    return needed if needed <= EXTRAPOLATION_LIMIT * sizes[-1] else None
