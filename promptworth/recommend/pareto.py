"""Pareto view: accuracy against serving cost and against labels, non-dominated points marked.

A point is dominated on an axis when another point is at least as accurate and at most as costly
(or uses at most as many labels), and strictly better in one of the two."""

from __future__ import annotations


def dominated(points: list[dict], cost: str) -> list[bool]:
    """For each point, whether another point dominates it on (accuracy up, `cost` down)."""

    def beats(q: dict, p: dict) -> bool:
        no_worse = q["accuracy"] >= p["accuracy"] and q[cost] <= p[cost]
        return no_worse and (q["accuracy"] > p["accuracy"] or q[cost] < p[cost])

    return [any(beats(q, p) for q in points if q is not p) for p in points]


def pareto(points: list[dict]) -> dict:
    """`points`: {method, accuracy, serving_cost_per_million, labels}; adds both flags."""
    by_cost = dominated(points, "serving_cost_per_million")
    by_labels = dominated(points, "labels")
    return {
        "points": [
            {**p, "dominated_cost": c, "dominated_labels": lab}
            for p, c, lab in zip(points, by_cost, by_labels)
        ]
    }
