"""The report's headline: how many data points the headline method is worth over its baseline,
said on the statistic the tables show (the seed mean) beside the paper's accumulated max, and
with what the paired tests of the same pair find at each size, so that the sentence never claims
more than the tests support."""

from __future__ import annotations

from dataclasses import dataclass

from promptworth.analysis import advantage as adv
from promptworth.analysis.uncertainty import PairedComparison

TABLE_ESTIMATOR = "seed-mean"  # the matrix and the headline: the tables' statistic
PAPER_ESTIMATOR = "accumulated-max"


@dataclass
class Verdict:
    """The headline pair's estimates (by estimator; absent when none could be made), the
    sentence, and why there is no estimate when there is none."""

    baseline: str
    method: str
    sentence: str
    estimates: dict[str, adv.Advantage]
    error: str | None = None

    def to_json(self) -> dict:
        return {
            "baseline": self.baseline,
            "method": self.method,
            "sentence": self.sentence,
            "estimates": {name: e.to_dict() for name, e in self.estimates.items()},
            "error": self.error,
        }


def headline_verdict(
    long_df, pair: tuple[str, str], comparisons: list[PairedComparison] | str | None, metric: str
) -> Verdict:
    """`pair` = (baseline, method); `comparisons`: their paired tests (summary.headline_
    comparisons), or why there are none."""
    baseline, method = pair
    try:
        estimates = {
            name: adv.estimate(long_df, baseline, method, metric, name)
            for name in (TABLE_ESTIMATOR, PAPER_ESTIMATOR)
        }
    except (ValueError, adv.AnalysisError) as error:  # a single size, curves that never overlap
        sentence = f"{method} vs {baseline}: no verdict: {error}"
        return Verdict(baseline, method, sentence, {}, str(error))
    worth, paper = estimates[TABLE_ESTIMATOR], estimates[PAPER_ESTIMATOR]
    sentence = (
        f"{adv.verdict(worth)} on the seed means (the paper's accumulated max over seeds: "
        f"{points(paper)}); {tests_clause(method, baseline, comparisons)}"
    )
    return Verdict(baseline, method, sentence, estimates)


def points(result: adv.Advantage) -> str:
    spread = f" ± {result.std:.0f}" if result.std is not None else ""
    return f"{result.advantage:.0f}{spread}"


def tests_clause(method: str, baseline: str, comparisons) -> str:
    """What the paired tests find: nothing significant at any size, or where each way."""
    if comparisons is None or isinstance(comparisons, str):
        return f"no paired test of the difference ({comparisons or 'none computed'})"
    better = [c for c in comparisons if c.low > 0]
    worse = [c for c in comparisons if c.high < 0]
    if not better and not worse:
        return (
            "the paired tests find no significant difference at any measured size "
            f"({sizes_text(comparisons)} labels)"
        )
    parts = [
        f"significantly {word} than {baseline} at {sizes_text(found)} labels"
        for word, found in (("better", better), ("worse", worse))
        if found
    ]
    noise = [c for c in comparisons if c.within_noise]
    tail = f", within noise at {sizes_text(noise)}" if noise else ""
    return f"the paired tests find {method} {' and '.join(parts)}{tail}"


def sizes_text(comparisons: list[PairedComparison]) -> str:
    return ", ".join(f"{c.n_train:,}" for c in comparisons)
