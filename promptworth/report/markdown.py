"""report.md: what was run, the accuracy table, the figures, the verdict and where the files are."""

from __future__ import annotations

import math
from pathlib import Path

from promptworth.analysis.metrics import METRICS
from promptworth.analysis.results import (
    DIRECT_PROMPT,
    GENERATION_COSTS,
    at_largest_size,
    batched_ms,
    memory_alone,
)

COLUMNS_DEFINED = "Columns are defined in docs/reference/outputs.md#resultscsv."


def cost_table(frame):
    """Median cost per method over its runs (the trained ones at their largest size). Generation
    runs add their calls and generated tokens per row, and each method's prediction time over
    the direct prompt's (`vs_zero_shot`) when the store has zero-shot runs of one config."""
    columns = [
        "trainable_params",
        "train_seconds",
        "train_tokens",
        "peak_rss_mb",
        "serve_peak_rss_mb",
        "eval_ms_per_example",
        "latency_ms_p50",
        "latency_ms_p95",
        "serving_ms_per_example",
        "serving_memory_mb",
        "prompt_tokens_per_example",
        *[column for column in GENERATION_COSTS if column in frame],
        "artifact_bytes",
    ]
    largest = at_largest_size(frame)
    table = largest.groupby("method")[columns].median()
    if "calls_per_row" in frame and DIRECT_PROMPT in table.index:
        served = batched_ms(largest).groupby(largest["method"]).median()
        table["vs_zero_shot"] = served / served[DIRECT_PROMPT]
    return table


MULTIPLIER_NOTE = (
    "vs_zero_shot: each method's batched serving time per example over the direct prompt's "
    "(zero-shot), every step of a multi-step technique included; calls_per_row and "
    "generated_tokens_per_row say where the time goes."
)


def cost_notes(frame) -> list[str]:
    """What to keep in mind reading the cost table: which memory figures are upper bounds, and
    what a generation technique's multiplier is."""
    notes = []
    shared = [method for method, alone in memory_alone(frame).items() if not alone]
    if shared:
        notes.append(
            f"Memory of {', '.join(shared)}: upper bounds, from runs stored before promptworth "
            "measured each run with only its own models resident (models of other runs count "
            "too) or on a system where the memory peak cannot be reset (the process's lifetime "
            "peak)."
        )
    if "calls_per_row" in frame and (frame["method"] == DIRECT_PROMPT).any():
        notes.append(MULTIPLIER_NOTE)
    return [*notes, COLUMNS_DEFINED]


def markdown_table(table) -> str:
    header = (
        "| " + " | ".join([str(table.index.name or "")] + [str(c) for c in table.columns]) + " |"
    )
    rule = "|" + "---|" * (len(table.columns) + 1)
    body = [
        "| " + " | ".join([str(i)] + [format_cell(v) for v in row]) + " |"
        for i, row in zip(table.index, table.itertuples(index=False))
    ]
    return "\n".join([header, rule, *body])


def format_cell(value) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "—"  # not recorded: e.g. a store written before the column existed
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return str(value)


def failure_lines(failures: list[tuple[str, dict, str]]) -> list[str]:
    """The "Failed runs" section: (label, config, error) of runs whose last attempt failed."""
    if not failures:
        return []
    lines = [
        "## Failed runs",
        "",
        f"{len(failures)} planned runs failed: they are in no table or figure above, and the next "
        "`promptworth run` with the same options retries them (a success replaces the failure).",
        "",
        "| method | n_train | seed | error |",
        "|---|---|---|---|",
    ]
    for label, config, error in sorted(
        failures, key=lambda f: (f[0], f[1]["n_train"], f[1]["seed"])
    ):
        first = (error.strip().splitlines() or [""])[0][:300].replace("|", "\\|")
        lines.append(f"| {label} | {config['n_train']} | {config['seed']} | {first} |")
    return [*lines, ""]


def write_report(
    path: Path,
    frame,
    summary,
    files: dict[str, Path],
    description: list[str],
    verdict_lines: list[str],
    legend: list[str] = (),
    failures: list[tuple[str, dict, str]] = (),
    recommendation: list[str] = (),
    metric: str = "accuracy",
    models: list[str] = (),
) -> Path:
    """`legend`: lines under the `metric` table saying what its cells and marks mean;
    `recommendation`: the answer's section, first after the description; `models`: the model
    axis of runs on several backbones (report/models.py), after the learning curves."""
    lines = [
        "# promptworth report",
        "",
        *description,
        "",
        *recommendation,
        f"## {METRICS[metric].name} by number of labelled examples",
        "",
        markdown_table(summary),
        "",
        *legend,
        "",
        f"![learning curves]({files['learning_curves'].name})",
        "",
        *models,
    ]
    if verdict_lines:
        lines += ["## How many data points is each method worth?", "", *verdict_lines, ""]
    lines += failure_lines(list(failures))
    lines += [
        "## Cost (median over runs at each method's largest size)",
        "",
        markdown_table(cost_table(frame)),
        "",
        *(line for note in cost_notes(frame) for line in (note, "")),
    ]
    lines += files_lines(files)
    path.write_text("\n".join(lines) + "\n")
    return path


def files_lines(files: dict[str, Path]) -> list[str]:
    """The "Files" section: every file the report wrote."""
    return ["## Files", "", *(f"- {name}: `{p}`" for name, p in files.items())]
