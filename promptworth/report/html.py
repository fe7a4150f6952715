"""report.html: the report for a browser, self-contained (Plotly's JavaScript embedded once, no
network access): the recommendation, learning curves by method family with a method filter,
sortable tables (accuracy, advantage matrix with each n/a explained in place, cost)."""

from __future__ import annotations

from html import escape
from importlib.resources import files
from pathlib import Path

import plotly.offline

from promptworth.analysis.metrics import METRICS, metric_text
from promptworth.analysis.summary import AccuracySummary
from promptworth.recommend.money import money, period
from promptworth.recommend.text import score_text
from promptworth.report.details import MACHINE_FIELDS, MIXED_MACHINES
from promptworth.report.families import family_panels
from promptworth.report.interactive import break_even_figure, curve_figures, pareto_figure
from promptworth.report.markdown import cost_notes, cost_table, format_cell

NO_ADVANTAGE = "no advantage measurable: "  # how promptworth.analysis.advantage's errors begin
PLOT_CONFIG = {"displaylogo": False, "responsive": True}
# (key, row title) of the recommendation card after its score's row; values formatted by card_value
CARD_ROWS = (
    ("labels_to_target", "labels at which the mean reaches the target"),
    ("labelling_cost", "labelling"),
    ("training_cost", "training"),
    ("serving_cost_total", "serving"),
    ("instances", "always-on instances"),
    ("serving_cost_per_million", "serving per million queries at this volume"),
    ("compute_cost_per_million", "compute per million queries at full use"),
    ("latency_ms_p50", "latency p50 (ms, batch 1)"),
    ("latency_ms_p95", "latency p95 (ms, batch 1)"),
    ("memory_mb", "memory (MB, peak RSS of a process)"),
    ("model_weights_mb", "the model's weights (MB, float32)"),
    ("artifact_mb", "artifact (MB)"),
    ("total_cost", "total"),
)
PER_MILLION = ("serving_cost_per_million", "compute_cost_per_million")
OVER_THE_HORIZON = ("serving_cost_total", "total_cost")
ONCE = ("labelling_cost", "training_cost")


def write_html(
    out: Path,
    frame,
    accuracy: AccuracySummary,
    table,
    legend: list[str],
    advantage_pairs: list[dict],
    machines: list[tuple[tuple[str, ...], int]],
    recommendation: dict | None = None,
) -> Path:
    """`table`: the accuracy table (analysis.summary.accuracy_table) with `legend`, its key;
    `advantage_pairs`: advantage.json's pairs; `machines`: report.details.machine_counts;
    `recommendation`: Recommendation.to_json()."""
    sections = [
        recommendation_section(recommendation),
        curves_section(frame, accuracy),
        accuracy_section(table, legend, accuracy.metric),
        advantage_section(advantage_pairs),
        cost_section(frame),
        machines_section(machines),
    ]
    path = out / "report.html"
    path.write_text(page("\n".join(sections)), encoding="utf-8")
    return path


def page(body: str) -> str:
    asset = files("promptworth.report")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>promptworth report</title>
<style>{asset.joinpath("report.css").read_text(encoding="utf-8")}</style>
<script>{plotly.offline.get_plotlyjs()}</script>
</head>
<body>
<h1>promptworth report</h1>
{body}
<script>{asset.joinpath("report.js").read_text(encoding="utf-8")}</script>
</body>
</html>
"""


def figure_html(figure, div_id: str) -> str:
    """A Plotly figure's div and drawing script (the library itself is in the page's head)."""
    plot = figure.to_html(
        full_html=False, include_plotlyjs=False, div_id=div_id, config=PLOT_CONFIG
    )
    return f'<div class="plot">{plot}</div>'


def table_html(
    columns: list[str], rows: list[tuple[str | None, list[str]]], sortable: bool = True
) -> str:
    """A table, `sortable` by a click on a header; `rows`: (method or None, the row's <td>/<th>
    cells). A row's method lets the method filter hide it."""
    head = "".join(f'<th scope="col">{escape(str(c))}</th>' for c in columns)
    body = "".join(
        (f'<tr data-method="{escape(method)}">' if method else "<tr>") + "".join(cells) + "</tr>"
        for method, cells in rows
    )
    return (
        f'<div class="scroll"><table class="{"sortable" if sortable else "plain"}">'
        f"<thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table></div>"
    )


