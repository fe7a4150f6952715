"""The runner scores diagnostic predictions; the report shows template and teacher spreads."""

from __future__ import annotations

import numpy as np

from promptworth.report.details import detail_lines, machine_counts, machine_lines
from promptworth.run.runner import score_diagnostics


def test_runner_scores_diagnostic_predictions_nested():
    labels = np.array([0, 1, 1, 2])
    extra = {
        "teacher_predictions": [0, 1, 0, 2],
        "candidates": [{"test_predictions": [0, 1, 1, 2]}, {"test_predictions": [2, 2, 2, 2]}],
    }
    scored = score_diagnostics(extra, labels)
    assert scored["teacher_accuracy"] == 0.75
    assert [c["test_accuracy"] for c in scored["candidates"]] == [1.0, 0.25]


def row(method, n_train, seed, accuracy, extra):
    return (
        "k",
        {"method": method, "n_train": n_train, "seed": seed},
        {"accuracy": accuracy, "extra": extra},
    )


def test_template_spread_and_distill_tables():
    rows = [
        row(
            "prompt-search",
            10,
            0,
            0.6,
            {"candidates": [{"test_accuracy": a} for a in (0.5, 0.6, 0.7)]},
        ),
        row(
            "prompt-search", 10, 1, 0.8, {"candidates": [{"test_accuracy": a} for a in (0.4, 0.8)]}
        ),
        row("distill", 10, 0, 0.7, {"teacher": "head", "teacher_accuracy": 0.75, "speedup": 6.0}),
        row("head", 10, 0, 0.7, {}),
    ]
    text = "\n".join(detail_lines(rows))
    assert "| 10 | 0.700 | 0.141 | 0.400–0.800 |" in text  # mean .7, seed std .141
    assert "| 10 | 0 | head | 0.700 | 0.750 | 6.0× |" in text
    assert detail_lines([row("head", 10, 0, 0.7, {})]) == []


def machine_row(cpu, threads):
    return (
        "k",
        {"method": "head"},
        {"accuracy": 0.5, "device": "cpu", "cpu": cpu, "threads": threads},
    )


def test_machines_section_counts_set_ups_and_cautions_only_when_mixed():
    one = machine_lines(machine_counts([machine_row("cpu-a", 2)] * 2))
    assert "| cpu | cpu-a | 2 | 2 |" in one
    assert not any("more than one machine" in line for line in one)
    older = ("k", {"method": "head"}, {"accuracy": 0.5, "device": "cpu"})  # before `cpu`
    runs = [machine_row("cpu-a", 2), machine_row("cpu-b", 1), older]
    mixed = "\n".join(machine_lines(machine_counts(runs)))
    assert "| cpu | cpu-b | 1 | 1 |" in mixed
    assert "| cpu | not recorded | not recorded | 1 |" in mixed
    assert "more than one machine set-up" in mixed
