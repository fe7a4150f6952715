"""The recommendation as markdown lines: the top of report.md and `promptworth recommend`."""

from __future__ import annotations

from promptworth.analysis.metrics import metric_text
from promptworth.recommend.changes import MIN_VOLUME
from promptworth.recommend.inputs import MIN_SAVING_FLOOR, MIN_SAVING_SHARE
from promptworth.recommend.money import money, period, size
from promptworth.recommend.recommendation import Recommendation


def number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,g}"


def recorded(value, show) -> str:
    """`show(value)`, or say the store did not record it (null in the JSON)."""
    return "not recorded" if value is None else show(value)


def serving_text(c: dict, days: float) -> str:
    """Serving's total with how it is billed, and its price per million queries."""
    busy = f"{c['ms_per_example_batched']:,.1f} ms per example batched"
    if c.get("vs_zero_shot") is not None:  # a generation technique: its price per query
        busy += f", {c['vs_zero_shot']:.1f}× zero-shot's"
    full = f"{money(c['compute_cost_per_million'])} per million queries at full use"
    if c["serving"] == "per-second":
        return (
            f"serving {money(c['serving_cost_total'])} {period(days)} (busy seconds only, billed "
            f"per second: {full}; {busy})"
        )
    instances = c["instances"]
    return (
        f"serving {money(c['serving_cost_total'])} {period(days)} ({instances:,} always-on "
        f"instance{'s' if instances > 1 else ''} at ${c['price_per_hour']:g} an hour; "
        f"{money(c['serving_cost_per_million'])} per million queries at this volume, {full}; "
        f"{busy})"
    )


def candidate_line(role: str, c: dict, metric: str, days: float = 365) -> str:
    """One method's answer: its `metric` with its interval, labels to target, costs, serving."""
    target = ""
    if c["labels_to_target"] is not None:
        how = "extrapolated" if c["labels_to_target_extrapolated"] else "interpolated"
        target = (
            f"; its mean reaches the target at about {c['labels_to_target']:,.0f} labels ({how})"
        )
    elif c["labels_to_target_note"]:
        target = f"; labels to reach the target: {c['labels_to_target_note']}"
    p95 = f", p95 {c['latency_ms_p95']:,.1f} ms" if c["latency_ms_p95"] is not None else ""
    outlier = " (flagged: an outlier, see Caution)" if c["serving_outlier"] else ""
    precision = ""
    if c.get("serving_precision"):
        precision = (
            f"Served at {c['serving_precision']} ({c['serving_precision_change']:+.3f} against "
            "the precision it ran at, within the noise). "
        )
    return (
        f"- **{role}: {c['method']}**: {metric_text(metric)} {score_text(c, metric)} "
        f"at {c['labels_used']:,} labels "
        f"({c['read_how']}){target}. Total {money(c['total_cost'])} {period(days)} = labelling "
        f"{money(c['labelling_cost'])} + training {money(c['training_cost'])} "
        f"({c['training_seconds']:,.0f} s on {c['device']}) + {serving_text(c, days)}{outlier}. "
        f"{precision}Latency {c['latency_ms_p50']:,.1f} ms{p95} ({c['latency_source']}); memory "
        f"{recorded(c['memory_mb'], lambda v: f'{v:,.0f} MB')} ({c['memory_source']}); "
        f"artifact {recorded(c['artifact_mb'], size)}."
    )


def score_text(c: dict, metric: str) -> str:
    """A candidate's score, its 95 % interval, and the warning of a small test set."""
    warning = f" {c['test_rows_warning']}" if c["test_rows_warning"] else ""
    return f"{c[metric]:.3f} [{c['ci95'][0]:.3f}, {c['ci95'][1]:.3f}]{warning}"


def scenario_line(inputs: dict, metric: str) -> str:
    """The metric the answer is ranked (and --target given) in, then the inputs."""
    shown = [f"metric {metric_text(metric)}"]
    for name in ("labels", "target", "queries_per_day", "horizon_days", "latency_ms", "memory_mb"):
        value = inputs[name]["value"]
        if value is not None:
            default = " (default)" if inputs[name]["defaulted"] else ""
            shown.append(f"{name.replace('_', ' ')} {number(value)}{default}")
    value = {name: inputs[name]["value"] for name in inputs}
    if value["serving"] == "always-on":
        billing = f"serving always-on, instances at most {value['utilisation'] * 100:g} % busy"
    else:
        billing = "serving billed per busy second (a lower bound)"
    saving = value["min_saving"]
    threshold = (
        f"the larger of {MIN_SAVING_SHARE * 100:g} % of the more accurate method's total and "
        f"${MIN_SAVING_FLOOR:g}"
    )
    prices = (
        f"{billing}; CPU instance ${value['cpu_price']:g} an hour, GPU instance "
        f"${value['gpu_price']:g} an hour, ${value['label_cost']:g} per label; a saving counts "
        f"from {money(saving) if saving is not None else threshold}"
    )
    if value["llm_input_price"] is not None:
        prices += (
            f"; hosted LLM ${value['llm_input_price']:g} per million input and "
            f"${value['llm_output_price']:g} per million output tokens"
        )
    return (
        f"Scenario: {'; '.join(shown)}; {prices} (defaults and sources: "
        "`promptworth recommend --help`)."
    )


