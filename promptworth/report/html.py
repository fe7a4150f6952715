"""report.html: the report for a browser, self-contained (Plotly's JavaScript and the PNG figures
embedded, no network access), with everything report.md has in report.md's order: the header,
the recommendation with its decision map, learning curves by method family with a method filter,
the verdict with its figures, sortable tables (accuracy, advantage matrix with each n/a explained
in place, cost), report.md's other sections as text, and every run's traces per test row."""

from __future__ import annotations

import base64
from html import escape
from importlib.resources import files
from pathlib import Path

import plotly.offline
from markdown_it import MarkdownIt

from promptworth.analysis.metrics import METRICS, metric_text
from promptworth.analysis.summary import AccuracySummary
from promptworth.recommend.money import money, period
from promptworth.recommend.text import score_text
from promptworth.report.details import MACHINE_FIELDS, MIXED_MACHINES
from promptworth.report.families import family_panels
from promptworth.report.interactive import (
    break_even_figure,
    curve_figures,
    decision_map_figure,
    pareto_figure,
)
from promptworth.report.le_scao_rush import le_scao_rush_figure
from promptworth.report.markdown import cost_notes, cost_table, format_cell
from promptworth.report.traces import script_json, traces_section

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
    blocks: dict[str, list[str]] | None = None,
    views: dict | None = None,
) -> Path:
    """`table`: the accuracy table (analysis.summary.accuracy_table) with `legend`, its key;
    `advantage_pairs`: advantage.json's pairs; `machines`: report.details.machine_counts;
    `recommendation`: Recommendation.to_json() with the report's decision map; `blocks`:
    report.md's own lines of the sections the page shows as text (header, recommendation,
    verdict, predictions, details, failures, files), rendered in report.md's order; `views`:
    the advantage figure's PNG, the Le Scao & Rush view (report.le_scao_rush.View) and the
    traces (report.traces.trace_data)."""
    blocks, views = blocks or {}, views or {}
    sections = [
        markdown_html(blocks.get("header", [])),
        recommendation_section(recommendation, blocks.get("recommendation", [])),
        accuracy_section(table, legend, accuracy.metric),
        curves_section(frame, accuracy),
        text_section("models", blocks.get("models", []), views.get("models")),
        advantage_section(advantage_pairs, blocks.get("verdict", []), views),
        text_section("predictions", blocks.get("predictions", [])),
        text_section("details", blocks.get("details", [])),
        traces_section(views.get("traces")),
        text_section("serving", blocks.get("serving", [])),
        machines_section(machines),
        text_section("failures", blocks.get("failures", [])),
        cost_section(frame),
        text_section("files", blocks.get("files", [])),
    ]
    path = out / "report.html"
    path.write_text(page("\n".join(sections)), encoding="utf-8")
    return path


MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")


def markdown_html(lines: list[str]) -> str:
    """report.md's lines as HTML; figures are left out (the page draws its own, or embeds
    them where it has none)."""
    kept = [line for line in lines if not line.startswith("![")]
    return MARKDOWN.render("\n".join(kept)) if any(line.strip() for line in kept) else ""


def text_section(anchor: str, lines: list[str], figure: Path | None = None) -> str:
    """A report.md section as it is there: its "## " title, then its text and tables (and
    `figure`, the PNG report.md links, embedded)."""
    if not lines:
        return ""
    embedded = embedded_png(figure) if figure else ""
    return f'<section id="{anchor}">{markdown_html(lines)}{embedded}</section>'


