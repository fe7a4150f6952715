"""Pareto view: the score (accuracy or macro-F1) against serving cost and against labels,
non-dominated points marked.

A point is dominated on an axis when another point scores at least as high and is at most as
costly (or uses at most as many labels), and is strictly better in one of the two."""

from __future__ import annotations


def dominated(points: list[dict], metric: str, cost: str) -> list[bool]:
    """For each point, whether another point dominates it on (`metric` up, `cost` down)."""

    def beats(q: dict, p: dict) -> bool:
        no_worse = q[metric] >= p[metric] and q[cost] <= p[cost]
        return no_worse and (q[metric] > p[metric] or q[cost] < p[cost])

    return [any(beats(q, p) for q in points if q is not p) for p in points]


def pareto(points: list[dict], metric: str) -> dict:
    """`points`: {method, `metric`, serving_cost_per_million, labels}; adds both flags."""
    by_cost = dominated(points, metric, "serving_cost_per_million")
    by_labels = dominated(points, metric, "labels")
    return {
        "points": [
            {**p, "dominated_cost": c, "dominated_labels": lab}
            for p, c, lab in zip(points, by_cost, by_labels)
        ]
    }
