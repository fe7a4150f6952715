"""report.html from a tiny sweep: its content, then the page in a real headless browser (Debian's
chromium driven by playwright): it loads offline without errors, every plot renders, the method
filter hides a method's traces and rows, a header click sorts a table."""

from __future__ import annotations

import json
import math
import re
from html import escape, unescape

import pandas as pd
import pytest

from promptworth.report import outputs
from promptworth.report.colors import method_color
from promptworth.report.families import UNREGISTERED, family_panels
from promptworth.report.html import short_reason
from promptworth.report.interactive import break_even_figure, labelled_crossings
from promptworth.report.outputs import write_outputs
from promptworth.run.costs import cpu_model
from promptworth.run.sweep import Sweep
from promptworth.testing import tiny_sweep

METHODS = ["zero-shot", "head", "features-lr"]
# The shape of promptworth.recommend's Recommendation.to_json(), by hand.
CHOICE = {
    "accuracy": 0.61,
    "ci95": [0.52, 0.70],
    "test_rows": 200,
    "test_rows_warning": None,
    "labels_to_target": 380.0,
    "labels_to_target_extrapolated": True,
    "labelling_cost": 0.64,
    "training_cost": 0.004,
    "serving_cost_total": 11.856,
    "instances": 1,
    "serving_cost_per_million": 1.25,
    "compute_cost_per_million": 0.05,
    "latency_ms_p50": 3.1,
    "latency_ms_p95": 4.7,
    "memory_mb": 812.0,
    "model_weights_mb": 90.4,
    "artifact_mb": 0.02,
    "total_cost": 12.5,
}
RECOMMENDATION = {
    "metric": "accuracy",
    "inputs": {  # Inputs.to_json()'s shape
        "labels": {"value": 8, "defaulted": False},
        "target": {"value": 0.7, "defaulted": False},
        "queries_per_day": {"value": 5000, "defaulted": False},
        "horizon_days": {"value": 365, "defaulted": True},
        "cpu_price": {"value": 0.08925, "defaulted": True, "source": "a list price"},
    },
    "verdict": {
        "lines": [
            "**Verdict: use labels: head, +21.0 points of accuracy over the best prompt**",
            "Why head over features-lr: tied within the noise (0.610 vs 0.580).",
        ]
    },
    "sensitivity": [
        {
            "input": "label_cost",
            "flag": "--label-cost",
            "value": 0.08,
            "x0.5": {"value": 0.04, "method": "head"},
            "x2": {"value": 0.16, "method": "features-lr"},
            "flips": True,
        }
    ],
    "recommended": {**CHOICE, "method": "head"},
    "runner_up": {**CHOICE, "method": "features-lr", "labels_to_target": None},
    "ruled_out": [{"method": "zero-shot", "reason": "below the 0.7 target at any volume"}],
    "what_would_change": ["above 40,000 queries a day features-lr pays back its labels"],
    "break_even": {
        "volumes_per_day": [100, 1000, 10000, 100000],
        "horizon_days": 365,
        "curves": {"head": [1.0, 10.0, 100.0, 1000.0], "features-lr": [8.0, 16.0, 49.0, 300.0]},
        "crossings": [{"a": "head", "b": "features-lr", "queries_per_day": 2500.0}],
    },
    "pareto": {
        "points": [
            {
                "method": m,
                "accuracy": accuracy,
                "serving_cost_per_million": cost,
                "labels": labels,
                "dominated_cost": dominated,
                "dominated_labels": False,
            }
            for m, accuracy, cost, labels, dominated in (
                ("zero-shot", 0.4, 9.0, 0, True),
                ("head", 0.61, 1.25, 8, False),
                ("features-lr", 0.58, 0.8, 8, False),
            )
        ]
    },
}


@pytest.fixture(scope="module")
def sweep_out(tmp_path_factory, tiny_task_files, tiny_lm_dir, tiny_encoder_dir):
    """A tiny sweep's store and outputs, the report written with the hand-made recommendation."""
    out = tmp_path_factory.mktemp("out")
    spec = tiny_sweep(tiny_task_files, tiny_lm_dir, tiny_encoder_dir, out, methods=METHODS)
    sweep = Sweep(spec, quiet=True)
    sweep.execute()
    rows = sweep.store.load()
    with pytest.MonkeyPatch.context() as patch:  # the page renders a hand-checked document
        lines = RECOMMENDATION["verdict"]["lines"]  # report.md's recommendation text
        patch.setattr(outputs, "recommendation_outputs", lambda *_: (RECOMMENDATION, lines))
        write_outputs(rows, out, ["- browser test"])
    return out, rows


