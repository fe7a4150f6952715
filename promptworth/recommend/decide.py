"""Which method to use: constraints rule methods out, the rest are ranked
(docs/concepts/costs.md#constraints-and-ranking).

Ranking, by the headline metric (accuracy or macro-F1; the target is in it too). With a target:
the lowest total cost among the methods that reach it at the label budget. Without: the methods
whose 95 % interval reaches the best method's mean count as equally good; the cheapest of them
comes first, then the others by score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from promptworth.analysis.metrics import metric_text
from promptworth.analysis.uncertainty import few_rows_warning
from promptworth.recommend.curve import AtBudget, ToTarget, at_budget, to_target
from promptworth.recommend.inputs import Inputs
from promptworth.recommend.measured import MEMORY_SOURCES, Measured, Serving, priced
from promptworth.recommend.tco import Costs, method_costs, price_per_hour


@dataclass(frozen=True)
class Candidate:
    """A method read at the scenario's label budget in `metric`, with its costs."""

    method: str
    metric: str
    read: AtBudget
    target: ToTarget | None
    costs: Costs
    serving: Serving
    test_rows: int  # the fewest test rows its curve was scored on

    def total(self, inputs: Inputs) -> float:
        return self.costs.total(inputs.queries_per_day, inputs.horizon_days)

    def score_text(self) -> str:
        """Its score named by its metric: "accuracy 0.750", "macro-F1 0.712"."""
        return f"{metric_text(self.metric)} {self.read.score:.3f}"

    def to_json(self, inputs: Inputs) -> dict:
        s, target = self.serving, self.target
        return {
            "method": self.method,
            self.metric: self.read.score,
            "ci95": [self.read.low, self.read.high],
            "test_rows": self.test_rows,
            "test_rows_warning": few_rows_warning(self.test_rows),
            "labels_used": self.read.labels,
            "read_how": self.read.how,
            "labels_to_target": target.labels if target else None,
            "labels_to_target_extrapolated": bool(target and target.extrapolated),
            "labels_to_target_note": target.note if target else None,
            "labelling_cost": self.costs.labelling,
            "training_seconds": self.read.train_seconds,
            "training_cost": self.costs.training,
            "serving_cost_per_million": self.costs.per_million,
            "serving_cost_total": self.total(inputs) - self.costs.fixed,
            "ms_per_example_batched": s.ms_per_example,
            "latency_ms_p50": s.latency_ms_p50,
            "latency_ms_p95": s.latency_ms_p95,
            "latency_source": "measured at batch size 1"
            if s.latency_measured
            else "derived from batched throughput, a lower bound",
            "memory_mb": s.memory_mb,
            "memory_source": MEMORY_SOURCES[s.memory_source],
            "artifact_mb": s.artifact_mb,
            "device": s.device,
            "price_per_hour": price_per_hour(s.device, inputs),
            "total_cost": self.total(inputs),
        }


def candidate(m: Measured, long_df, inputs: Inputs) -> Candidate | str:
    """The method as a candidate, or why the scenario rules it out."""
    read = at_budget(m.curve, inputs.labels)
    if read is None:
        smallest = int(m.curve.sizes[0])
        return f"measured only from {smallest:,} labels; --labels is {inputs.labels:,}"
    if not priced(m.serving):
        return "no measured prediction time or device in the store: its serving cost is unknown"
    metric, target = m.curve.metric, None
    if inputs.target is not None:
        target = to_target(long_df, m.method, metric, inputs.target)
    s = m.serving
    costs = method_costs(read.labels, read.train_seconds, s.ms_per_example, s.device, inputs)
    found = Candidate(m.method, metric, read, target, costs, s, m.curve.test_rows)
    return constraint(found, inputs) or found


def constraint(c: Candidate, inputs: Inputs) -> str | None:
    """The first constraint `c` breaks, worded with the flag and the measured value."""
    s = c.serving
    if inputs.latency_ms is not None:
        if s.latency_measured and s.latency_ms_p95 > inputs.latency_ms:
            return (
                f"latency p95 {s.latency_ms_p95:,.1f} ms at batch size 1 (measured) exceeds "
                f"--latency-ms {inputs.latency_ms:g}"
            )
        if not s.latency_measured and s.latency_ms_p50 > inputs.latency_ms:
            return (
                f"latency at least {s.latency_ms_p50:,.1f} ms (derived from batched throughput; "
                f"batch-1 latency not measured in this store) exceeds --latency-ms "
                f"{inputs.latency_ms:g}"
            )
    if inputs.memory_mb is not None and math.isnan(s.memory_mb):
        return f"its memory was not recorded: --memory-mb {inputs.memory_mb:g} cannot be checked"
    if inputs.memory_mb is not None and s.memory_mb > inputs.memory_mb:
        return (
            f"{s.memory_mb:,.0f} MB ({MEMORY_SOURCES[s.memory_source]}) exceeds --memory-mb "
            f"{inputs.memory_mb:g}"
        )
    if inputs.target is not None and c.read.score < inputs.target:
        return (
            f"{c.score_text()} at {c.read.labels:,} labels is below --target "
            f"{inputs.target:g}{reach_text(c.target)}"
        )
    return None


def reach_text(target: ToTarget | None) -> str:
    if target is None or target.labels is None:
        return f" ({target.note})" if target and target.note else ""
    how = "extrapolated" if target.extrapolated else "interpolated"
    return f"; it reaches it at about {target.labels:,.0f} labels ({how})"


def assess(measured: dict[str, Measured], long_df, inputs: Inputs):
    """(ranked candidates, ruled out [{method, reason}]) for the scenario."""
    ranked, ruled_out = [], []
    for m in measured.values():
        found = candidate(m, long_df, inputs)
        if isinstance(found, str):
            ruled_out.append({"method": m.method, "reason": found})
        else:
            ranked.append(found)
    return rank(ranked, inputs), ruled_out


def rank(candidates: list[Candidate], inputs: Inputs) -> list[Candidate]:
    """The ranking rule of the module docstring; ties broken by method name."""
    if not candidates:
        return []
    if inputs.target is not None:
        return sorted(candidates, key=lambda c: (c.total(inputs), -c.read.score, c.method))
    best = max(c.read.score for c in candidates)

    def key(c: Candidate):
        tied = c.read.high >= best
        return (not tied, c.total(inputs) if tied else -c.read.score, c.method)

    return sorted(candidates, key=key)


def top(measured, long_df, inputs: Inputs) -> Candidate | None:
    ranked, _ = assess(measured, long_df, inputs)
    return ranked[0] if ranked else None
