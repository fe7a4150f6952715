"""Which input, halved or doubled, changes the answer: a table beside the verdict, so a reader
sees at a glance whether the recommendation rests on a price or volume they are unsure of."""

from __future__ import annotations

import math

from promptworth.recommend.decide import top
from promptworth.recommend.inputs import Inputs, flag_name

FACTORS = (0.5, 2.0)
# Inputs varied whenever they are set; budgets, target and --min-saving only when given.
ALWAYS = (
    "labels",
    "queries_per_day",
    "horizon_days",
    "cpu_price",
    "gpu_price",
    "label_cost",
    "utilisation",
)
WHEN_GIVEN = ("target", "latency_ms", "memory_mb", "min_saving")
UPPER = {"target": 1.0, "utilisation": 1.0}


def scaled(name: str, value: float, factor: float):
    """`value` × `factor`, kept valid: whole labels, shares and scores at most 1."""
    moved = value * factor
    if name == "labels":
        return max(1, round(moved))
    return min(moved, UPPER[name]) if name in UPPER else moved


def sensitivity(measured, inputs: Inputs, current: str | None, outliers=None) -> list[dict]:
    """One row per input: its value, the answer at ×0.5 and ×2, and whether either differs."""
    if inputs.serving == "per-second":
        names = [n for n in ALWAYS if n != "utilisation"]  # no instances to fill
    else:
        names = list(ALWAYS)
    names += [n for n in WHEN_GIVEN if getattr(inputs, n) is not None]
    rows = []
    for name in names:
        value = getattr(inputs, name)
        answers = {}
        for factor in FACTORS:
            moved = scaled(name, value, factor)
            if math.isclose(moved, value):
                answers[f"x{factor:g}"] = {"value": moved, "method": current}
                continue
            found = top(measured, inputs.changed(**{name: moved}), outliers)
            answers[f"x{factor:g}"] = {"value": moved, "method": found and found.method}
        flips = any(a["method"] != current for a in answers.values())
        rows.append(
            {"input": name, "flag": flag_name(name), "value": value, **answers, "flips": flips}
        )
    return rows
