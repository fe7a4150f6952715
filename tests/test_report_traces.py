"""report.html's Traces section from hand-made runs of a generation task: what it embeds (capped
rows, shortened prompts, right from the headline score), that a trace's text can never become
markup, and the rows in a headless browser (steps collapsible, filter, two runs side by side);
then a tiny generation sweep's own report."""

from __future__ import annotations

import json
import re

from promptworth.report.html import page
from promptworth.report.traces import (
    PROMPT_SHOWN,
    RIGHT_FROM,
    ROWS_SHOWN,
    trace_data,
    traces_section,
)
from promptworth.testing import tiny_generation_task

ATTACK = '</script><img src=x onerror="window.broken=1"><!--<script>'
LONG = "a long chain of reasoning " * 10
INPUTS = [f"input {row} <b>bold</b>" for row in range(6)]


def generation_run(method: str, outputs: list[str], scores: list[float], kept: list[dict]):
    config = {"method": method, "method_params": {}, "n_train": 0, "seed": 0}
    result = {
        "headline_metric": "exact_match",
        "row_scores": {"exact_match": scores, "token_f1": scores},
        "predictions": outputs,
        "test_digest": "d1",
        "extra": {"traces": kept},
    }
    return (f"key-{method}", config, result)


def trace(prompt: str, output: str, **more) -> dict:
    return {"prompt": prompt, "output": output, "answer": output, **more}