def test_report_html_holds_the_recommendation_seeds_and_reasons(sweep_out, tmp_path):
    out, rows = sweep_out
    page = (out / "report.html").read_text()
    assert page.count("* plotly.js v") == 1  # the library embedded once (no CDN: browser test)
    assert page.index('id="recommendation"') < page.index('id="curves"') < page.index('id="cost"')
    assert "use: head" in page and "runner-up: features-lr" in page
    assert "380 (extrapolated)" in page and "0.610 [0.520, 0.700]" in page
    verdict = "<strong>Verdict: use labels: head, +21.0 points of accuracy over the best prompt"
    assert verdict in page
    # money with its currency and unit, never a bare 0.004 or 1.25
    assert "$12.50 a year" in page and "$1.25 per million queries" in page
    assert "&lt; $0.01 once" in page
    inputs = page.split('class="inputs"')[1].split("</table>")[0]
    assert "{" not in inputs and '<th scope="row">--labels</th><td>8</td><td>given</td>' in inputs
    assert "<td>0.08925</td><td>default</td><td>a list price</td>" in inputs
    results = pd.read_csv(out / "results.csv")
    for run in results.itertuples():  # every seed's accuracy is in a hover text
        assert f"seed {run.seed}: {run.accuracy:.3f}" in page
    for pair in json.loads((out / "advantage.json").read_text())["pairs"]:
        if pair["error"]:  # every n/a carries its reason in its cell
            assert f'<div class="why">{escape(pair["error"])}</div>' in page
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(outputs, "recommendation_outputs", lambda *_: (None, []))
        write_outputs(rows, tmp_path, ["- no recommendation"])
    assert (
        "No recommendation was computed for this report" in (tmp_path / "report.html").read_text()
    )


@pytest.fixture(scope="module")
def computed_out(sweep_out, tmp_path_factory):
    """The same runs reported with the recommendation computed (decision map, Pareto at the
    budget), as a sweep writes it."""
    _, rows = sweep_out
    out = tmp_path_factory.mktemp("computed")
    written = write_outputs(rows, out, ["- computed recommendation"])
    return out, rows, written


def headings(report: str, page: str) -> tuple[list[str], list[str]]:
    """report.md's "## " titles and report.html's <h2> titles, in order."""
    md = [line[3:] for line in report.splitlines() if line.startswith("## ")]
    html = [unescape(title) for title in re.findall(r"<h2>(.*?)</h2>", page)]
    return md, html


def test_report_html_has_report_md_sections_in_its_order(computed_out):
    out, _, written = computed_out
    report, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    md, html = headings(report, page)
    only_in_html = {"Learning curves by method family", "Traces"}
    assert [title for title in html if title not in only_in_html] == md
    recommended = written["recommendation"]["recommended"]["method"]
    for title in ("Recommendation", f"Where {recommended} errs", "Files", "Machines"):
        assert title in md
    for needle in ("computed recommendation", "Paired test of the accuracy difference"):
        assert needle in report and escape(needle) in page
    headline = json.loads((out / "advantage.json").read_text())["headline"]
    assert f"**{headline}**" in report and f"<strong>{headline}</strong>" in unescape(page)
    if (out / "advantage.png").exists():  # a verdict with a number: its figure, embedded
        assert 'alt="advantage" src="data:image/png;base64,' in page


def test_both_reports_show_the_decision_map_and_the_le_scao_rush_view(computed_out):
    out, _, written = computed_out
    report = (out / "report.md").read_text()
    for figure in ("decision_map.png", "le_scao_rush.png", "pareto.png"):
        assert f"]({figure})" in report and (out / figure).stat().st_size > 0
    page = (out / "report.html").read_text()
    assert 'id="decision-map"' in page and 'id="le-scao-rush"' in page
    grid = written["recommendation"]["decision_map"]
    scenario = grid["scenario"]
    row = grid["volumes"].index(scenario["queries_per_day"])
    column = grid["labels"].index(scenario["labels"])
    answer = grid["cells"][row][column]["use"]["method"]
    assert answer == written["recommendation"]["recommended"]["method"]
    assert grid["measured_sizes"] == [4, 8]


