"""What the recommendation would be in nearby scenarios: the decision map (the recommended method
over label budget x queries a day, each cell the recommender's own answer) and the Pareto view at
the scenario's label budget. Every answer comes from promptworth.recommend.recommend; nothing
here or in the page's script decides anything itself."""

from __future__ import annotations

import itertools

import numpy as np

VOLUME_DECADES = range(1, 7)  # queries a day on the map: 10 .. 1,000,000, and the scenario's


def label_grid(sizes: list[int], budget: int) -> list[int]:
    """The measured sizes, the geometric midpoint between each two, and the scenario's budget."""
    between = [round(float(np.sqrt(a * b))) for a, b in itertools.pairwise(sizes)]
    return sorted({*sizes, *between, int(budget)})


def volume_grid(queries_per_day: float) -> list[float]:
    return sorted({*(10.0**k for k in VOLUME_DECADES), float(queries_per_day)})


def decision_grid(rows, recommendation, summary) -> dict:
    """The decision map of `recommendation` (a Recommendation of these `rows`): each cell is
    recommend()'s answer with the scenario's labels and queries a day changed, the other inputs
    kept. `summary`: the report's intervals, so the bootstrap is not redone per cell."""
    from promptworth.recommend import recommend

    inputs, metric = recommendation.inputs, recommendation.metric
    sizes = sorted({int(n) for _, config, _ in rows if (n := config["n_train"]) > 0})
    labels = label_grid(sizes, inputs.labels)
    volumes = volume_grid(inputs.queries_per_day)
    cells = []
    for volume in volumes:
        line = []
        for budget in labels:
            changed = inputs.changed(labels=budget, queries_per_day=volume)
            found = recommend(rows, changed, metric, summary)
            line.append(cell(found, metric))
        cells.append(line)
    return {
        "metric": metric,
        "labels": labels,
        "volumes": volumes,
        "measured_sizes": sizes,
        "scenario": {"labels": inputs.labels, "queries_per_day": inputs.queries_per_day},
        "horizon_days": inputs.horizon_days,
        "cells": cells,
    }


def cell(found, metric: str) -> dict | None:
    """The answer of one cell: the recommended method and the runner-up, each with its score and
    total cost; None when no method meets every constraint."""
    if found.recommended is None:
        return None

    def choice(candidate) -> dict | None:
        if candidate is None:
            return None
        entry = candidate.to_json(found.inputs)
        return {"method": entry["method"], "score": entry[metric], "total": entry["total_cost"]}

    return {"use": choice(found.recommended), "runner_up": choice(found.runner_up)}


def grid_methods(grid: dict) -> list[str]:
    """The methods the map recommends somewhere, sorted."""
    return sorted({c["use"]["method"] for line in grid["cells"] for c in line if c})


def budget_pareto(pareto: dict, labels: int, metric: str) -> dict:
    """The Pareto view at the scenario's label budget: each method's point at the largest
    measured size within `labels` (0 for a method without training), dominance recomputed
    among those points only (promptworth.recommend.pareto's rule)."""
    from promptworth.recommend.pareto import pareto as mark_dominated

    chosen: dict[str, dict] = {}
    for point in pareto["points"]:
        if point["labels"] <= labels:
            best = chosen.get(point["method"])
            if best is None or point["labels"] > best["labels"]:
                chosen[point["method"]] = point
    flags = ("dominated_cost", "dominated_labels")
    plain = [{k: v for k, v in p.items() if k not in flags} for p in chosen.values()]
    return {**mark_dominated(plain, metric), "labels": labels}
