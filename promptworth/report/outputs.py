"""Turn finished runs into the output directory's files and a one-screen summary."""

from __future__ import annotations

import json
from pathlib import Path

from promptworth.analysis.metrics import METRICS, metric_text
from promptworth.analysis.results import (
    method_labels,
    recipe_lines,
    results_frame,
    summary_table,
    write_csv,
)
from promptworth.analysis.summary import (
    AccuracySummary,
    accuracy_table,
    add_run_intervals,
    headline_comparisons,
    interval_bands,
    legend_lines,
    paired_lines,
    scored_groups,
    summarize,
    write_uncertainty,
)
from promptworth.analysis.uncertainty import compare_methods
from promptworth.atomic import locked
from promptworth.errors import PromptworthError
from promptworth.paths import REPORT_FILES, check_writable_files, inside
from promptworth.report.details import detail_lines, machine_counts, machine_lines
from promptworth.report.html import write_html
from promptworth.report.judging import judge_lines
from promptworth.report.le_scao_rush import write_le_scao_rush
from promptworth.report.markdown import failure_lines, files_lines, write_report
from promptworth.report.models import model_axis
from promptworth.report.plots import plot_learning_curves
from promptworth.report.predictions import prediction_lines
from promptworth.report.saved import saved_test_rows
from promptworth.report.serving_precision import serving_precision_lines
from promptworth.report.traces import trace_data


def write_outputs(
    rows: list[tuple[str, dict, dict]],
    out: Path,
    description: list[str],
    compare: tuple[str, str] | None = None,
    failures: list[tuple[dict, str]] = (),
    metric: str | None = None,
) -> dict:
    """Write results.csv, summary.csv, uncertainty.json, learning_curves.png, advantage.json/png,
    report.html and report.md; return paths.

    `compare` = (baseline, method) for the verdict figure; by default the head against the
    method with the best mean `metric`. `failures` = (config, error) of failed runs, listed in
    report.md and never counted in a table. `metric` (`report_metric`) is the headline
    score of the tables, curves, intervals and advantages. Both reports open with the
    recommendation for the default scenario (docs/how-to/choose-a-method.md)."""
    metric = report_metric(rows, metric)
    check_writable_files(out, REPORT_FILES)  # before the first file is replaced
    with locked(inside(out, "outputs")):  # sweeps sharing --out never interleave their writes
        return _write_outputs(rows, out, description, compare, failures, metric)


def report_metric(rows: list[tuple[str, dict, dict]], given: str | None) -> str:
    """`given` (--metric) when every run was scored by it, else refused; by default the runs'
    headline: accuracy, or the first metric of a generation task."""
    headlines = sorted({result.get("headline_metric", "accuracy") for _, _, result in rows})
    if given is None:
        if len(headlines) > 1:
            raise PromptworthError(
                f"the runs here have different headline metrics ({', '.join(headlines)}): "
                "choose one with --metric"
            )
        return headlines[0] if headlines else "accuracy"
    if any(given not in result for _, _, result in rows):
        raise PromptworthError(
            f"--metric {given}: not every run here was scored by it (their headline metrics: "
            f"{', '.join(headlines)})"
        )
    return given


def _write_outputs(rows, out: Path, description, compare, failures, metric: str) -> dict:
    frame = results_frame(rows)
    pair = checked_pair(frame, compare, metric)
    accuracy = summarize(frame, rows, metric)
    headline = headline_comparisons(accuracy, pair)
    configs = [config for _, config, _ in rows] + [config for config, _ in failures]
    failed_labels = method_labels(configs)[len(rows) :]
    failed = [(label, c, e) for label, (c, e) in zip(failed_labels, failures)]
    files = {
        "results": write_csv(add_run_intervals(frame, rows), out / "results.csv"),
        "learning_curves": plot_learning_curves(
            frame, out / "learning_curves.png", metric, bands=interval_bands(accuracy)
        ),
        **write_uncertainty(accuracy, headline, pair, out),
    }
    paired = paired_lines(pair, headline) if pair else []
    verdict, matrix = advantage_outputs(
        frame, out, files, pair, paired, metric, headline, interval_bands(accuracy)
    )
    pairs = json.loads(files["advantage"].read_text())["pairs"]
    models = model_axis(frame, pairs, metric, out, interval_bands(accuracy))
    if models is not None:
        files["learning_curves_by_model"] = models.figure
    machines = machine_counts(rows)
    summary = accuracy_table(accuracy, summary_table(frame, metric))
    legend = legend_lines(accuracy) + recipe_lines([config for _, config, _ in rows])
    recommendation, advice = recommendation_outputs(rows, out, files, accuracy)
    view, view_lines = write_le_scao_rush(frame, accuracy, recommendation, out)
    if view is not None:
        files["le_scao_rush"] = out / "le_scao_rush.png"
    saved = saved_test_rows(out)
    blocks = {
        "header": description,
        "recommendation": advice,
        "models": models.lines if models else [],
        "verdict": verdict + view_lines,
        "predictions": prediction_lines(accuracy.groups, recommendation, saved),
        "details": detail_lines(rows) + judge_lines(rows, out),
        "serving": serving_precision_lines(rows),
        "failures": failure_lines(failed),
    }
    files["html"], files["report"] = out / "report.html", out / "report.md"
    blocks["files"] = files_lines(files)
    pairs = json.loads(files["advantage"].read_text())["pairs"]
    views = {
        "advantage": files.get("advantage_plot"),
        "le_scao_rush": view,
        "traces": trace_data(rows, saved),
        "models": files.get("learning_curves_by_model"),
    }
    write_html(
        out, frame, accuracy, summary, legend, pairs, machines, recommendation, blocks, views
    )
    verdict_lines = blocks["verdict"] + matrix + blocks["predictions"] + blocks["details"]
    verdict_lines += blocks["serving"]
    write_report(
        files["report"],
        frame,
        summary,
        files,
        description,
        verdict_lines + machine_lines(machines),
        legend,
        failed,
        advice,
        metric,
        blocks["models"],
    )
    return {
        "recommendation": recommendation,
        "metric": metric,
        "files": files,
        "summary": summary,
        "legend": legend,
        "paired": paired,
        "frame": frame,
        "failures": failed,
    }


