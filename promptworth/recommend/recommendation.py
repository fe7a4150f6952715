"""`recommend(rows, inputs, metric) -> Recommendation`: the answer, costs, break-even, Pareto
view."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from promptworth.analysis.fit_command import fit_command
from promptworth.analysis.metrics import METRICS
from promptworth.analysis.results import DIRECT_PROMPT, method_labels
from promptworth.analysis.serve_dtypes import deploy_precision
from promptworth.analysis.summary import AccuracySummary
from promptworth.recommend.changes import hosted_llm_sentence, prompt_method, what_would_change
from promptworth.recommend.decide import Candidate, assess
from promptworth.recommend.inputs import Inputs
from promptworth.recommend.measured import ROWS_ONLY, Measured, measure, priced
from promptworth.recommend.outliers import MEASURE_AGAIN, serving_outliers
from promptworth.recommend.pareto import pareto
from promptworth.recommend.sensitivity import sensitivity
from promptworth.recommend.tco import break_even, hosted_llm_costs, method_costs
from promptworth.recommend.verdict import verdict

BREAK_EVEN_METHODS = 6  # the top of the ranking drawn in the break-even figure
HOSTED_LLM = "hosted LLM"


@dataclass
class Recommendation:
    inputs: Inputs
    metric: str  # what the candidates are read, ranked and targeted in: accuracy or macro_f1
    ranked: list[Candidate]
    ruled_out: list[dict]
    what_would_change: list[str]
    break_even: dict
    pareto: dict
    notes: list[str] = field(default_factory=list)
    verdict: dict = field(default_factory=dict)
    sensitivity: list[dict] = field(default_factory=list)
    # `promptworth fit` for the recommended method (analysis.fit_command), None without one
    fit: dict | None = None
    # the direct prompt's batched ms per example on a generation task (direct_prompt_ms)
    direct_ms: float | None = None
    # the precision to serve the recommended method at (analysis.serve_dtypes.deploy_precision),
    # None when its runs measured none (--serve-dtype)
    serve_precision: dict | None = None
    # each candidate's model: the backbone its runs read (analysis.results.run_backbone)
    models: dict[str, str] = field(default_factory=dict)

    @property
    def recommended(self) -> Candidate | None:
        return self.ranked[0] if self.ranked else None

    @property
    def runner_up(self) -> Candidate | None:
        return self.ranked[1] if len(self.ranked) > 1 else None

    def to_json(self) -> dict:
        def entry(c: Candidate | None):
            if c is None:
                return None
            ratio = c.serving.ms_per_example / self.direct_ms if self.direct_ms else None
            return {**c.to_json(self.inputs), "vs_zero_shot": ratio, "model": self.models[c.method]}

        return without_nan(
            {
                "metric": self.metric,
                "inputs": self.inputs.to_json(),
                "verdict": self.verdict,
                "recommended": entry(self.recommended),
                "fit": self.fit,
                "serve_precision": self.serve_precision,
                "runner_up": entry(self.runner_up),
                "candidates": [entry(c) for c in self.ranked],
                "ruled_out": self.ruled_out,
                "what_would_change": self.what_would_change,
                "sensitivity": self.sensitivity,
                "break_even": self.break_even,
                "pareto": self.pareto,
                "notes": self.notes,
            }
        )


def without_nan(value):
    """NaN (a cost a store did not record) as null: JSON has no NaN, browsers refuse it."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: without_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nan(v) for v in value]
    return value


def recommend(
    rows: list[tuple[str, dict, dict]],
    inputs: Inputs,
    metric: str = "accuracy",
    summary: AccuracySummary | None = None,
) -> Recommendation:
    """The recommendation for `inputs` from a store's finished runs, by `metric` (accuracy or
    macro_f1: docs/concepts/uncertainty.md#macro-f1). `summary`: analysis.summary.summarize's
    intervals of `metric` for these rows when the caller has them (the report), so the bootstrap
    runs once; else they are computed here."""
    measured, frame = measure(rows, metric, summary)
    outliers = serving_outliers(measured)
    ranked, ruled_out = assess(measured, inputs, outliers)
    best = ranked[0] if ranked else None
    changes = what_would_change(measured, inputs, best, ranked, outliers)
    llm = hosted_llm_sentence(measured, inputs, best) if best else None
    changes += [llm] if llm else []
    return Recommendation(
        inputs=inputs,
        metric=metric,
        ranked=ranked,
        ruled_out=ruled_out,
        what_would_change=changes,
        break_even=break_even(break_even_costs(measured, ranked, inputs), inputs),
        pareto=pareto(pareto_points(measured, inputs), metric),
        notes=notes(measured, ranked, inputs, outliers),
        verdict=verdict(ranked, ruled_out, inputs),
        sensitivity=sensitivity(measured, inputs, best and best.method, outliers),
        fit=fit_command(chosen_run(rows, best), best.read.labels) if best else None,
        direct_ms=direct_prompt_ms(measured, metric),
        serve_precision=deploy_precision(rows, best.method, best.serving.precision)
        if best
        else None,
        models=dict(zip(frame["method"], frame["backbone"])),
    )


