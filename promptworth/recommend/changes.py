"""What would change the answer: each input moved to the values where it can matter (measured
sizes, crossing volumes, measured latencies and memories, measured scores), the first value
that changes the recommended method reported as a sentence."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from promptworth.recommend.curve import at_budget, to_target
from promptworth.recommend.decide import Candidate, top
from promptworth.recommend.inputs import Inputs, flag_name
from promptworth.recommend.money import money, over
from promptworth.recommend.tco import crossing, crossings, hosted_llm_costs

STEP = 1.01  # just past a crossing or a measured value
MIN_VOLUME = 10.0  # crossings below ten queries a day are no answer to "what would change"


def first_change(
    measured, inputs: Inputs, field: str, values: Iterable, current: str, outliers=None
):
    """(value, new top candidate) at the first of `values` where the recommendation differs."""
    for value in values:
        found = top(measured, inputs.changed(**{field: value}), outliers)
        if found is not None and found.method != current:
            return value, found
    return None


def what_would_change(
    measured, inputs: Inputs, best: Candidate | None, ranked, outliers=None
) -> list[str]:
    """Sentences for labels, volume, latency, memory and target, in that order; with no
    recommendation (`best` None), what would give one."""
    sentences = []
    for field, values, say in scans(measured, inputs, best, ranked):
        change = first_change(measured, inputs, field, values, best and best.method, outliers)
        if change is not None:
            value, new = change
            sentences.append(say(value, new))
    fewer = fewer_labels_sentence(best, inputs) if best else None
    return [fewer, *sentences] if fewer else sentences


def scans(measured, inputs: Inputs, best, ranked) -> list[tuple[str, list, Callable]]:
    """(input, values to try in order, sentence) for every input that can change the answer;
    volumes, and tightened budgets and targets, only when there is an answer to change."""
    sizes = sorted(
        {int(n) for m in measured.values() for n in m.curve.sizes if n > 0}
        | target_sizes(measured, inputs)
    )
    volumes = [
        v
        for c in ranked
        if c is not best
        for v in crossings(best.costs, c.costs, inputs.horizon_days)
        if v >= MIN_VOLUME
    ]  # empty without an answer: ranked is then empty
    out = [
        (
            "labels",
            [n for n in sizes if n > inputs.labels],
            lambda v, c: (
                f"With {v:,} labels instead of {inputs.labels:,}, {c.method} becomes "
                f"the recommendation ({c.score_text()}, total "
                f"{money(c.total(inputs.changed(labels=v)))} {over(inputs)})."
            ),
        ),
        (
            "labels",
            [n for n in reversed(sizes) if n < inputs.labels],
            lambda v, c: (
                f"With only {v:,} labels, {c.method} becomes the recommendation ({c.score_text()})."
            ),
        ),
        (
            "queries_per_day",
            sorted(v * STEP for v in volumes if v > inputs.queries_per_day),
            lambda v, c: volume_sentence(v / STEP, "Above", inputs, best, c),
        ),
        (
            "queries_per_day",
            sorted((v / STEP for v in volumes if v < inputs.queries_per_day), reverse=True),
            lambda v, c: volume_sentence(v * STEP, "Below", inputs, best, c),
        ),
    ]
    out += budget_scans(measured, inputs, best)
    if inputs.target is not None:  # lowered to each method's lower bound at the budget
        reads = (at_budget(m.curve, inputs.labels) for m in measured.values())
        below = {math.floor(r.low * 1000) / 1000 for r in reads if r is not None}
        lower = sorted((a for a in below if a < inputs.target), reverse=True)
        out.append(
            (
                "target",
                lower,
                lambda v, c: (
                    f"With a target of {v:.3f} instead of {inputs.target:g}, "
                    f"{c.method} becomes the recommendation."
                ),
            )
        )
    if best is None:
        return out
    out.append(
        (
            "target",
            [min(1.0, math.floor(best.read.low * 1000 + 1) / 1000)],
            lambda v, c: (
                f"A target above {best.read.low:.3f} ({best.method}'s lower bound) rules "
                f"{best.method} out: {c.method} becomes the recommendation ({c.score_text()})."
            ),
        )
    )
    return out


def target_sizes(measured, inputs: Inputs) -> set[int]:
    """The labels at which each method's lower bound reaches the target between its measured
    sizes (the same line the budget is read on), so a proposed budget is the smallest that
    meets it; past the largest size the budget is not extrapolated, so neither is this."""
    if inputs.target is None:
        return set()
    reached = (
        (to_target(m.curve, inputs.target).most, m.curve.sizes[-1]) for m in measured.values()
    )
    return {math.ceil(n) for n, largest in reached if n and n <= largest}


def fewer_labels_sentence(best: Candidate, inputs: Inputs) -> str | None:
    """With a target the budget's labels are all paid for; say when far fewer would do: where
    the lower bound, which the target is judged by, reaches it."""
    target = best.target
    if target is None or target.most is None or target.most > best.read.labels:
        return None
    needed = max(1, math.ceil(target.most))
    if needed >= best.read.labels:
        return None
    return (
        f"{best.method}'s lower bound reaches the target at about {needed:,} labels "
        f"(interpolated): labelling only those would cost {money(needed * inputs.label_cost)} "
        f"instead of {money(best.costs.labelling)} (a smaller budget is another scenario: "
        f"--labels {needed})."
    )


def volume_sentence(volume: float, side: str, inputs: Inputs, best: Candidate, new) -> str:
    moved = inputs.changed(queries_per_day=volume)
    if new.read.score > best.read.score and new.total(moved) > best.total(moved):
        why = (
            f"{best.method}'s saving then falls below the threshold that counts (--min-saving), "
            f"so the more accurate {new.method} is chosen"
        )
    elif new.costs.per_query < best.costs.per_query:
        why = (
            "its lower serving cost pays back its labelling and training over "
            f"{inputs.horizon_days:g} days"
        )
    else:
        why = "its lower labelling and training cost outweighs its higher serving cost"
    return (
        f"{side} {volume:,.0f} queries a day (instead of {inputs.queries_per_day:,.0f}), "
        f"{new.method} becomes the recommendation: {why}."
    )


def budget_scans(measured, inputs: Inputs, best) -> list[tuple[str, list, Callable]]:
    """Latency and memory budgets: loosened to each measured value above the budget, or
    tightened to just below the recommended method's value."""
    out = []
    for field, unit, value_of in (
        ("latency_ms", "ms", lambda s: s.latency_ms_p95 or s.latency_ms_p50),
        ("memory_mb", "MB", lambda s: s.memory_mb),
    ):
        budget = getattr(inputs, field)
        flag = flag_name(field)
        if budget is not None:
            servings = (s for m in measured.values() for s in (m.serving, *m.precisions.values()))
            measured_values = map(value_of, servings)
            looser = sorted({math.ceil(v) for v in measured_values if not math.isnan(v)})
            out.append(
                (
                    field,
                    [v for v in looser if v > budget],
                    lambda v, c, f=flag, u=unit, b=budget: (
                        f"With {f} {v:,} {u} instead of "
                        f"{b:g}, {c.method} becomes the recommendation."
                    ),
                )
            )
        if best is None:
            continue
        mine = value_of(best.serving)
        tighter = math.floor(mine * 0.99)
        if tighter > 0 and (budget is None or tighter < budget):
            out.append(
                (
                    field,
                    [tighter],
                    lambda v, c, f=flag, u=unit, m=mine: (
                        f"With {f} below {m:,.1f} {u} "
                        f"({best.method}'s), {c.method} becomes the recommendation."
                    ),
                )
            )
    return out


