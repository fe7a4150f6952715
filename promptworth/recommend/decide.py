"""Which method to use: constraints rule methods out, the rest are ranked
(docs/concepts/costs.md#constraints-and-ranking).

A target (in the headline metric, accuracy or macro-F1) is met when the 95 % interval's lower
bound at the label budget reaches it. The pool the answer comes from: with a target, every
method that meets it; without, the methods whose interval reaches the best method's mean
(tied with it within noise). Within the pool the most accurate method is the answer unless a
less accurate one is cheaper by at least the materiality threshold (Inputs.materiality), taken
in order of score, so a saving too small to matter never decides. The rest follow by score.

A method whose runs were served at other precisions (--serve-dtype) is a candidate at each one
that served every run without a significant drop: the scenario's latency and memory limits are
checked at each, and the method stands at the cheapest that meets them (then the smallest, then
the fastest), so a model too large at the precision it ran at may still fit at int8.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from promptworth.analysis.metrics import metric_text
from promptworth.analysis.uncertainty import few_rows_warning
from promptworth.recommend.curve import AtBudget, ToTarget, at_budget, to_target
from promptworth.recommend.inputs import Inputs
from promptworth.recommend.measured import (
    MEMORY_SOURCES,
    NO_REQUIREMENTS,
    Measured,
    Requirements,
    Serving,
    priced,
)
from promptworth.recommend.outliers import Outlier
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
    requirements: Requirements = NO_REQUIREMENTS
    outlier: Outlier | None = None

    def total(self, inputs: Inputs) -> float:
        return self.costs.total(inputs.queries_per_day, inputs.horizon_days)

    def serving_total(self, inputs: Inputs) -> float:
        return self.costs.serving(inputs.queries_per_day, inputs.horizon_days)

    def score_text(self) -> str:
        """Its score named by its metric: "accuracy 0.750", "macro-F1 0.712"."""
        return f"{metric_text(self.metric)} {self.read.score:.3f}"

    def to_json(self, inputs: Inputs) -> dict:
        s, target, read = self.serving, self.target, self.read
        q, days = inputs.queries_per_day, inputs.horizon_days
        return {
            "method": self.method,
            self.metric: read.score,
            "ci95": [read.low, read.high],
            "test_rows": self.test_rows,
            "test_rows_warning": few_rows_warning(self.test_rows),
            "labels_used": read.labels,
            "read_how": read.how,
            "read_between": list(read.between) if read.between else None,
            "p_meets_target": read.chance_of(inputs.target) if inputs.target is not None else None,
            "labels_to_target": target.labels if target else None,
            "labels_to_target_range": [target.fewest, target.most] if target else None,
            "labels_to_target_extrapolated": bool(target and target.extrapolated),
            "labels_to_target_note": target.note if target else None,
            "labelling_cost": self.costs.labelling,
            "training_seconds": read.train_seconds,
            "training_cost": self.costs.training,
            "serving": inputs.serving,
            "instances": self.costs.instances(q),
            "serving_cost_total": self.serving_total(inputs),
            "serving_cost_per_million": self.costs.per_million_at(q, days),
            "compute_cost_per_million": self.costs.per_million,
            "ms_per_example_batched": s.ms_per_example,
            "serving_outlier": self.outlier.text() if self.outlier else None,
            "latency_ms_p50": s.latency_ms_p50,
            "latency_ms_p95": s.latency_ms_p95,
            "latency_source": latency_source(s),
            "memory_mb": s.memory_mb,
            "memory_source": MEMORY_SOURCES[s.memory_source],
            "serving_precision": s.precision,
            "serving_precision_change": s.accuracy_change,
            "parameters": s.parameters,
            "model_weights_mb": s.weights_mb,
            "artifact_mb": s.artifact_mb,
            "device": s.device,
            "price_per_hour": price_per_hour(s.device, inputs),
            "unlabelled_texts": self.requirements.unlabelled,
            "teacher": self.requirements.teacher,
            "total_cost": self.total(inputs),
        }


def latency_source(s: Serving) -> str:
    """How a method's latency figure was obtained, as the answer says it."""
    if not s.latency_measured:
        return "derived from batched throughput, a lower bound"
    return "measured at batch size 1" + (", re-measured in a clean window" if s.remeasured else "")