def direct_prompt_ms(measured: dict[str, Measured], metric: str) -> float | None:
    """On a generation task, the direct prompt's (zero-shot's) batched time per example, which
    each technique's serving time is quoted against; None on a classification task or without
    zero-shot runs."""
    direct = measured.get(DIRECT_PROMPT)
    if METRICS[metric].task_type != "generation" or direct is None:
        return None
    ms = direct.serving.ms_per_example
    return ms if ms > 0 else None


def chosen_run(rows: list[tuple[str, dict, dict]], best: Candidate) -> dict:
    """The stored config the recommendation is read from: a run of the recommended method (its
    variant) at the size read, else the largest measured size below it (a reading between
    sizes), at its lowest seed."""
    labels = method_labels([config for _, config, _ in rows])
    configs = [config for (_, config, _), label in zip(rows, labels) if label == best.method]
    below = [c for c in configs if c["n_train"] <= best.read.labels] or configs
    return min(below, key=lambda c: (-c["n_train"], c["seed"]))


def break_even_costs(measured, ranked: list[Candidate], inputs: Inputs) -> dict:
    """The top of the ranking, and the hosted LLM when its price is given."""
    costs = {c.method: c.costs for c in ranked[:BREAK_EVEN_METHODS]}
    prompt = prompt_method(measured)
    if inputs.llm_input_price is not None and prompt is not None:
        costs[HOSTED_LLM] = hosted_llm_costs(measured[prompt].serving.prompt_tokens, inputs)
    return costs


def pareto_points(measured: dict[str, Measured], inputs: Inputs) -> list[dict]:
    """Every measured (method, size) whose serving can be priced: its mean score (keyed by the
    curve's metric), labels and serving cost per million."""
    points = []
    for m in measured.values():
        s = m.serving
        if not priced(s):
            continue
        per_million = method_costs(0, 0.0, s.ms_per_example, s.device, inputs).per_million
        for n, score in zip(m.curve.sizes, m.curve.means):
            points.append(
                {
                    "method": m.method,
                    m.curve.metric: float(score),
                    "serving_cost_per_million": per_million,
                    "labels": int(n),
                }
            )
    return points


def notes(
    measured: dict[str, Measured], ranked: list[Candidate], inputs: Inputs, outliers: dict
) -> list[str]:
    """What the reader must know to trust the numbers: outliers, derived values, capped
    readings, what a memory figure is."""
    out = [f"Outlier: {o.text()}." for o in outliers.values()]
    if any(m.serving.memory_source != "model" for m in measured.values()):
        out.append(
            "Memory figures not measured in the serving window are a process's peak RSS "
            "(interpreter, libraries and model), not the model's size; each Needs line gives "
            "the model's own parameters."
        )
    busy = sorted(f"{name} ({m.serving.busy})" for name, m in measured.items() if m.serving.busy)
    if busy:
        out.append(
            f"Serving of {', '.join(busy)} was measured while other work loaded the machine: "
            "those times are likely "
            f"slower than on a quiet machine, where {MEASURE_AGAIN} measures them again."
        )
    derived = sorted(name for name, m in measured.items() if not m.serving.latency_measured)
    if derived:
        out.append(
            f"Batch-1 latency was not measured for {len(derived)} of {len(measured)} methods "
            "(runs stored before promptworth measured it): their latency is derived from the "
            "batched time per example, a lower bound; a latency budget rules such a method out "
            f"only when even that bound exceeds it. {MEASURE_AGAIN} measures it."
        )
    bounded = sorted(m.method for m in measured.values() if not m.serving.memory_measured)
    if bounded:
        out.append(
            f"Serving memory of {', '.join(bounded)} is an upper bound: runs stored before "
            "promptworth measured each method with only its own models resident, or measured "
            "where the memory peak cannot be reset (each candidate's memory line says which "
            f"bound). {MEASURE_AGAIN} on Linux measures it."
        )
    if any(ROWS_ONLY in m.curve.interval for m in measured.values()):
        out.append(f"95 % intervals: {ROWS_ONLY}; the seed-to-seed variance is not in them.")
    unverified = [c.method for c in ranked if not c.serving.latency_measured]
    if inputs.latency_ms is not None and unverified:
        out.append(
            f"{', '.join(unverified)} pass --latency-ms {inputs.latency_ms:g} on a derived lower "
            f"bound only: measure their batch-1 latency ({MEASURE_AGAIN}) before relying on it."
        )
    capped = [c.method for c in ranked if c.read.how.startswith("capped")]
    if capped:
        out.append(
            f"--labels {inputs.labels:,} is above the largest measured size of {', '.join(capped)}:"
            " they are read (and costed) at their largest measured size; nothing is extrapolated."
        )
    return out
