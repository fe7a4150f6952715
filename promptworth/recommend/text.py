"""The recommendation as markdown lines: the top of report.md and `promptworth recommend`."""

from __future__ import annotations

from promptworth.analysis.metrics import metric_text
from promptworth.recommend.changes import MIN_VOLUME
from promptworth.recommend.recommendation import Recommendation


def money(value: float) -> str:
    return "< $0.01" if 0 < value < 0.005 else f"${value:,.2f}"


def number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,g}"


def recorded(value, show) -> str:
    """`show(value)`, or say the store did not record it (null in the JSON)."""
    return "not recorded" if value is None else show(value)


def size(mb: float) -> str:
    """Megabytes as people read them: 90.9 MB, 46.1 kB, 16 B."""
    for unit, scale in (("MB", 1.0), ("kB", 1e-3)):
        if mb >= scale:
            return f"{mb / scale:,.3g} {unit}"
    return f"{mb * 1e6:,.0f} B"


def candidate_line(role: str, c: dict, metric: str) -> str:
    """One method's answer: its `metric` with its interval, labels to target, costs, serving."""
    target = ""
    if c["labels_to_target"] is not None:
        how = "extrapolated" if c["labels_to_target_extrapolated"] else "interpolated"
        target = f"; reaches the target at about {c['labels_to_target']:,.0f} labels ({how})"
    elif c["labels_to_target_note"]:
        target = f"; labels to reach the target: {c['labels_to_target_note']}"
    p95 = f", p95 {c['latency_ms_p95']:,.1f} ms" if c["latency_ms_p95"] is not None else ""
    return (
        f"- **{role}: {c['method']}**: {metric_text(metric)} {c[metric]:.3f} "
        f"[{c['ci95'][0]:.3f}, {c['ci95'][1]:.3f}] at {c['labels_used']:,} labels "
        f"({c['read_how']}){target}. Total {money(c['total_cost'])} = labelling "
        f"{money(c['labelling_cost'])} + training {money(c['training_cost'])} "
        f"({c['training_seconds']:,.0f} s on {c['device']}) + serving "
        f"{money(c['serving_cost_total'])} ({money(c['serving_cost_per_million'])} per million "
        f"queries, {c['ms_per_example_batched']:,.1f} ms per example batched). Latency "
        f"{c['latency_ms_p50']:,.1f} ms{p95} ({c['latency_source']}); memory "
        f"{recorded(c['memory_mb'], lambda v: f'{v:,.0f} MB')} ({c['memory_source']}); "
        f"artifact {recorded(c['artifact_mb'], size)}."
    )


def scenario_line(inputs: dict, metric: str) -> str:
    """The metric the answer is ranked (and --target given) in, then the inputs."""
    shown = [f"metric {metric_text(metric)}"]
    for name in ("labels", "target", "queries_per_day", "horizon_days", "latency_ms", "memory_mb"):
        value = inputs[name]["value"]
        if value is not None:
            default = " (default)" if inputs[name]["defaulted"] else ""
            shown.append(f"{name.replace('_', ' ')} {number(value)}{default}")
    value = {name: inputs[name]["value"] for name in ("cpu_price", "gpu_price", "label_cost")}
    prices = (
        f"CPU ${value['cpu_price']:g}/h, GPU ${value['gpu_price']:g}/h, "
        f"${value['label_cost']:g} per label"
    )
    if inputs["llm_input_price"]["value"] is not None:
        prices += (
            f", hosted LLM ${inputs['llm_input_price']['value']:g}/M input and "
            f"${inputs['llm_output_price']['value']:g}/M output tokens"
        )
    return (
        f'Scenario: {"; ".join(shown)}; {prices} (defaults and sources: README "Recommendation").'
    )


def recommendation_lines(rec: Recommendation, figures: dict | None = None) -> list[str]:
    """Markdown: the scenario, the answer and runner-up, what would change it, what was ruled
    out and why, notes, and the figures when given ({"break_even": path, "pareto": path})."""
    doc = rec.to_json()
    metric = doc["metric"]
    lines = ["## Recommendation", "", scenario_line(doc["inputs"], metric), ""]
    if doc["recommended"] is None:
        lines += ["No method meets every constraint of this scenario (see ruled out).", ""]
    else:
        lines.append(candidate_line("Use", doc["recommended"], metric))
        lines += fit_lines(doc["fit"])
        if doc["runner_up"]:
            lines.append(candidate_line("Runner-up", doc["runner_up"], metric))
        lines.append("")
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
    note = f" ({fit['note']})" if fit["note"] else ""
    return [f"  To train it on your labels and keep the model{note}: `{fit['command']}`"]


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
    return [f"Break-even with {method} (queries a day at which the totals are equal): {pairs}.", ""]
