"""How far a judge's verdicts can be trusted: its agreement with a reference metric, the swap
rule of pairwise verdicts, and its accuracy on a set with known answers
(docs/concepts/judging.md#llm-as-judge).

Everything here reads verdicts already computed (run/model_scores.py computes them); no model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from promptworth.analysis.uncertainty import binomial_interval

# A pairwise verdict per row after the swap rule: the first answer wins, the second wins, or the
# verdict flipped with the answers' positions and counts for neither.
FIRST, SECOND, FLIPPED = 1, -1, 0


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float | None:
    """Cohen's kappa of two raters' labels on the same rows: (p_o - p_e) / (1 - p_e), with p_e
    the agreement their label frequencies give by chance. None when it is undefined: no rows,
    or both raters gave one and the same label everywhere (p_e = 1)."""
    a, b = np.asarray(a), np.asarray(b)
    if len(a) != len(b):
        raise ValueError(f"kappa needs labels of the same rows: {len(a)} vs {len(b)}")
    if not len(a):
        return None
    labels = np.union1d(a, b)
    observed = float(np.mean(a == b))
    chance = float(sum(np.mean(a == label) * np.mean(b == label) for label in labels))
    if chance == 1.0:
        return None
    return (observed - chance) / (1.0 - chance)


def swap_rule(first_order: np.ndarray, swapped_order: np.ndarray) -> np.ndarray:
    """Per row, the verdict that survives the swap. `first_order[i]` is True when the judge
    preferred the answer shown first with answer X first and Y second; `swapped_order[i]` the
    same with Y shown first. X wins only if it is preferred in both orders (first, then second
    position), Y likewise; a judge that prefers one position both times has flipped its verdict
    with the positions, and the row counts for neither (FLIPPED)."""
    first = np.asarray(first_order, dtype=bool)
    swapped = np.asarray(swapped_order, dtype=bool)
    if first.shape != swapped.shape:
        raise ValueError("the two orders must judge the same rows")
    outcome = np.full(first.shape, FLIPPED, dtype=int)
    outcome[first & ~swapped] = FIRST
    outcome[~first & swapped] = SECOND
    return outcome


@dataclass(frozen=True)
class PairwiseSummary:
    """Pairwise verdicts of X against Y over n rows, after the swap rule."""

    n: int
    first_wins: int
    second_wins: int
    flipped: int

    @property
    def flip_rate(self) -> float:
        """The share of rows whose verdict did not survive the swap (position bias)."""
        return self.flipped / max(self.n, 1)


def summarise(outcomes: np.ndarray) -> PairwiseSummary:
    outcomes = np.asarray(outcomes)
    return PairwiseSummary(
        n=len(outcomes),
        first_wins=int(np.sum(outcomes == FIRST)),
        second_wins=int(np.sum(outcomes == SECOND)),
        flipped=int(np.sum(outcomes == FLIPPED)),
    )


def ranking_outcomes(first_scores: np.ndarray, second_scores: np.ndarray) -> np.ndarray:
    """Per row, which answer a metric ranks higher (FIRST, SECOND; a tie is FLIPPED: no
    preference), to compare a pairwise judge with, say, ROUGE."""
    difference = np.asarray(first_scores, dtype=float) - np.asarray(second_scores, dtype=float)
    return np.sign(difference).astype(int)


def decided_kappa(judge: np.ndarray, metric: np.ndarray) -> tuple[float | None, int]:
    """Kappa of a pairwise judge's surviving verdicts with a metric's ranking, over the rows where
    both prefer an answer (flipped verdicts and tied scores left out); and that row count."""
    judge, metric = np.asarray(judge), np.asarray(metric)
    decided = (judge != FLIPPED) & (metric != FLIPPED)
    return cohen_kappa(judge[decided], metric[decided]), int(decided.sum())


@dataclass(frozen=True)
class CheckAccuracy:
    """Verdicts against known answers, with the exact binomial 95 % interval."""

    n: int
    right: int

    @property
    def accuracy(self) -> float:
        return self.right / max(self.n, 1)

    @property
    def interval(self) -> tuple[float, float]:
        return binomial_interval(self.right, self.n)

    def text(self) -> str:
        low, high = self.interval
        return f"{self.accuracy:.3f} [{low:.3f}, {high:.3f}] (n={self.n})"


def check_accuracy(verdicts: np.ndarray, truth: np.ndarray) -> CheckAccuracy:
    verdicts, truth = np.asarray(verdicts), np.asarray(truth)
    return CheckAccuracy(n=len(truth), right=int(np.sum(verdicts == truth)))