def test_decision_map_cells_are_the_recommenders_answers(computed_out):
    """Two cells against recommend() itself, with the labels and volume changed."""
    from promptworth.recommend import Inputs, recommend

    _, rows, written = computed_out
    grid = written["recommendation"]["decision_map"]
    for row, column in ((0, 0), (-1, -1)):
        inputs = Inputs().changed(
            labels=grid["labels"][column], queries_per_day=grid["volumes"][row]
        )
        expected = recommend(rows, inputs).recommended
        cell = grid["cells"][row][column]
        assert (cell and cell["use"]["method"]) == (expected and expected.method)
        if expected:
            assert cell["use"]["total"] == pytest.approx(expected.total(inputs))


def test_pareto_view_is_at_the_scenarios_budget(computed_out):
    _, _, written = computed_out
    document = written["recommendation"]
    budget = document["inputs"]["labels"]["value"]
    points = document["pareto_at_budget"]["points"]
    assert len({p["method"] for p in points}) == len(points)  # one point a method
    assert all(p["labels"] <= budget for p in points)
    assert len(points) < len(document["pareto"]["points"])  # every size, before


def test_one_colour_per_method_in_every_plotly_figure(computed_out):
    """Every trace of a method, in every panel and figure, is drawn in method_color."""
    out, _, _ = computed_out
    page = (out / "report.html").read_text()
    traces = [
        trace
        for figure in re.findall(r'Plotly.newPlot\(\s*"[^"]+",\s*(\[.*?\]),\s*\{', page, re.S)
        for trace in json.loads(figure)
    ]
    colours = {}
    for trace in traces:
        colour = (trace.get("line") or {}).get("color") or (trace.get("marker") or {}).get("color")
        if trace.get("meta") and isinstance(colour, str):
            colours.setdefault(trace["meta"], set()).add(colour)
    assert colours and all(found == {method_color(m)} for m, found in colours.items())


def test_break_even_labels_keep_apart():
    crossings = [
        {"a": "x", "b": "y", "queries_per_day": volume} for volume in (100, 120, 150, 1000)
    ]
    placed = [side for _, side in labelled_crossings(crossings)]
    assert placed == ["top center", "bottom center", None, "top center"]


def test_report_html_lists_the_machines_of_its_runs(sweep_out, tmp_path):
    """The Machines section shows each run's set-up and cautions only when they are mixed."""
    out, rows = sweep_out
    section = (out / "report.html").read_text().split('id="machines"')[1]
    device, threads = rows[0][2]["device"], rows[0][2]["threads"]
    assert f"<td>{device}</td><td>{escape(cpu_model())}</td><td>{threads}</td>" in section
    assert f'<td data-sort="{len(rows)}">{len(rows)}</td>' in section
    assert "more than one machine set-up" not in section
    moved = [(key, config, {**result, "cpu": "Other CPU"}) for key, config, result in rows[:1]]
    write_outputs(rows[1:] + moved, tmp_path, ["- two machines"])
    mixed = (tmp_path / "report.html").read_text().split('id="machines"')[1]
    assert "<td>Other CPU</td>" in mixed and "more than one machine set-up" in mixed


def test_a_recipe_by_size_is_one_row_with_its_note_in_both_reports(sweep_out, tmp_path):
    """head run with another C at its largest size: one curve under the plain name, and both
    reports say which C held at which size."""
    _, rows = sweep_out
    largest = max(config["n_train"] for _, config, _ in rows if config["method"] == "head")
    bigger_c = [
        (key, {**config, "method_params": {**config["method_params"], "C": 9.0}}, result)
        if config["method"] == "head" and config["n_train"] == largest
        else (key, config, result)
        for key, config, result in rows
    ]
    write_outputs(bigger_c, tmp_path, ["- recipe by size"])
    assert "head" in set(pd.read_csv(tmp_path / "results.csv").method)
    note = f"head: one curve, its recipe by size: C=None at 4 labels; C=9.0 at {largest} labels."
    assert f"- {note}" in (tmp_path / "report.md").read_text()
    assert escape(note) in (tmp_path / "report.html").read_text()


def test_report_html_opens_with_the_computed_recommendation(sweep_out, tmp_path):
    """Unpatched, both reports show the default scenario's recommendation.json."""
    _, rows = sweep_out
    write_outputs(rows, tmp_path, ["- computed recommendation"])
    document = json.loads((tmp_path / "recommendation.json").read_text())
    page = (tmp_path / "report.html").read_text()
    if document["recommended"] is None:
        assert "No method meets every constraint" in page
    else:
        assert f"use: {document['recommended']['method']}" in page
        report = (tmp_path / "report.md").read_text()
        assert f"**Use: {document['recommended']['method']}**" in report
        assert f"{document['verdict']['lines'][0]}  " in report


