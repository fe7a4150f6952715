"""Turn finished runs into the output directory's files and a one-screen summary."""

from __future__ import annotations

import json
from pathlib import Path

from promptworth.atomic import locked
from promptworth.report.details import detail_lines
from promptworth.report.markdown import write_report
from promptworth.report.plots import plot_learning_curves
from promptworth.report.results import method_labels, results_frame, summary_table, write_csv


def write_outputs(
    rows: list[tuple[str, dict, dict]],
    out: Path,
    description: list[str],
    compare: tuple[str, str] | None = None,
    failures: list[tuple[dict, str]] = (),
) -> dict:
    """Write results.csv, learning_curves.png, advantage.json/png and report.md; return paths.

    `compare` = (baseline, method) for the verdict figure; by default the head against the
    method with the best mean accuracy. `failures` = (config, error) of failed runs, listed in
    report.md and never counted in a table."""
    with locked(out / "outputs"):  # sweeps sharing --out never interleave their writes
        return _write_outputs(rows, out, description, compare, failures)


def _write_outputs(rows, out: Path, description, compare, failures) -> dict:
    frame = results_frame(rows)
    configs = [config for _, config, _ in rows] + [config for config, _ in failures]
    failed_labels = method_labels(configs)[len(rows) :]
    failed = [(label, c, e) for label, (c, e) in zip(failed_labels, failures)]
    files = {
        "results": write_csv(frame, out / "results.csv"),
        "learning_curves": plot_learning_curves(frame, out / "learning_curves.png"),
    }
    verdict_lines = advantage_outputs(frame, out, files, compare) + detail_lines(rows)
    summary = summary_table(frame)
    files["report"] = out / "report.md"
    write_report(files["report"], frame, summary, files, description, verdict_lines, failed)
    return {"files": files, "summary": summary, "frame": frame, "failures": failed}


def advantage_outputs(
    frame, out: Path, files: dict[str, Path], compare: tuple[str, str] | None = None
) -> list[str]:
    """The pairwise advantage matrix (advantage.json), the verdict figure, and report lines."""
    from promptworth.analysis.advantage import advantage_matrix, estimate, verdict
    from promptworth.analysis.curves import long_from_wide
    from promptworth.report.advantage_plot import plot_advantage

    long = long_from_wide(frame)
    matrix = advantage_matrix(long, metric="accuracy")
    pair = compare or headline_pair(frame)
    if pair is not None and not set(pair) <= set(frame["method"]):
        raise ValueError(
            f"--compare {','.join(pair)}: methods in these results are "
            f"{', '.join(sorted(frame['method'].unique()))}"
        )
    document = {
        "metric": "accuracy",
        "estimator": "accumulated-max",
        "pairs": [{"method": m, "baseline": b, **cell} for (m, b), cell in matrix.items()],
    }
    lines = matrix_lines(matrix)
    if pair is not None:
        try:
            headline = verdict(estimate(long, pair[0], pair[1], "accuracy"))
            files["advantage_plot"] = plot_advantage(
                long, pair[0], pair[1], "accuracy", out / "advantage.png"
            )
            figure = [f"![advantage]({files['advantage_plot'].name})"]
        except ValueError as error:  # e.g. a single size, or curves that never overlap
            headline, figure = f"{pair[1]} vs {pair[0]}: no verdict: {error}", []
        document["headline"] = headline
        lines = [f"**{headline}** (accumulated-max, the paper's estimator).", "", *lines, ""]
        lines += figure
    files["advantage"] = out / "advantage.json"
    files["advantage"].write_text(json.dumps(document, indent=2, default=str))
    return lines


def headline_pair(frame) -> tuple[str, str] | None:
    """(baseline, method) for the figure: the classifier head against the best other method."""
    methods = list(frame["method"].unique())
    if len(methods) < 2:
        return None
    baseline = "head" if "head" in methods else sorted(methods)[0]
    others = frame[frame["method"] != baseline]
    return baseline, others.groupby("method")["accuracy"].mean().idxmax()


def matrix_lines(matrix: dict) -> list[str]:
    """A markdown table: row = method, column = baseline, cell = advantage ± std in data points;
    the reasons for empty cells follow the table."""
    methods = sorted({m for m, _ in matrix} | {b for _, b in matrix})
    lines = [
        "Advantage of the row's method over the column's, in labelled examples "
        "(positive: the row needs fewer):",
        "",
        "| method \\ baseline | " + " | ".join(methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    reasons = []
    for method in methods:
        cells = []
        for baseline in methods:
            cell = matrix.get((method, baseline))
            if cell is None:
                cells.append("—")
            elif cell["error"]:
                reasons.append(f"- {method} over {baseline}: {cell['error']}")
                cells.append(f"n/a [{len(reasons)}]")
            else:
                spread = f" ± {cell['std']:.0f}" if cell["std"] is not None else ""
                cells.append(f"{cell['advantage']:.0f}{spread}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines + (
        [""] + [f"{r.replace('- ', f'- [{i}] ', 1)}" for i, r in enumerate(reasons, 1)]
        if reasons
        else []
    )


def print_summary(result: dict, out: Path) -> None:
    print()
    print("Accuracy (mean ± std over seeds) by number of labelled examples:")
    print(result["summary"].to_string())
    print()
    if result["failures"]:
        print(f'{len(result["failures"])} runs failed: see "Failed runs" in the report')
    print(f"Report: {result['files']['report']}")
    print(f"Results: {result['files']['results']}  Store: {out / 'runs.sqlite'}")
