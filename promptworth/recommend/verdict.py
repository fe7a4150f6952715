"""The answer in words a person can act on: the decision (prompt, or pay for labels), why this
method over the runner-up, whether it meets the target, what it needs besides labels, and
what in the measurements is not to be trusted. The same fields go to the JSON."""

from __future__ import annotations

import math
from dataclasses import replace

from promptworth.analysis.metrics import metric_text
from promptworth.recommend.decide import Candidate, tied
from promptworth.recommend.inputs import Inputs
from promptworth.recommend.money import money, over, size
from promptworth.recommend.outliers import FIGURES
from promptworth.recommend.tco import method_costs


def verdict(ranked: list[Candidate], ruled_out: list[dict], inputs: Inputs) -> dict:
    """{decision, method, headline, reason, target, requirements, cautions, lines}."""
    if not ranked:
        headline = (
            "No method meets every constraint of this scenario: see what is ruled out and what "
            "would change the answer."
        )
        return {
            "decision": "none",
            "method": None,
            "headline": headline,
            "lines": [f"**Verdict: {headline}**"],
        }
    pick = ranked[0]
    runner = ranked[1] if len(ranked) > 1 else None
    prompts = [c for c in ranked if c.read.labels == 0]
    found = {
        "decision": "prompt" if pick.read.labels == 0 else "labels",
        "method": pick.method,
        "headline": headline_text(pick, prompts, ranked, ruled_out, inputs),
        "reason": reason_text(pick, runner, inputs),
        "target": target_text(pick, inputs),
        "requirements": [needs_text(c) for c in (pick, runner) if c],
        "cautions": cautions(pick, runner, prompts[:1], inputs),
    }
    found["lines"] = [
        f"**Verdict: {found['headline']}**",
        *(found[k] for k in ("reason", "target") if found[k]),
        *(f"Needs: {r}" for r in found["requirements"]),
        *(f"Caution: {c}" for c in found["cautions"]),
    ]
    return found


def points(a: Candidate, b: Candidate) -> str:
    """a's score over b's in points of the metric: "+15.8 points of accuracy"."""
    return f"{100 * (a.read.score - b.read.score):+.1f} points of {metric_text(a.metric)}"


def headline_text(pick, prompts, ranked, ruled_out, inputs: Inputs) -> str:
    total = f"{money(pick.total(inputs))} {over(inputs)} in all"
    if pick.read.labels == 0:
        labelled = [c for c in ranked if c.read.labels > 0]
        better = [c for c in labelled if c.read.score > pick.read.score and not tied(c, pick)]
        if not better:
            tail = (
                "no labelled method beats it by more than the noise"
                if labelled
                else "no labelled method is left in this scenario"
            )
            return f"prompt with {pick.method} ({pick.score_text()}, no labels): {tail}; {total}."
        best = max(better, key=lambda c: c.read.score)
        return (
            f"prompt with {pick.method} ({pick.score_text()}, no labels); {best.method} is "
            f"{points(best, pick)} better beyond the noise, but {pick.method} meets the target "
            f"and costs {money(best.total(inputs) - pick.total(inputs))} less {over(inputs)}; "
            f"{total}."
        )
    labels = (
        f"{money(pick.costs.labelling)} of labels ({pick.read.labels:,} at "
        f"{money(inputs.label_cost)} each)"
    )
    if not prompts:
        return (
            f"use labels: {pick.method} ({pick.score_text()}) for {labels}; "
            f"{no_prompt_text(ruled_out)}; {total}."
        )
    prompt = prompts[0]
    noise = "within the noise" if tied(pick, prompt) else "beyond the noise"
    return (
        f"use labels: {pick.method}, {points(pick, prompt)} over the best prompt "
        f"({prompt.method}, {prompt.read.score:.3f}; {noise}) for {labels}; {total}."
    )


def no_prompt_text(ruled_out: list[dict]) -> str:
    return (
        "no method without labels meets this scenario"
        if ruled_out
        else ("no method without labels was measured")
    )