def embedded_png(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return (
        f'<img class="figure" alt="{escape(Path(path).stem)}" src="data:image/png;base64,{data}">'
    )


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


def recommendation_section(recommendation: dict | None, lines: list[str] = ()) -> str:
    """The card, report.md's recommendation text, the Inputs, the decision map with its controls,
    break-even and Pareto at the scenario's budget."""
    if recommendation is None:
        return section(
            "recommendation",
            "Recommendation",
            '<p class="none">No recommendation was computed for this report, so it has no '
            "decision map, break-even or Pareto figure either: it shows the measured results "
            "only.</p>",
        )
    text = [line for line in lines if not line.startswith("## ")]
    parts = [card_html(recommendation), markdown_html(text), inputs_html(recommendation["inputs"])]
    grid = recommendation.get("decision_map")
    if grid:
        parts += ["<h3>Decision map</h3>", decision_map_html(grid)]
    parts += [
        "<h3>Break-even</h3>",
        paragraph("Hover a cross for the two methods whose totals are equal there."),
        figure_html(break_even_figure(recommendation["break_even"]), "break-even"),
    ]
    pareto = recommendation.get("pareto_at_budget", recommendation["pareto"])
    parts += [
        "<h3>Pareto</h3>",
        figure_html(pareto_figure(pareto, recommendation["metric"]), "pareto"),
    ]
    return section("recommendation", "Recommendation", *parts)


def decision_map_html(grid: dict) -> str:
    """The map (Plotly), its controls and the answer of the cell nearest to them; the cells are
    the recommender's answers computed in Python (report.scenario), embedded as JSON."""
    scenario = grid["scenario"]
    controls = (
        '<div id="decision-controls">'
        f'<label>label budget <input type="number" id="decision-labels" min="1" '
        f'value="{scenario["labels"]}"></label> '
        f'<label>queries a day <input type="number" id="decision-volume" min="1" '
        f'value="{scenario["queries_per_day"]:g}"></label>'
        '<p id="decision-answer"></p></div>'
    )
    data = script_json(grid)
    return (
        paragraph(
            "Each cell is the recommendation with the label budget and the volume changed and "
            "every other input kept; dotted lines mark the measured sizes. Change the inputs to "
            "move the marker: the answer is the nearest cell's."
        )
        + controls
        + figure_html(decision_map_figure(grid), "decision-map")
        + f'<script type="application/json" id="decision-data">{data}</script>'
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


def inputs_html(inputs: dict) -> str:
    """One row per input: its flag, its value, whether it was given, and a default price's
    source (Inputs.to_json())."""
    rows = [
        (
            None,
            [
                row_head(f"--{name.replace('_', '-')}"),
                td(input_value(entry["value"])),
                td("default" if entry["defaulted"] else "given"),
                td(entry.get("source", "")),
            ],
        )
        for name, entry in inputs.items()
    ]
    table = table_html(["input", "value", "set", "source of the default"], rows, sortable=False)
    return f'<h3>Inputs</h3><div class="inputs">{table}</div>'


def input_value(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.6g}"
    return f"{value:,.0f}" if isinstance(value, (int, float)) else str(value)


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


def advantage_section(pairs: list[dict], lines: list[str] = (), views: dict | None = None) -> str:
    """report.md's verdict and paired tests, the advantage figure, the Le Scao & Rush view,
    then the matrix (rows: method; columns: baseline; an n/a cell opens to the reason)."""
    views = views or {}
    cells = {(p["method"], p["baseline"]): p for p in pairs}
    methods = sorted({p["method"] for p in pairs} | {p["baseline"] for p in pairs})
    rows = [
        (method, [row_head(method), *(advantage_cell(cells.get((method, b))) for b in methods)])
        for method in methods
    ]
    figures = [embedded_png(views["advantage"])] if views.get("advantage") else []
    if views.get("le_scao_rush") is not None:
        figures.append(figure_html(le_scao_rush_figure(views["le_scao_rush"]), "le-scao-rush"))
    return section(
        "advantage",
        "How many data points is each method worth?",
        markdown_html([line for line in lines if not line.startswith("## ")]),
        *figures,
        paragraph(
            "Advantage of the row's method over the column's, in labelled examples (positive: "
            "the row needs fewer), on the seed means the tables show (the paper's estimator on "
            "the mean over seeds; ± its leave-one-seed-out std). Click an n/a for why no "
            "advantage could be measured."
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