def hosted_llm_sentence(measured, inputs: Inputs, best: Candidate) -> str | None:
    """How the hosted LLM's per-query cost compares, when its price is given."""
    prompt = prompt_method(measured)
    if inputs.llm_input_price is None or prompt is None:
        return None
    llm = hosted_llm_costs(measured[prompt].serving.prompt_tokens, inputs)
    volume = crossing(best.costs, llm, inputs.horizon_days)
    q, days = inputs.queries_per_day, inputs.horizon_days
    cheaper = llm.total(q, days) < best.total(inputs)
    text = (
        f"A hosted LLM reading {prompt}'s prompt ({measured[prompt].serving.prompt_tokens:.0f} "
        f"tokens) costs {money(llm.per_million)} per million queries against "
        f"{money(best.costs.per_million_at(q, days))} for {best.method} at "
        f"{q:,.0f} queries a day ({money(llm.total(q, days))} against "
        f"{money(best.total(inputs))} {over(inputs)}): it is {'cheaper' if cheaper else 'dearer'}"
    )
    if volume is not None and volume >= MIN_VOLUME:
        text += f" (the two cost the same at {volume:,.0f} queries a day)"
    return text + "; its accuracy was not measured here, so it is never recommended."


def prompt_method(measured) -> str | None:
    """The method whose prompt a hosted LLM would read: zero-shot when it was run."""
    untrained = [name for name, m in measured.items() if m.curve.untrained]
    return "zero-shot" if "zero-shot" in untrained else (untrained[0] if untrained else None)