def reason_text(pick: Candidate, runner: Candidate | None, inputs: Inputs) -> str | None:
    """Why `pick` over `runner`, in one sentence: accuracy (tied or not) and the saving against
    the materiality threshold."""
    if runner is None:
        return f"{pick.method} is the only method this scenario leaves."
    saving = runner.total(inputs) - pick.total(inputs)  # > 0: pick is cheaper
    more_accurate = max(pick, runner, key=lambda c: c.read.score)
    threshold = inputs.materiality(more_accurate.total(inputs))
    scores = f"{pick.read.score:.3f} vs {runner.read.score:.3f}"
    period = over(inputs)
    why = f"Why {pick.method} over {runner.method}: "
    if not tied(pick, runner):
        if pick.read.score > runner.read.score:
            cost = (
                f"and cheaper by {money(saving)} {period}"
                if saving > 0
                else f"for {money(-saving)} more {period}"
            )
            return f"{why}more accurate beyond the noise ({scores}), {cost}."
        return (
            f"{runner.method} is more accurate beyond the noise ({scores}), but both meet the "
            f"target and {pick.method} saves {money(saving)} {period} (threshold "
            f"{money(threshold)})."
        )
    tie = f"{why}tied within the noise ({scores})"
    counts = f"the {money(threshold)} that counts (--min-saving)"
    if abs(saving) < 0.005:
        return (
            f"{tie} and they cost the same, {money(pick.total(inputs))} {period} each, so the "
            f"more accurate {more_accurate.method} is chosen."
        )
    if abs(saving) < threshold:
        cheaper, by = (pick, saving) if saving > 0 else (runner, -saving)
        return (
            f"{tie}; they cost the same within {counts}: {cheaper.method} saves "
            f"{money(by)} {period}, so the more accurate {more_accurate.method} is chosen."
        )
    if more_accurate is pick and saving > 0:
        return f"{tie}, and {pick.method} is also cheaper, by {money(saving)} {period}."
    return f"{tie}, and {pick.method} is cheaper by {money(saving)} {period}, above {counts}."


def target_text(pick: Candidate, inputs: Inputs) -> str | None:
    if inputs.target is None:
        return None
    t, read, reach = inputs.target, pick.read, pick.target
    text = (
        f"Target {metric_text(pick.metric)} {t:g}: met, judged by the lower bound "
        f"({read.low:.3f} ≥ {t:g}); P({metric_text(pick.metric)} ≥ {t:g}) = "
        f"{read.chance_of(t):.2f}"
    )
    if reach is not None and reach.most is not None and read.labels:
        text += f"; its lower bound reaches it from about {math.ceil(reach.most):,} labels"
    return text + "."


def needs_text(c: Candidate) -> str:
    """What the method needs to be trained and served, read from its stored recipe and costs."""
    read, s, r = c.read, c.serving, c.requirements
    if read.labels == 0:
        items = ["no labels"]
    else:
        how = read.how
        if read.between:
            how = f"interpolated in log n between the recipe's runs at {read.between[0]:,} and "
            how += f"{read.between[1]:,}"
        items = [f"{read.labels:,} labels ({how})"]
    if r.unlabelled:
        items.append(f"{r.unlabelled:,} unlabelled texts of the task")
    if r.teacher:
        items.append(f"a teacher ({r.teacher})")
    items.append("a GPU" if not s.device.startswith("cpu") else "a CPU only")
    if not math.isnan(s.artifact_mb):
        items.append(f"a {size(s.artifact_mb)} artifact")
    memory = "memory not recorded"
    if not math.isnan(s.memory_mb):
        held = "what the model holds plus its activation peak"
        how = held if s.memory_source == "model" else "process peak RSS"
        memory = f"{s.memory_mb:,.0f} MB to serve ({how}"
        if not math.isnan(s.parameters):
            memory += (
                f"; the model itself: {s.parameters / 1e6:,.1f} M parameters, "
                f"{size(s.weights_mb)} in float32"
            )
        memory += ")"
    return f"{c.method}: {', '.join(items)}; {memory}."


def cautions(pick, runner, prompts, inputs: Inputs) -> list[str]:
    """Serving figures flagged as outliers among the methods the verdict names, each with what
    the flagged method would cost at its family's median time."""
    out, seen = [], set()
    for c in (pick, runner, *prompts):
        if c is None or c.outlier is None or c.method in seen:
            continue
        seen.add(c.method)
        if c.outlier.figure != FIGURES[0].name:  # a latency: the cost is not computed from it
            out.append(f"{c.outlier.text()}.")
            continue
        fair = method_costs(
            c.read.labels, c.read.train_seconds, c.outlier.family_ms, c.serving.device, inputs
        )
        at_family, measured = replace(c, costs=fair).total(inputs), c.total(inputs)
        if money(at_family) == money(measured):
            effect = f"its total, {money(measured)} {over(inputs)}, does not change"
        else:
            effect = f"it would cost {money(at_family)} {over(inputs)}, not {money(measured)}"
        out.append(f"{c.outlier.text()}. At the family's median time {effect}.")
    return out
