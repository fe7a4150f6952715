"""report.md's "Serving precision" section: each method served at the precisions its runs
measured (--serve-dtype), against the precision it ran at, and which one to deploy."""

from __future__ import annotations

from promptworth.analysis.results import method_labels
from promptworth.analysis.serve_dtypes import deployable, precision_summaries


def serving_precision_lines(rows: list[tuple[str, dict, dict]]) -> list[str]:
    """The section, or nothing when no run measured a serving precision."""
    labels = method_labels([config for _, config, _ in rows])
    summaries = precision_summaries(rows, labels)
    if not summaries:
        return []
    lines = [
        "## Serving precision",
        "",
        "Each trained model served again at each precision on the same test rows, at each "
        "method's largest size; Δ is the served score minus the run's own (mean over runs), a "
        "significant drop one whose paired 95 % interval lies below 0 "
        "(docs/concepts/serving-precision.md#what-is-measured).",
        "",
        "| method | n_train | precision | runs | score | Δ vs run | latency p50 ms | "
        "examples/s | weights MB | status |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        cells = [
            s.method,
            str(s.n_train),
            s.precision,
            str(s.runs),
            number(s.median(s.scores) if s.scores else None, ".3f"),
            number(sum(s.differences) / len(s.differences) if s.differences else None, "+.3f"),
            number(s.median(s.latency_ms_p50) if s.scores else None, ".1f"),
            number(s.median(s.examples_per_second) if s.scores else None, ".1f"),
            number(s.median(s.weights_bytes) / 2**20 if s.scores else None, ".2f"),
            s.status().replace("|", "\\|"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    chosen = deployable(summaries)
    lines.append("")
    for method in dict.fromkeys(s.method for s in summaries):
        if method in chosen:
            lines.append(
                f"- Deploy {method} at **{chosen[method].precision}**: the smallest weights "
                "among the precisions that served in every run without a significant drop."
            )
        else:
            lines.append(f"- {method}: no precision served in every run without a drop.")
    return [*lines, ""]


def number(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)
