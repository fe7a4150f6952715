"""Total cost of ownership and break-even volumes (docs/concepts/costs.md#break-even).

TCO(q) = labels × label_cost + train_seconds × price/h / 3600 + serving(q) over the horizon.
Serving is billed one of two ways (--serving):
- always-on (the default): whole instances running all day, as many as the volume needs at the
  measured batched throughput with each instance busy --utilisation of its time, at least one,
  each billed price/h × 24 h a day: instances(q) = max(1, ceil(q × s per query / (86,400 s ×
  utilisation))).
- per-second: only the busy seconds, q × s per query × price/h / 3600, as if the machine were
  fully used and billed by the second: a lower bound no deployment reaches.
A hosted LLM is billed per token. Totals are step functions of the volume when instances are
whole, so the volumes where two methods' totals cross are found numerically.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from promptworth.recommend.inputs import Inputs

SECONDS_A_DAY = 86_400
HOURS_A_DAY = 24
CROSSING_RANGE = (1.0, 1e9)  # queries a day searched for crossings
CROSSING_GRID = 2_000  # log-spaced volumes a sign change of the difference is looked for at


def price_per_hour(device: str, inputs: Inputs) -> float:
    """One instance's price: the CPU price on the CPU, the GPU price on any accelerator."""
    return inputs.cpu_price if device.startswith("cpu") else inputs.gpu_price


@dataclass(frozen=True)
class Costs:
    """One method's costs in dollars: once (labels, training), and serving. `per_query` is the
    price of one query's busy time (or a hosted LLM's tokens); with `instance_per_hour` set,
    serving is billed as always-on instances that each serve `capacity_per_day` queries."""

    labelling: float
    training: float
    per_query: float
    instance_per_hour: float | None = None
    capacity_per_day: float = math.inf

    @property
    def fixed(self) -> float:
        return self.labelling + self.training

    @property
    def always_on(self) -> bool:
        return self.instance_per_hour is not None

    def instances(self, queries_per_day: float) -> int:
        """Always-on instances the volume needs (0 when billed per second or per token)."""
        if not self.always_on:
            return 0
        return max(1, math.ceil(queries_per_day / self.capacity_per_day))

    def serving(self, queries_per_day: float, days: float) -> float:
        if self.always_on:
            return self.instances(queries_per_day) * self.instance_per_hour * HOURS_A_DAY * days
        return queries_per_day * days * self.per_query

    def total(self, queries_per_day: float, days: float) -> float:
        return self.fixed + self.serving(queries_per_day, days)

    @property
    def per_million(self) -> float:
        """The price of a million queries' busy time (or tokens): what serving costs on a fully
        used machine, the floor of any bill."""
        return 1e6 * self.per_query

    def per_million_at(self, queries_per_day: float, days: float) -> float:
        """What serving costs per million queries at this volume, idle instance time included."""
        if queries_per_day <= 0:
            return math.inf if self.always_on else self.per_million
        return 1e6 * self.serving(queries_per_day, days) / (queries_per_day * days)


def method_costs(
    labels: int, train_seconds: float, ms_per_example: float, device: str, inputs: Inputs
) -> Costs:
    price = price_per_hour(device, inputs)
    busy = ms_per_example / 1000
    per_query = busy * price / 3600
    if inputs.serving == "per-second":
        return Costs(labels * inputs.label_cost, train_seconds * price / 3600, per_query)
    capacity = SECONDS_A_DAY * inputs.utilisation / busy if busy > 0 else math.inf
    return Costs(
        labels * inputs.label_cost, train_seconds * price / 3600, per_query, price, capacity
    )


def hosted_llm_costs(prompt_tokens: float, inputs: Inputs) -> Costs:
    """A hosted LLM reading the same prompt: no labels, no training, token prices per query."""
    per_query = (
        prompt_tokens * inputs.llm_input_price + inputs.llm_output_tokens * inputs.llm_output_price
    ) / 1e6
    return Costs(labelling=0.0, training=0.0, per_query=per_query)


def crossings(a: Costs, b: Costs, days: float) -> list[float]:
    """Queries a day at which a's and b's totals become equal (one's total passes the other's),
    lowest first; exact for two per-query lines, found on a log grid and bisected otherwise."""
    if not (a.always_on or b.always_on):
        slope = days * (a.per_query - b.per_query)
        volume = (b.fixed - a.fixed) / slope if slope else -1.0
        return [volume] if volume > 0 else []

    def gap(volume: float) -> float:
        return a.total(volume, days) - b.total(volume, days)

    grid = np.geomspace(*CROSSING_RANGE, CROSSING_GRID)
    signs = np.sign([gap(v) for v in grid])
    found = []
    for i in np.flatnonzero(signs[:-1] * signs[1:] < 0):
        low, high = float(grid[i]), float(grid[i + 1])
        for _ in range(60):
            middle = math.sqrt(low * high)
            low, high = (middle, high) if np.sign(gap(middle)) == signs[i] else (low, middle)
        found.append(high)
    return found


def crossing(a: Costs, b: Costs, days: float) -> float | None:
    """The lowest volume at which a's and b's totals cross; None if they never do."""
    found = crossings(a, b, days)
    return found[0] if found else None


def volume_grid(inputs: Inputs) -> list[float]:
    """Query volumes for the break-even curves: 10 to 10 million a day, and the user's."""
    grid = set(np.logspace(1, 7, 25).round(0).tolist()) | {float(inputs.queries_per_day)}
    return sorted(v for v in grid if v > 0)


def break_even(costs: dict[str, Costs], inputs: Inputs) -> dict:
    """TCO of each method over the volume grid, and every volume where two totals cross."""
    volumes = volume_grid(inputs)
    days = inputs.horizon_days
    found = [
        {"a": a, "b": b, "queries_per_day": volume}
        for (a, ca), (b, cb) in itertools.combinations(costs.items(), 2)
        for volume in crossings(ca, cb, days)
    ]
    return {
        "volumes_per_day": volumes,
        "horizon_days": days,
        "serving": inputs.serving,
        "curves": {m: [c.total(v, days) for v in volumes] for m, c in costs.items()},
        "crossings": sorted(found, key=lambda c: c["queries_per_day"]),
    }