RUNS = [
    generation_run(
        "zs-cot",
        ["bob", ATTACK, "carol", LONG, "eve", "fay"],
        [1.0, 0.0, 1.0, 0.0, 1.0, 0.0],
        [trace("p" * (PROMPT_SHOWN + 50) + "Q?", "bob"), trace("Q?", ATTACK)],
    ),
    generation_run(
        "self-consistency",
        ["bob", "x", "nobody", "dan", "eve", "fay"],
        [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
        [trace("Q?", "bob", votes={"bob": 2}, samples=["bob", "bob", "al"])],
    ),
]
SAVED = {"d1": {"texts": INPUTS, "label_names": []}}


def test_trace_data_keeps_each_runs_rows_with_their_steps():
    data = trace_data(RUNS, SAVED)
    runs = {run["key"]: run for run in data["runs"]}
    cot = runs["key-zs-cot"]
    assert cot["title"] == "zs-cot, 0 labels, seed 0" and cot["metric"] == "exact_match"
    scores = RUNS[0][2]["row_scores"]["exact_match"]
    assert [row["right"] for row in cot["rows"]] == [s >= RIGHT_FROM for s in scores]
    steps = cot["rows"][0]["steps"]
    assert steps["prompt"] == "…" + ("p" * (PROMPT_SHOWN + 50) + "Q?")[-PROMPT_SHOWN:]
    assert cot["rows"][2]["steps"] is None  # a row no trace was kept for
    assert runs["key-self-consistency"]["rows"][0]["steps"]["votes"] == {"bob": 2}
    assert data["inputs"] == {"d1": INPUTS}


def test_trace_data_caps_the_rows_and_reads_classification_runs():
    config = {"method": "head", "method_params": {}, "n_train": 8, "seed": 1}
    labels = [0, 1] * ROWS_SHOWN
    result = {"predictions": [0, -1] * ROWS_SHOWN, "test_labels": labels, "test_digest": "d2"}
    saved = {"d2": {"texts": [f"t{i}" for i in range(len(labels))], "label_names": ["no", "yes"]}}
    later = ("k16", {**config, "n_train": 16}, result)
    run, bigger = trace_data([later, ("k", config, result)], saved)["runs"]
    assert [run["title"], bigger["title"]] == ["head, 8 labels, seed 1", "head, 16 labels, seed 1"]
    assert len(run["rows"]) == ROWS_SHOWN and run["metric"] == "accuracy"
    assert [row["answer"] for row in run["rows"][:2]] == ["no", "(no label)"]
    assert [row["right"] for row in run["rows"][:2]] == [True, False]
    assert trace_data([("k", config, {"accuracy": 0.5})], {}) is None  # nothing stored


def test_no_trace_text_becomes_markup():
    data = trace_data(RUNS, SAVED)
    html = traces_section(data)
    opening = '<script type="application/json" id="trace-data">'
    script = re.search(f"{opening}(.*?)</script>", html, re.S)
    assert json.loads(script.group(1)) == data  # the whole data, ended only by its own tag
    assert html.count("</script>") == 1 and "<img" not in html and "<!--" not in html


def test_traces_in_a_headless_browser(browser_page, tmp_path):
    """Steps open row by row, texts stay text, the filter keeps the first run's wrong rows and
    a second run beside it brings the rows where the two disagree first."""
    path = tmp_path / "report.html"
    path.write_text(page(traces_section(trace_data(RUNS, SAVED))), encoding="utf-8")
    browser, problems = browser_page, []
    browser.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    browser.goto(path.as_uri())
    browser.wait_for_load_state("load")
    rows = browser.locator("#trace-rows > details.trace-row")
    titles = browser.locator("#trace-run option").all_inner_texts()
    assert titles == ["self-consistency, 0 labels, seed 0", "zs-cot, 0 labels, seed 0"]
    browser.select_option("#trace-run", "1")  # zs-cot
    assert rows.count() == 6

    attacked = rows.nth(1)
    assert ATTACK in attacked.locator("summary").first.inner_text()
    attacked.locator("summary").first.click()
    attacked.locator("details", has_text="input").locator("summary").first.click()
    assert "input 1 <b>bold</b>" in attacked.inner_text()
    output = attacked.locator(".trace-run details", has_text="output")
    output.locator("summary").first.click()
    assert output.locator("pre").inner_text() == ATTACK
    assert browser.evaluate("() => document.querySelectorAll('img, b').length") == 0
    assert browser.evaluate("() => window.broken") is None

    browser.select_option("#trace-filter", "wrong")
    assert [int(r) for r in rows.evaluate_all("rs => rs.map(r => r.dataset.row)")] == [1, 3, 5]
    browser.select_option("#trace-filter", "all")
    browser.select_option("#trace-other", "0")  # self-consistency beside zs-cot
    order = [int(r) for r in rows.evaluate_all("rs => rs.map(r => r.dataset.row)")]
    assert order == [2, 1, 3, 0, 4, 5]  # right against wrong, then different wrong answers
    assert "3 of these rows differ" in browser.inner_text("#trace-note")
    long = rows.nth(2)  # row 3: the summary holds the answer's start, its column all of it
    assert long.locator("summary").first.inner_text().startswith(f"row 3: ✗ {LONG[:40]}")
    assert LONG not in long.locator("summary").first.inner_text()
    long.locator("summary").first.click()
    assert long.locator(".trace-run p").first.inner_text() == f"✗ {LONG.strip()} (0.000)"
    first = rows.first
    first.locator("summary").first.click()
    assert first.locator(".trace-run").count() == 2
    assert first.inner_text().count("no steps kept for this row") == 2  # neither kept row 2
    assert problems == []


def test_a_generation_sweeps_report_holds_every_rows_steps(tmp_path, tiny_lm_dir, tiny_encoder_dir):
    """End to end: a tiny generation sweep (task file, zero-shot and zs-cot) and its report: each
    run's rows in the page with the steps the method kept for every one of them."""
    from promptworth.report.outputs import write_outputs
    from promptworth.run.sweep import Sweep, SweepSpec

    task = tiny_generation_task(n_test=6)
    for name, split in (("train", task.train), ("test", task.test)):
        lines = [
            json.dumps({"question": t, "answers": list(r)})
            for t, r in zip(*(split.texts, split.references))
        ]
        (tmp_path / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "task.yaml").write_text(
        "name: tiny_qa\ntype: generation\ntrain: train.jsonl\ntest: test.jsonl\n"
        "text_column: question\nreference_column: answers\nmetrics: [exact_match]\n"
        "max_new_tokens: 4\ntemplates: ['Text: {text}\\nTopic:']\n"
    )
    spec = SweepSpec(
        task=str(tmp_path / "task.yaml"),
        models=[str(tiny_lm_dir)],
        encoders=[str(tiny_encoder_dir)],
        methods=["zero-shot", "zs-cot"],
        method_params={"zs-cot": {"reasoning_tokens": 2}},
        sizes=[4],
        seeds=[0],
        dtype="float32",
        out=tmp_path / "out",
    )
    sweep = Sweep(spec, quiet=True)
    sweep.execute()
    write_outputs(sweep.store.load(), spec.out, ["- generation sweep"])
    html = (spec.out / "report.html").read_text()
    opening = '<script type="application/json" id="trace-data">'
    data = json.loads(re.search(f"{opening}(.*?)</script>", html, re.S).group(1))
    assert [run["title"] for run in data["runs"]] == [
        "zero-shot, 0 labels, seed 0",
        "zs-cot, 0 labels, seed 0",
    ]
    for run in data["runs"]:
        assert run["metric"] == "exact_match" and len(run["rows"]) == len(sweep.test)
        assert all(row["steps"]["output"] == row["answer"] for row in run["rows"])