def test_report_html_scores_by_the_headline_metric(sweep_out, tmp_path):
    """With --metric macro_f1 the page's curves, hover texts, table and recommendation card are
    macro-F1, never accuracy with macro-F1 intervals."""
    _, rows = sweep_out
    write_outputs(rows, tmp_path, ["- macro-F1"], metric="macro_f1")
    page = (tmp_path / "report.html").read_text()
    assert "Macro-F1 by number of labelled examples" in page
    assert "Accuracy by number" not in page
    results = pd.read_csv(tmp_path / "results.csv")
    for run in results.itertuples():
        assert f"seed {run.seed}: {run.macro_f1:.3f}" in page
    for mean in results.groupby(["method", "n_train"])["macro_f1"].mean():
        assert f"mean macro-F1 {mean:.3f}" in page
    axes = page.replace(" ", "")
    assert '"title":{"text":"macro-F1"}' in axes and '"title":{"text":"accuracy"}' not in axes


def test_break_even_crossing_is_marked_on_the_curve():
    """The crossing's marker sits on the cost curve as drawn, straight on log-log axes: head's
    cost is volume / 100 there, so 25 at 2,500/day."""
    figure = break_even_figure(RECOMMENDATION["break_even"])
    (marker,) = [trace for trace in figure.data if trace.mode == "markers+text"]
    assert marker.text == ("head = features-lr<br>2,500/day",)
    assert marker.x == (2500.0,) and marker.y[0] == pytest.approx(25.0)
    assert figure.layout.yaxis.type == "log"
    linear = {**RECOMMENDATION["break_even"], "curves": {"head": [0.0, 3.0, 20.0, 200.0]}}
    (marker,) = [t for t in break_even_figure(linear).data if t.mode == "markers+text"]
    assert marker.y[0] == pytest.approx(3 + 17 * math.log10(2.5))  # a zero cost: linear axis
    assert [trace.meta for trace in figure.data[:2]] == ["head", "features-lr"]  # filterable


def test_a_family_of_more_than_six_is_split():
    methods = ["ia3", "dpo", "p-tuning", "prefix-tuning", "prompt-lora", "prompt-tuning"]
    variants = [*methods, "qlora", "head", "retired-method"]
    panels = family_panels(variants)
    assert [(title, len(members)) for title, members in panels] == [
        ("parameter-efficient (1)", 6),
        ("parameter-efficient (2)", 1),
        ("feature-based", 1),
        (UNREGISTERED, 1),  # a store's method this version does not know: shown, named so
    ]


def sort_key(text: str) -> float | str:
    """What report.js sorts a cell by: its leading number, else its text."""
    try:
        return float(text.split()[0])
    except ValueError:
        return text.lower()