def recommendation_outputs(rows, out: Path, files: dict[str, Path], summary: AccuracySummary):
    """The recommendation for the default scenario, by the report's headline metric and from
    its intervals (`summary`, computed once): recommendation.json, the break-even and Pareto
    figures, and report.md's lines (docs/how-to/choose-a-method.md)."""
    from promptworth.recommend import Inputs, recommend
    from promptworth.recommend.figures import plot_break_even, plot_pareto
    from promptworth.recommend.text import recommendation_lines
    from promptworth.report.colors import method_colors
    from promptworth.report.decision_plot import plot_decision_map
    from promptworth.report.scenario import budget_pareto, decision_grid

    recommendation = recommend(rows, Inputs(), summary.metric, summary)
    document = recommendation.to_json()
    files["recommendation"] = out / "recommendation.json"
    files["recommendation"].write_text(json.dumps(document, indent=2, ensure_ascii=False))
    figures = {}  # none when no method's serving could be priced (a store without costs)
    if document["break_even"]["curves"]:
        figures["break_even"] = plot_break_even(
            document["break_even"],
            recommendation.inputs.queries_per_day,
            out / "break_even.png",
            method_colors(document["break_even"]["curves"]),
        )
    # the report's own views, beside the recommender's document: the Pareto view at the
    # scenario's budget and the decision map
    document["pareto_at_budget"] = budget_pareto(
        document["pareto"], recommendation.inputs.labels, summary.metric
    )
    if document["pareto_at_budget"]["points"]:
        figures["pareto"] = plot_pareto(
            document["pareto_at_budget"],
            summary.metric,
            out / "pareto.png",
            method_colors(p["method"] for p in document["pareto_at_budget"]["points"]),
        )
    document["decision_map"] = decision_grid(rows, recommendation, summary)
    figures["decision_map"] = plot_decision_map(document["decision_map"], out / "decision_map.png")
    files.update(figures)
    return document, recommendation_lines(recommendation, figures)


def checked_pair(
    frame, compare: tuple[str, str] | None, metric: str = "accuracy"
) -> tuple[str, str] | None:
    """The headline pair (baseline, method): `compare`, else headline_pair; both must exist."""
    pair = compare or headline_pair(frame, metric)
    if pair is not None and not set(pair) <= set(frame["method"]):
        raise PromptworthError(
            f"--compare {','.join(pair)}: methods in these results are "
            f"{', '.join(sorted(frame['method'].unique()))}"
        )
    return pair