def candidate(m: Measured, inputs: Inputs, outlier: Outlier | None = None) -> Candidate | str:
    """The method as a candidate, or why the scenario rules it out."""
    read = at_budget(m.curve, inputs.labels)
    if read is None:
        smallest = int(m.curve.sizes[0])
        return f"measured only from {smallest:,} labels; --labels is {inputs.labels:,}"
    if not priced(m.serving):
        return "no measured prediction time or device in the store: its serving cost is unknown"
    target = to_target(m.curve, inputs.target) if inputs.target is not None else None
    needs = requirements_at(m, read)

    def served_at(s: Serving, flag: Outlier | None) -> Candidate:
        costs = method_costs(read.labels, read.train_seconds, s.ms_per_example, s.device, inputs)
        return Candidate(
            m.method, m.curve.metric, read, target, costs, s, m.curve.test_rows, needs, flag
        )

    own = served_at(m.serving, outlier)  # the outlier flag is about the run's own figures
    options = [own, *(served_at(s, None) for s in m.precisions.values())]
    fitting = [c for c in options if constraint(c, inputs) is None]
    if not fitting:
        missed_target = inputs.target is not None and read.low < inputs.target
        also = m.precisions and not missed_target  # a precision changes no score
        return constraint(own, inputs) + (f" (and at {', '.join(m.precisions)})" if also else "")
    return min(fitting, key=lambda c: serving_cost(c, inputs))


def serving_cost(c: Candidate, inputs: Inputs) -> tuple[float, float, float]:
    """What serving a method at one precision costs, to choose among its precisions: the total,
    then the memory, then the batch-1 latency (the run's own precision first on a full tie)."""
    memory = c.serving.memory_mb if not math.isnan(c.serving.memory_mb) else math.inf
    return c.total(inputs), memory, c.serving.latency_ms_p50


def requirements_at(m: Measured, read: AtBudget) -> Requirements:
    """The recipe's requirements at the sizes the score was read from: both ends of an
    interpolation, each teacher named with its size when the recipe changes between them."""
    sizes = read.between or (read.labels,)
    found = {n: m.requirements[n] for n in sizes if n in m.requirements}
    if len(set(found.values())) <= 1:
        return next(iter(found.values()), NO_REQUIREMENTS)
    teachers = [f"{r.teacher} at {n:,} labels" for n, r in found.items() if r.teacher]
    return Requirements(max(r.unlabelled for r in found.values()), "; ".join(teachers) or None)


def constraint(c: Candidate, inputs: Inputs) -> str | None:
    """The first constraint `c` breaks, worded with the flag and the measured value."""
    s = c.serving
    if inputs.latency_ms is not None:
        p95 = s.latency_ms_p95 is not None  # else only the median was stored
        name, value = ("p95", s.latency_ms_p95) if p95 else ("p50", s.latency_ms_p50)
        if s.latency_measured and value > inputs.latency_ms:
            return (
                f"latency {name} {value:,.1f} ms at batch size 1 (measured) exceeds "
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
    if inputs.target is not None and c.read.low < inputs.target:
        return (
            f"{c.score_text()} [{c.read.low:.3f}, {c.read.high:.3f}] at {c.read.labels:,} labels: "
            f"its lower bound is below --target {inputs.target:g} (P(meets it) = "
            f"{c.read.chance_of(inputs.target):.2f}){reach_text(c.target)}"
        )
    return None


def reach_text(target: ToTarget | None) -> str:
    """Where the curve reaches the target: the mean, and the lower bound the rule needs."""
    if target is None:
        return ""
    if target.labels is None:
        return f"; {target.note}" if target.note else ""
    how = "extrapolated" if target.extrapolated else "interpolated"
    text = f"; its mean reaches it at about {target.labels:,.0f} labels ({how})"
    if target.most is not None:
        text += f", its lower bound at about {target.most:,.0f}"
    else:
        text += ", its lower bound not within the measured range"
    return text


def assess(measured: dict[str, Measured], inputs: Inputs, outliers: dict | None = None):
    """(ranked candidates, ruled out [{method, reason}]) for the scenario."""
    ranked, ruled_out = [], []
    for m in measured.values():
        found = candidate(m, inputs, (outliers or {}).get(m.method))
        if isinstance(found, str):
            ruled_out.append({"method": m.method, "reason": found})
        else:
            ranked.append(found)
    return rank(ranked, inputs), ruled_out


def tied(a: Candidate, b: Candidate) -> bool:
    """Whether the more accurate one's mean lies within the other's 95 % interval."""
    low, high = sorted((a, b), key=lambda c: c.read.score)
    return low.read.high >= high.read.score


def rank(candidates: list[Candidate], inputs: Inputs) -> list[Candidate]:
    """The ranking rule of the module docstring; ties broken by cost, then method name."""
    if not candidates:
        return []
    by_score = sorted(candidates, key=lambda c: (-c.read.score, c.total(inputs), c.method))
    # with a target every candidate meets it (constraint); without, the pool is the tied ones
    pool = by_score if inputs.target is not None else [c for c in by_score if tied(c, by_score[0])]
    pick = pool[0]
    for c in pool[1:]:
        if pick.total(inputs) - c.total(inputs) >= inputs.materiality(pick.total(inputs)):
            pick = c
    return [pick, *(c for c in by_score if c is not pick)]


def top(measured, inputs: Inputs, outliers: dict | None = None) -> Candidate | None:
    ranked, _ = assess(measured, inputs, outliers)
    return ranked[0] if ranked else None