def sensitivity_lines(rows: list[dict], current: str | None) -> list[str]:
    """A table: each input halved and doubled, and the answer then; flips in bold."""
    if not rows:
        return []

    def cell(answer: dict) -> str:
        method = answer["method"] or "no answer"
        shown = f"{number(answer['value'])}: {method}"
        return f"**{shown}**" if answer["method"] != current else shown

    lines = [
        "What halving or doubling each input does to the answer (a change in bold):",
        "",
        "| input | value | ×0.5 | ×2 |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r['flag']} | {number(r['value'])} | {cell(r['x0.5'])} | {cell(r['x2'])} |"
        for r in rows
    ]
    return [*lines, ""]


def recommendation_lines(rec: Recommendation, figures: dict | None = None) -> list[str]:
    """Markdown: the verdict, the scenario, the answer and runner-up, the sensitivity table,
    what would change it, what was ruled out and why, notes, and the figures when given
    ({"break_even": path, "pareto": path})."""
    doc = rec.to_json()
    metric, days = doc["metric"], rec.inputs.horizon_days
    lines = ["## Recommendation", ""]
    lines += [*(f"{line}  " for line in doc["verdict"]["lines"]), ""]
    lines += [scenario_line(doc["inputs"], metric), ""]
    if doc["recommended"] is not None:
        lines.append(candidate_line("Use", doc["recommended"], metric, days))
        lines += fit_lines(doc["fit"]) + precision_lines(doc["serve_precision"])
        if doc["runner_up"]:
            lines.append(candidate_line("Runner-up", doc["runner_up"], metric, days))
        lines.append("")
    current = doc["recommended"] and doc["recommended"]["method"]
    lines += sensitivity_lines(doc["sensitivity"], current)
    if doc["what_would_change"]:
        lines += ["What would change the answer:", ""]
        lines += [f"- {s}" for s in doc["what_would_change"]] + [""]
    if doc["ruled_out"]:
        lines += ["Ruled out:", ""]
        lines += [f"- {r['method']}: {r['reason']}" for r in doc["ruled_out"]] + [""]
    if doc["recommended"] is not None:
        lines += crossing_lines(doc["break_even"]["crossings"], doc["recommended"]["method"])
    lines += [f"Note: {n}" for n in doc["notes"]]
    for name, path in (figures or {}).items():
        lines += ["", f"![{name.replace('_', ' ')}]({path.name})"]
    return [*lines, ""]


def fit_lines(fit: dict) -> list[str]:
    """The command that trains the recommended method on the user's labels."""
    if fit["command"] is None:
        return [f"  `promptworth fit` cannot train it and keep the model yet ({fit['note']})."]
    note = f" ({fit['note']})" if fit["note"] else ""
    return [f"  To train it on your labels and keep the model{note}: `{fit['command']}`"]


def precision_lines(chosen: dict | None) -> list[str]:
    """The serving precision to deploy the recommended method at, when its runs measured any."""
    if chosen is None:
        return []
    statuses = set(chosen["measured"].values())
    if len(statuses) == 1 and statuses.pop().startswith("not applicable: "):
        why = next(iter(chosen["measured"].values())).removeprefix("not applicable: ")
        return [f"  Serving precisions do not apply to it: {why}."]
    measured = "; ".join(f"{name}: {status}" for name, status in chosen["measured"].items())
    if chosen["precision"] is None and chosen["any_served"]:
        return [
            "  Serve it at the precision it ran at: no serving precision that served it without "
            f"a drop costs less within this scenario's limits ({measured})."
        ]
    if chosen["precision"] is None:
        return [f"  No serving precision served it in every run without a drop ({measured})."]
    return [
        f"  Serve it at **{chosen['precision']}**: {chosen['weights_mb']:,.2f} MB of weights, "
        f"{chosen['latency_ms_p50']:,.1f} ms at batch 1, {chosen['difference']:+.3f} against the "
        "precision it ran at; of the precisions that served it in every run without a "
        f"significant drop, the cheapest within this scenario's limits, then the smallest "
        f"({measured})."
    ]


def crossing_lines(crossings: list[dict], method: str) -> list[str]:
    """The volumes at which another method's total cost equals the recommended one's."""
    mine = [
        c for c in crossings if method in (c["a"], c["b"]) and c["queries_per_day"] >= MIN_VOLUME
    ]
    if not mine:
        return []
    pairs = "; ".join(
        f"{c['b'] if c['a'] == method else c['a']} at {c['queries_per_day']:,.0f}" for c in mine
    )
    return [f"Break-even with {method} (queries a day at which the totals cross): {pairs}.", ""]