def advantage_outputs(
    frame,
    out: Path,
    files: dict[str, Path],
    compare: tuple[str, str] | None = None,
    paired: list[str] = (),
    metric: str = "accuracy",
    comparisons=None,
    bands=None,
) -> tuple[list[str], list[str]]:
    """The pairwise advantage matrix on the seed means (advantage.json), the verdict with the
    headline pair's paired tests (`comparisons`, their lines `paired`) and its figure (seed
    means with `bands`, their 95 % intervals, beside the paper's accumulated max); returns
    report.md's lines of the verdict and of the matrix."""
    from promptworth.analysis.advantage import advantage_matrix
    from promptworth.analysis.curves import long_from_wide
    from promptworth.report.advantage_plot import plot_advantage
    from promptworth.report.verdict import TABLE_ESTIMATOR, headline_verdict

    long = long_from_wide(frame)
    matrix = advantage_matrix(long, metric=metric, estimator=TABLE_ESTIMATOR)
    pair = checked_pair(frame, compare, metric)
    document = {
        "metric": metric,
        "estimator": TABLE_ESTIMATOR,
        "pairs": [{"method": m, "baseline": b, **cell} for (m, b), cell in matrix.items()],
    }
    lines, head = matrix_lines(matrix), []
    if pair is not None:
        verdict = headline_verdict(long, pair, comparisons, metric)
        figure = []
        if verdict.error is None:
            files["advantage_plot"] = plot_advantage(
                long, pair[0], pair[1], metric, out / "advantage.png", bands
            )
            figure = [f"![advantage]({files['advantage_plot'].name})", ""]
        document["headline"] = verdict.sentence
        document["verdict"] = verdict.to_json()
        head = [f"**{verdict.sentence}**", "", *paired, *figure]
    files["advantage"] = out / "advantage.json"
    files["advantage"].write_text(json.dumps(document, indent=2, default=str))
    return head, [*lines, ""]


def headline_pair(frame, metric: str = "accuracy") -> tuple[str, str] | None:
    """(baseline, method) for the figure: the classifier head against the best other method."""
    methods = list(frame["method"].unique())
    if len(methods) < 2:
        return None
    baseline = "head" if "head" in methods else sorted(methods)[0]
    others = frame[frame["method"] != baseline]
    return baseline, others.groupby("method")[metric].mean().idxmax()


def matrix_lines(matrix: dict) -> list[str]:
    """A markdown table: row = method, column = baseline, cell = advantage ± std in data points;
    the reasons for empty cells follow the table."""
    methods = sorted({m for m, _ in matrix} | {b for _, b in matrix})
    lines = [
        "Advantage of the row's method over the column's, in labelled examples (positive: the "
        "row needs fewer), on the seed means the tables show (the paper's estimator on the mean "
        "over seeds at each size; ± its leave-one-seed-out std):",
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
    print(f"{METRICS[result['metric']].name} by number of labelled examples:")
    print(result["summary"].to_string())
    print("\n".join(result["legend"]))
    print()
    if result["paired"]:
        print("\n".join(result["paired"]))
    if result["failures"]:
        print(f'{len(result["failures"])} runs failed: see "Failed runs" in the report')
    print(f"Results: {result['files']['results']}  Store: {out / 'runs.sqlite'}")
    print()
    print("\n".join(terminal_verdict(result["recommendation"]["verdict"])))
    print(f"Report: {result['files']['report']}")


def terminal_verdict(verdict: dict) -> list[str]:
    """A recommendation's verdict for a terminal: the default scenario's answer, why, what it
    needs, and what not to trust (markdown emphasis dropped)."""
    lines = [line.replace("**", "") for line in verdict["lines"]]
    return ["Recommendation (default scenario; `promptworth recommend OUT` for yours):", *lines]


def stored_rows(out: Path) -> list[tuple[str, dict, dict]]:
    """The finished runs of an output directory's store."""
    from promptworth.store.database import RunStore

    database = out / "runs.sqlite"
    if not database.exists():
        raise PromptworthError(f"{database}: no store here; give the --out of a run")
    rows = RunStore(database).load()
    if not rows:
        raise PromptworthError(f"{database} holds no finished run yet")
    return rows


def recommend_metric(out: Path, given: str | None) -> tuple[str, list[str]]:
    """The metric `promptworth recommend` ranks by: --metric when given, else the headline metric
    of the report last written into `out` (its uncertainty.json), so that the command repeats
    report.md's answer, else accuracy; with a note when the report's macro-F1 is taken."""
    path = out / "uncertainty.json"
    if given is not None or not path.is_file():
        return given or "accuracy", []
    try:
        metric = json.loads(path.read_text()).get("metric")
    except (ValueError, AttributeError):
        metric = None
    if metric not in METRICS:
        raise PromptworthError(
            f"{path}: no headline metric in it; give --metric, or rewrite it with "
            f"`promptworth report {out}`"
        )
    if metric == "accuracy":
        return metric, []
    return metric, [
        f"Ranked by {metric_text(metric)}, the headline metric of the report in {out} "
        f"({path.name}); --metric accuracy ranks by accuracy."
    ]


def compare_text(out: Path, baseline: str, method: str, as_json: bool = False) -> str:
    """`promptworth compare`: the paired accuracy test of two methods of a store, at every size
    both can be paired (docs/concepts/uncertainty.md#paired-tests)."""
    rows = stored_rows(out)
    groups = scored_groups(results_frame(rows), rows)
    comparisons = compare_methods(groups, baseline, method)
    if as_json:
        return json.dumps([c.to_dict() for c in comparisons], indent=2, ensure_ascii=False)
    return "\n".join(paired_lines((baseline, method), comparisons)).rstrip()
