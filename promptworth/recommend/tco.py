"""Total cost of ownership and break-even volumes (docs/concepts/costs.md#break-even).

TCO(q) = labels × label_cost + train_seconds × price/h / 3600 + q × days × serving cost per query,
with serving cost per query = batched seconds per example × price/h / 3600 on the hardware the
method ran on (a fully used, per-second-billed machine). Two methods' TCO lines cross at
q* = (fixed_b − fixed_a) / (days × (per_query_a − per_query_b)) queries a day.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from promptworth.recommend.inputs import Inputs


def price_per_hour(device: str, inputs: Inputs) -> float:
    """The CPU price for runs on the CPU, the GPU price for any accelerator (cuda, mps)."""
    return inputs.cpu_price if device.startswith("cpu") else inputs.gpu_price


@dataclass(frozen=True)
class Costs:
    """One method's costs in dollars: once (labels, training), and per query served."""

    labelling: float
    training: float
    per_query: float

    @property
    def fixed(self) -> float:
        return self.labelling + self.training

    def total(self, queries_per_day: float, days: float) -> float:
        return self.fixed + queries_per_day * days * self.per_query

    @property
    def per_million(self) -> float:
        return 1e6 * self.per_query


def method_costs(
    labels: int, train_seconds: float, ms_per_example: float, device: str, inputs: Inputs
) -> Costs:
    price = price_per_hour(device, inputs)
    return Costs(
        labelling=labels * inputs.label_cost,
        training=train_seconds * price / 3600,
        per_query=ms_per_example / 1000 * price / 3600,
    )


def hosted_llm_costs(prompt_tokens: float, inputs: Inputs) -> Costs:
    """A hosted LLM reading the same prompt: no labels, no training, token prices per query."""
    per_query = (
        prompt_tokens * inputs.llm_input_price + inputs.llm_output_tokens * inputs.llm_output_price
    ) / 1e6
    return Costs(labelling=0.0, training=0.0, per_query=per_query)


def crossing(a: Costs, b: Costs, days: float) -> float | None:
    """Queries a day at which a's and b's TCO are equal; None if their lines never cross at a
    positive volume."""
    slope = days * (a.per_query - b.per_query)
    if slope == 0:
        return None
    volume = (b.fixed - a.fixed) / slope
    return volume if volume > 0 else None


def volume_grid(inputs: Inputs) -> list[float]:
    """Query volumes for the break-even curves: 10 to 10 million a day, and the user's."""
    grid = set(np.logspace(1, 7, 25).round(0).tolist()) | {float(inputs.queries_per_day)}
    return sorted(v for v in grid if v > 0)


def break_even(costs: dict[str, Costs], inputs: Inputs) -> dict:
    """TCO of each method over the volume grid, and the crossing volume of every pair."""
    volumes = volume_grid(inputs)
    days = inputs.horizon_days
    crossings = []
    for (a, ca), (b, cb) in itertools.combinations(costs.items(), 2):
        volume = crossing(ca, cb, days)
        if volume is not None:
            crossings.append({"a": a, "b": b, "queries_per_day": volume})
    return {
        "volumes_per_day": volumes,
        "horizon_days": days,
        "curves": {m: [c.total(v, days) for v in volumes] for m, c in costs.items()},
        "crossings": sorted(crossings, key=lambda c: c["queries_per_day"]),
    }