def test_report_html_in_a_headless_browser(sweep_out, browser_page, tmp_path):
    out, _ = sweep_out
    page, problems = browser_page, []
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed request: {r.url}"))
    page.on("request", lambda r: r.url.startswith("file:") or problems.append(f"fetch: {r.url}"))
    page.goto((out / "report.html").as_uri())
    page.wait_for_load_state("load")

    plots = page.locator(".plotly-graph-div")
    trained = sorted(m for m in METHODS if m != "zero-shot")
    # curves, break-even, Pareto, Le Scao & Rush (the hand-made recommendation has no map)
    assert plots.count() == len(family_panels(trained)) + 3
    for i in range(plots.count()):  # Plotly drew each: its svg holds one group per trace
        plots.nth(i).locator("svg.main-svg").first.wait_for()
        assert plots.nth(i).locator("g.trace").count() > 0

    shown = "() => document.querySelectorAll('.js-plotly-plot g.trace').length"
    traces_before = page.evaluate(shown)
    page.locator('#method-filter input[data-filter="head"]').uncheck()
    hidden = page.evaluate(
        "() => [...document.querySelectorAll('.js-plotly-plot')].flatMap(p => p.data)"
        ".map(t => [t.meta, t.visible])"
    )
    assert {v for m, v in hidden if m == "head"} == {False}
    assert False not in {v for m, v in hidden if m != "head"}
    assert page.evaluate(shown) < traces_before  # gone from the drawing, not just the data
    head_rows = page.locator('tr[data-method="head"]')
    assert head_rows.count() == 3  # accuracy, advantage, cost
    assert all(head_rows.nth(i).is_hidden() for i in range(3))
    assert page.locator('tr[data-method="features-lr"]').first.is_visible()
    page.locator('#method-filter input[data-filter="head"]').check()
    assert page.evaluate(shown) == traces_before and head_rows.first.is_visible()

    column = "h => [...h.closest('table').tBodies[0].rows].map(r => r.cells[h.cellIndex].innerText)"
    for header, expected in (("8 labels", len(trained)), ("method", len(METHODS))):
        header = page.locator("#accuracy thead th", has_text=header)
        for descending in (False, True):  # click: ascending, click again: descending
            header.click()
            keys = [sort_key(text) for text in header.evaluate(column) if text.strip()]
            assert keys == sorted(keys, reverse=descending) and len(keys) == expected

    page.screenshot(path=tmp_path / "report.png", full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 0
    assert problems == []


def test_an_na_cell_shows_the_gist_of_its_reason():
    error = (
        "no advantage measurable: the score ranges do not overlap (a: 0.4-0.5; b: 0.6-0.8); "
        "b dominates: it is better everywhere (its lowest score is at or above a's best)"
    )
    assert short_reason(error) == "the score ranges do not overlap; b dominates"
    meet = "no advantage measurable: the score ranges only meet at 0.64 (a: 0.64; b: 0.3-0.64)"
    assert short_reason(meet) == "the score ranges only meet at 0.64"


def test_decision_map_and_le_scao_rush_in_a_headless_browser(computed_out, browser_page):
    """Both figures draw; the controls move the marker and show the nearest cell's answer."""
    out, _, written = computed_out
    page, problems = browser_page, []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.goto((out / "report.html").as_uri())
    page.wait_for_load_state("load")
    for div in ("#decision-map", "#le-scao-rush"):
        page.locator(f"{div} svg.main-svg").first.wait_for()
        assert page.locator(f"{div} g.trace").count() > 0
    assert page.locator("#decision-map g.hm").count() == 1  # the heatmap's cells are drawn
    grid = written["recommendation"]["decision_map"]
    answer = page.locator("#decision-answer")
    use = written["recommendation"]["recommended"]["method"]
    assert f"use {use}" in answer.inner_text()
    page.fill("#decision-labels", str(grid["labels"][0]))
    page.fill("#decision-volume", "10")
    cell = grid["cells"][0][0]
    text = answer.inner_text()
    assert f"{grid['labels'][0]:,} labels, 10 queries a day" in text
    assert (f"use {cell['use']['method']}" in text) if cell else "no method" in text
    marker = page.evaluate(
        "() => { const p = document.getElementById('decision-map'); "
        "const t = p.data[p.data.length - 1]; return [t.x[0], t.y[0]]; }"
    )
    assert marker == pytest.approx([math.log10(grid["labels"][0]), 1.0])
    page.fill("#decision-volume", "0")
    assert "above 0" in answer.inner_text()
    assert problems == []


def shown_rows(page) -> list[int]:
    """The test rows the Traces section shows, in its order."""
    rows = page.locator("#trace-rows > details.trace-row")
    return [int(row) for row in rows.evaluate_all("rows => rows.map(r => r.dataset.row)")]


def test_traces_in_a_headless_browser(sweep_out, browser_page):
    """Every run's answer per test row: all rows at first, the filter keeps the first run's
    wrong rows, and a second run beside it brings the rows where the two differ first."""
    out, rows = sweep_out
    page, problems = browser_page, []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.goto((out / "report.html").as_uri())
    page.wait_for_load_state("load")
    data = page.evaluate("() => JSON.parse(document.getElementById('trace-data').textContent)")
    assert len(data["runs"]) == len(rows)
    first = data["runs"][0]
    assert shown_rows(page) == list(range(len(first["rows"])))
    page.select_option("#trace-filter", "wrong")
    wrong = [i for i, row in enumerate(first["rows"]) if row["right"] is False]
    assert 0 < len(wrong) < len(first["rows"]) and shown_rows(page) == wrong
    page.select_option("#trace-filter", "all")

    answers = [[row["answer"] for row in run["rows"]] for run in data["runs"]]
    other = next(i for i, run in enumerate(answers) if run != answers[0])
    page.select_option("#trace-other", str(other))
    differ = [i for i, (a, b) in enumerate(zip(answers[0], answers[other])) if a != b]
    order = shown_rows(page)
    assert set(order[: len(differ)]) == set(differ)  # the disagreements first
    assert order[len(differ) :] == sorted(set(order) - set(differ))
    assert f"{len(differ)} of these rows differ" in page.inner_text("#trace-note")
    top = page.locator("#trace-rows > details.trace-row").first
    top.locator("summary").first.click()
    titles = top.locator(".trace-run h4").all_inner_texts()
    assert titles == [data["runs"][0]["title"], data["runs"][other]["title"]]
    assert problems == []