def td(text: str, sort: float | None = None, raw: bool = False) -> str:
    """A cell; `sort`: the number it sorts by (else its text); `raw`: `text` is HTML."""
    key = "" if sort is None else f' data-sort="{sort!r}"'
    return f"<td{key}>{text if raw else escape(text)}</td>"


def row_head(method: str) -> str:
    return f'<th scope="row">{escape(method)}</th>'


def section(anchor: str, title: str, *parts: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{"".join(parts)}</section>'


def paragraph(text: str) -> str:
    return f"<p>{escape(text)}</p>"


def recommendation_section(recommendation: dict | None) -> str:
    if recommendation is None:
        return section(
            "recommendation",
            "Recommendation",
            '<p class="none">No recommendation was computed for this report, so it has no '
            "break-even or Pareto figure either: it shows the measured results only.</p>",
        )
    return section(
        "recommendation",
        "Recommendation",
        *(paragraph(line.replace("**", "")) for line in recommendation["verdict"]["lines"]),
        card_html(recommendation),
        sensitivity_html(recommendation),
        inputs_html(recommendation["inputs"]),
        list_html(
            "Ruled out",
            [f"{r['method']}: {r['reason']}" for r in recommendation["ruled_out"]],
        ),
        list_html("What would change the answer", recommendation["what_would_change"]),
        "<h3>Break-even</h3>",
        figure_html(break_even_figure(recommendation["break_even"]), "break-even"),
        "<h3>Pareto</h3>",
        figure_html(pareto_figure(recommendation["pareto"], recommendation["metric"]), "pareto"),
    )


def card_html(recommendation: dict) -> str:
    """The recommended method beside the runner-up: its score in the recommendation's metric,
    then one row per CARD_ROWS entry."""
    if recommendation["recommended"] is None:
        return paragraph("No method meets every constraint of this scenario (see ruled out).")
    choices = [c for c in (recommendation["recommended"], recommendation.get("runner_up")) if c]
    columns = ["", *(f"{t}: {c['method']}" for t, c in zip(("use", "runner-up"), choices))]
    metric = recommendation["metric"]
    score = (metric, f"{metric_text(metric)} at your label budget [95 % interval]")
    days = recommendation["inputs"]["horizon_days"]["value"]
    rows = [
        (None, [row_head(title), *(td(card_value(c, key, metric, days)) for c in choices)])
        for key, title in (score, *CARD_ROWS)
    ]
    return f'<div class="card">{table_html(columns, rows, sortable=False)}</div>'


def card_value(choice: dict, key: str, metric: str, days: float = 365) -> str:
    """A card cell: scores with their interval, money with its currency and unit."""
    value = choice.get(key)
    if value is None:
        return "—"
    if key == metric:
        return score_text(choice, metric)
    if key == "labels_to_target":
        flag = " (extrapolated)" if choice.get("labels_to_target_extrapolated") else ""
        return f"{value:,.0f}{flag}"
    if key in PER_MILLION:
        return f"{money(value)} per million queries"
    if key in OVER_THE_HORIZON:
        return f"{money(value)} {period(days)}"
    if key in ONCE:
        return f"{money(value)} once"
    return format_cell(float(value))


def sensitivity_html(recommendation: dict) -> str:
    """Each input halved and doubled, and the method then recommended."""
    current = (recommendation["recommended"] or {}).get("method")
    rows = [
        (
            None,
            [
                row_head(r["flag"]),
                td(f"{r['value']:,g}"),
                *(
                    td(f"{r[k]['value']:,g}: {r[k]['method'] or 'no answer'}")
                    for k in ("x0.5", "x2")
                ),
                td("yes" if r["flips"] else "no"),
            ],
        )
        for r in recommendation["sensitivity"]
    ]
    if not rows:
        return ""
    columns = ["input", "value", "×0.5", "×2", "changes the answer"]
    title = f"What halving or doubling an input does (answer now: {escape(str(current))})"
    return f"<h3>{title}</h3>{table_html(columns, rows, sortable=False)}"


def inputs_html(inputs: dict) -> str:
    rows = [(None, [row_head(k), td(str(v))]) for k, v in inputs.items()]
    return "<h3>Inputs</h3>" + table_html(["input", "value"], rows, sortable=False)


def list_html(title: str, items: list[str]) -> str:
    entries = "".join(f"<li>{escape(item)}</li>" for item in items) or "<li>none</li>"
    return f"<h3>{escape(title)}</h3><ul>{entries}</ul>"


def curves_section(frame, accuracy: AccuracySummary) -> str:
    """The method filter, then one learning-curve panel per family."""
    plots = [figure_html(f, f"curves-{i}") for i, f in enumerate(curve_figures(frame, accuracy))]
    return section(
        "curves",
        "Learning curves by method family",
        filter_html(sorted(frame["method"].unique())),
        paragraph(
            "Hover a point for its seeds and interval. Dashed: methods that use no labelled "
            "data. Untick a method to hide its lines in every panel and its table rows."
        ),
        f'<div class="panels">{"".join(plots)}</div>',
    )


def filter_html(methods: list[str]) -> str:
    """Checkboxes by family; report.js wires them to the plots and tables."""
    groups = [
        f"<div><b>{escape(family)}</b> "
        + "".join(
            f'<label><input type="checkbox" checked data-filter="{escape(m)}">{escape(m)}</label>'
            for m in members
        )
        + "</div>"
        for family, members in family_panels(methods, max_lines=len(methods))
    ]
    return f'<fieldset id="method-filter"><legend>Methods</legend>{"".join(groups)}</fieldset>'


def accuracy_section(table, legend: list[str], metric: str) -> str:
    columns = [table.index.name or "method", *(f"{n:,} labels" for n in table.columns)]
    rows = [
        (method, [row_head(method), *(td(str(cell)) for cell in table.loc[method])])
        for method in table.index
    ]
    notes = "".join(paragraph(line.removeprefix("- ")) for line in legend if line)
    return section(
        "accuracy",
        f"{METRICS[metric].name} by number of labelled examples",
        table_html(columns, rows),
        notes,
    )


def advantage_section(pairs: list[dict]) -> str:
    """Rows: method; columns: baseline; an n/a cell opens to the analysis' reason."""
    cells = {(p["method"], p["baseline"]): p for p in pairs}
    methods = sorted({p["method"] for p in pairs} | {p["baseline"] for p in pairs})
    rows = [
        (method, [row_head(method), *(advantage_cell(cells.get((method, b))) for b in methods)])
        for method in methods
    ]
    return section(
        "advantage",
        "How many data points is each method worth?",
        paragraph(
            "Advantage of the row's method over the column's, in labelled examples (positive: "
            "the row needs fewer; accumulated-max estimator ± its leave-one-seed-out std). "
            "Click an n/a for why no advantage could be measured."
        ),
        table_html(["method \\ baseline", *methods], rows),
    )


def advantage_cell(pair: dict | None) -> str:
    if pair is None:
        return td("—")
    if pair["error"]:
        short = escape(short_reason(pair["error"]))
        why = f'<div class="why">{escape(pair["error"])}</div>'
        return td(f"<details><summary>n/a: {short}</summary>{why}</details>", raw=True)
    spread = f" ± {pair['std']:.0f}" if pair["std"] is not None else ""
    text = escape(f"{pair['advantage']:.0f}{spread}")
    note = f' title="{escape(pair["note"])}"' if pair.get("note") else ""
    return td(f"<span{note}>{text}</span>", sort=pair["advantage"], raw=True)


def short_reason(error: str) -> str:
    """The gist of the analysis' error for the cell itself, e.g. "the score ranges do not
    overlap; head dominates": its parenthesised detail left to the opened cell."""
    gist, _, rest = error.removeprefix(NO_ADVANTAGE).partition("); ")
    return gist.split(" (")[0] + (f"; {rest.split(':')[0]}" if rest else "")


def cost_section(frame) -> str:
    costs = cost_table(frame)
    rows = [
        (
            method,
            [row_head(method), *(td(format_cell(v), sort=float(v)) for v in costs.loc[method])],
        )
        for method in costs.index
    ]
    return section(
        "cost",
        "Cost (median over runs at each method's largest size)",
        table_html(["method", *costs.columns], rows),
        *(paragraph(note) for note in cost_notes(frame)),
    )


def machines_section(machines: list[tuple[tuple[str, ...], int]]) -> str:
    rows = [
        (None, [*(td(value) for value in machine), td(str(n), sort=n)]) for machine, n in machines
    ]
    caution = [paragraph(MIXED_MACHINES)] if len(machines) > 1 else []
    return section(
        "machines",
        "Machines",
        table_html([*MACHINE_FIELDS.values(), "runs"], rows, sortable=False),
        *caution,
    )
