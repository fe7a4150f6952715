"""report.html's Traces section: every run's answer on each test row, whether it is right, and the
steps a generating method kept for it (extra["traces"]: prompt, output, the answer read, votes,
samples), browsable per row. The data is embedded in the page as JSON; report.js draws the rows
(<details> per row and per step), filters them by right or wrong and sets a second run beside
the first, the rows where the two disagree first.

The page keeps to a sane size: the first ROWS_SHOWN test rows of each run and the last
PROMPT_SHOWN characters of each prompt (the task's input is shown once, beside the row)."""

from __future__ import annotations

import json
from html import escape

from promptworth.analysis.results import method_labels

ROWS_SHOWN = 50  # test rows of each run the page embeds (the first ones)
PROMPT_SHOWN = 1_500  # characters of a prompt's end the page embeds
RIGHT_FROM = 0.5  # a generation row counts as right from this score by the headline metric
NO_LABEL_SHOWN = "(no label)"  # a classification answer naming no label


def trace_data(rows: list[tuple[str, dict, dict]], saved: dict[str, dict]) -> dict | None:
    """Every run's rows (`run_rows`) and the test inputs they share, by test digest; None when
    no run stored its predictions."""
    labels = method_labels([config for _, config, _ in rows])
    found = []
    for (key, config, result), label in zip(rows, labels):
        shown = run_rows(result, saved.get(result.get("test_digest") or "", {}))
        if shown:
            order = (label, config["n_train"], config["seed"])
            title = f"{label}, {config['n_train']:,} labels, seed {config['seed']}"
            digest = result.get("test_digest")
            found.append((order, {"key": key, "title": title, "digest": digest, **shown}))
    if not found:
        return None
    runs = [run for _, run in sorted(found, key=lambda pair: pair[0])]
    digests = {run["digest"] for run in runs}
    inputs = {
        digest: [input_text(text) for text in saved[digest]["texts"][:ROWS_SHOWN]]
        for digest in digests
        if digest in saved
    }
    return {"runs": runs, "inputs": inputs}


def run_rows(result: dict, saved: dict) -> dict | None:
    """A run's first ROWS_SHOWN rows: its answer, score, right or wrong and kept steps, and the
    metric the score is by; None without stored predictions."""
    predictions = result.get("predictions")
    if predictions is None:
        return None
    predictions = predictions[:ROWS_SHOWN]
    if "row_scores" in result:
        metric = result["headline_metric"]
        scores = [float(s) for s in result["row_scores"][metric][:ROWS_SHOWN]]
        answers = [str(text) for text in predictions]
        right = [score >= RIGHT_FROM for score in scores]
    else:
        metric, names = "accuracy", saved.get("label_names")
        truth = result.get("test_labels")
        answers = [label_name(label, names) for label in predictions]
        right = [p == t for p, t in zip(predictions, truth)] if truth else [None] * len(answers)
        scores = [None if r is None else float(r) for r in right]
    kept = (result.get("extra") or {}).get("traces") or []
    return {
        "metric": metric,
        "rows": [
            {
                "answer": answer,
                "score": score,
                "right": is_right,
                "steps": shortened(kept[row]) if row < len(kept) else None,
            }
            for row, (answer, score, is_right) in enumerate(zip(answers, scores, right))
        ],
    }


def label_name(label: int, names: list[str] | None) -> str:
    if label < 0:
        return NO_LABEL_SHOWN
    return names[label] if names else f"class {label}"


def input_text(text) -> str:
    """A test row's input; a several-input row's inputs one per line."""
    return text if isinstance(text, str) else "\n".join(map(str, text))


def shortened(trace: dict) -> dict:
    """A kept trace with its prompt cut to its last PROMPT_SHOWN characters."""
    prompt = trace.get("prompt")
    if isinstance(prompt, str) and len(prompt) > PROMPT_SHOWN:
        return {**trace, "prompt": "…" + prompt[-PROMPT_SHOWN:]}
    return trace


def script_json(data) -> str:
    """`data` as JSON safe inside a <script> element: no "<", ">" or "&" is left to end the
    element or open a comment, whatever text the data holds."""
    text = json.dumps(data, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def traces_section(data: dict | None) -> str:
    """The section's controls and explanation, and the data report.js draws the rows from."""
    if data is None:
        return ""
    options = "".join(
        f'<option value="{index}">{escape(run["title"])}</option>'
        for index, run in enumerate(data["runs"])
    )
    explanation = (
        f"Each run's answer on its first {ROWS_SHOWN} test rows (the page holds no more; the "
        f"store keeps every row), right or wrong, and the steps a generating method kept: the "
        f"prompt (its last {PROMPT_SHOWN:,} characters), the output, the answer the metrics "
        f"read, votes and samples. A generation row counts as right when its score by the "
        f"task's headline metric is at least {RIGHT_FROM}. Pick a second run to see it beside "
        "the first on the same test rows, the rows where they disagree first."
    )
    controls = (
        '<div id="trace-controls">'
        f'<label>run <select id="trace-run">{options}</select></label> '
        '<label>beside it <select id="trace-other"><option value="">none</option>'
        f"{options}</select></label> "
        '<label>rows <select id="trace-filter"><option value="all">all</option>'
        '<option value="wrong">wrong (first run)</option>'
        '<option value="right">right (first run)</option></select></label></div>'
    )
    return (
        f'<section id="traces"><h2>Traces</h2><p>{escape(explanation)}</p>{controls}'
        '<p id="trace-note"></p><div id="trace-rows"></div>'
        f'<script type="application/json" id="trace-data">{script_json(data)}</script>'
        "</section>"
    )
