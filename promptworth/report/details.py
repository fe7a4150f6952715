"""Report sections for what some methods measure beyond their own accuracy.

- prompt-search: the spread of test accuracy across candidate templates at each size, beside the
  spread across seeds (Le Scao & Rush found template choice within seed variance);
- distill: the student's accuracy beside its teacher's, and the inference speed-up;
- generation: the answers that named no label (`--predict generate`), with their counts;
- machines: which device, CPU and thread count computed the runs, since one config's predictions
  can differ between them by rounding.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from promptworth.analysis.results import method_labels


def detail_lines(rows: list[tuple[str, dict, dict]]) -> list[str]:
    """One section per variant of prompt-search and distill (variants are never pooled)."""
    labels = method_labels([config for _, config, _ in rows])
    lines = []
    for method, section in (("prompt-search", template_spread_lines), ("distill", distill_lines)):
        variants: dict[str, list[tuple[dict, dict]]] = {}
        for (_, config, result), label in zip(rows, labels):
            if config["method"] == method and result.get("extra"):
                variants.setdefault(label, []).append((config, result))
        for label, runs in variants.items():
            lines += section(label, runs)
    lines += unmapped_lines(rows, labels) + generation_lines(rows, labels)
    lines += trace_lines(rows, labels)
    return ["## Method details", "", *lines] if lines else []


UNMAPPED_ROWS = 10  # the most frequent unmapped answers a report lists per method


def unmapped_lines(rows: list[tuple[str, dict, dict]], labels: list[str]) -> list[str]:
    """Per method generating its labels, what its answers that named no label said: the answers
    each run kept (`unmapped_outputs`) summed over its runs, most frequent first."""
    counted: dict[str, Counter] = {}
    totals: dict[str, list[int]] = {}
    for (_, _, result), label in zip(rows, labels):
        kept = (result.get("extra") or {}).get("unmapped_outputs")
        if kept is None:
            continue
        counted.setdefault(label, Counter()).update({text: n for text, n in kept})
        total = totals.setdefault(label, [0, 0])
        total[0] += int(result.get("unmapped", 0))
        total[1] += int(result.get("n_test", 0))
    lines = []
    for label, counts in counted.items():
        unmapped, answers = totals[label]
        lines += [
            f"### {label}: generated answers that name no label",
            "",
            f"{unmapped} of {answers} answers ({unmapped / max(answers, 1):.1%}) over its runs "
            "named no label; they count as wrong. The most frequent:",
            "",
            "| answer | count |",
            "|---|---|",
            *(f"| {escaped(repr(text))} | {n} |" for text, n in counts.most_common(UNMAPPED_ROWS)),
            "",
        ]
    return lines


def generation_lines(rows: list[tuple[str, dict, dict]], labels: list[str]) -> list[str]:
    """Generation runs: every metric's mean per method and size, each beside the share of
    answers it could not read (empty, or no number where a number is asked for)."""
    cells: dict[tuple[str, int], dict[str, list[tuple[float, float]]]] = {}
    for (_, config, result), label in zip(rows, labels):
        for metric in result.get("row_scores") or {}:
            cell = cells.setdefault((label, config["n_train"]), {})
            cell.setdefault(metric, []).append((result[metric], result[f"{metric}_unparsed"]))
    if not cells:
        return []
    metrics = list(dict.fromkeys(m for cell in cells.values() for m in cell))
    lines = [
        "### Generation: every metric, and the answers it could not read",
        "",
        "Mean over seeds; in brackets the share of answers the metric could not read (empty, "
        "or without the number it looks for), which score 0.",
        "",
        f"| method | n_train | {' | '.join(metrics)} |",
        "|---|---|" + "---|" * len(metrics),
    ]
    for (label, n_train), cell in sorted(cells.items()):
        shown = [
            f"{np.mean([s for s, _ in cell[m]]):.3f} ({np.mean([u for _, u in cell[m]]):.0%})"
            if m in cell
            else "—"
            for m in metrics
        ]
        lines.append(f"| {label} | {n_train} | {' | '.join(shown)} |")
    return [*lines, ""]


TRACES_SHOWN = 2  # test rows of each method's traces report.md shows
PROMPT_TAIL = 300  # characters of a prompt's end shown (its start is the task's long input)
BROWSE_TRACES = (
    "report.html's Traces section shows every run's answer row by row with its steps, and two "
    "runs side by side."
)


def trace_lines(rows: list[tuple[str, dict, dict]], labels: list[str]) -> list[str]:
    """The first test rows of one run per generating method (its smallest size and seed): the
    run's notes (few-shot-cot with no chain kept), the end of the prompt, the output, the answer
    the text metrics read, any votes and a multi-step technique's steps."""
    first: dict[str, tuple] = {}
    for (_, config, result), label in zip(rows, labels):
        extra = result.get("extra") or {}
        kept = extra.get("traces")
        order = (config["n_train"], config["seed"])
        if kept and (label not in first or order < first[label][0]):
            first[label] = (order, kept, extra.get("notes") or [])
    lines = [BROWSE_TRACES, ""] if first else []
    for label, ((n_train, seed), kept, notes) in sorted(first.items()):
        lines += [f"### {label}: the first test rows (n_train={n_train}, seed {seed})", ""]
        lines += [*(f"Note: {note}" for note in notes), *([""] if notes else [])]
        for number, trace in enumerate(kept[:TRACES_SHOWN], 1):
            prompt = trace["prompt"]
            shown = prompt if len(prompt) <= PROMPT_TAIL else "…" + prompt[-PROMPT_TAIL:]
            lines += [f"Row {number}, prompt:", "", "```", shown, "```", ""]
            lines += [f"- output: {trace['output']!r}", f"- answer read: {trace['answer']!r}"]
            if trace.get("votes"):
                lines.append(f"- votes: {trace['votes']}")
            lines += step_lines(trace.get("steps", []))
            lines.append("")
    return lines


def step_lines(steps: list[dict]) -> list[str]:
    """A multi-step technique's steps (critique, revision, a chain's steps): each one's output
    and the tokens it read and wrote; nothing for a one-step prompt."""
    if len(steps) < 2:
        return []
    return [
        f"- step {s['step']} ({s['prompt_tokens']} tokens in, {s['output_tokens']} out): "
        f"{s['output']!r}"
        for s in steps
    ]


def escaped(cell: str) -> str:
    """A markdown table cell: its pipes escaped."""
    return cell.replace("|", "\\|")


# result field -> column title of the Machines sections (report.md, report.html)
MACHINE_FIELDS = {"device": "device", "cpu": "CPU", "threads": "threads"}
MIXED_MACHINES = (
    "These runs come from more than one machine set-up. The same config can predict a "
    "near-tied row differently on another CPU or thread count "
    "(docs/concepts/reproducibility.md#same-predictions), so small differences between runs of "
    "different set-ups may be the machines'."
)


def machine_counts(rows: list[tuple[str, dict, dict]]) -> list[tuple[tuple[str, ...], int]]:
    """(device, CPU, threads) of the runs and how many runs each set-up computed, sorted; both
    reports' Machines sections render these."""
    counts = Counter(
        tuple(str(result.get(field, "not recorded")) for field in MACHINE_FIELDS)
        for _, _, result in rows
    )
    return sorted(counts.items())


def machine_lines(machines: list[tuple[tuple[str, ...], int]]) -> list[str]:
    """report.md's Machines section from `machine_counts`, cautioning when there is more than
    one set-up."""
    columns = [*MACHINE_FIELDS.values(), "runs"]
    lines = ["## Machines", "", f"| {' | '.join(columns)} |", "|---" * len(columns) + "|"]
    lines += [f"| {' | '.join(machine)} | {n} |" for machine, n in machines]
    if len(machines) > 1:
        lines += ["", MIXED_MACHINES]
    return [*lines, ""]


def template_spread_lines(label: str, runs: list[tuple[dict, dict]]) -> list[str]:
    sizes: dict[int, list[tuple[float, list[float]]]] = {}
    for config, result in runs:
        accuracies = [
            c["test_accuracy"]
            for c in result["extra"].get("candidates", [])
            if c.get("test_accuracy") is not None
        ]
        if accuracies:
            sizes.setdefault(config["n_train"], []).append((result["accuracy"], accuracies))
    if not sizes:
        return []
    lines = [
        f"### {label}: does the template matter more than the seed?",
        "",
        "| n_train | chosen template (mean test acc.) | std across seeds | "
        "templates: min–max test acc. | std across templates |",
        "|---|---|---|---|---|",
    ]
    for n_train in sorted(sizes):
        chosen = np.array([a for a, _ in sizes[n_train]])
        per_template = [np.array(t) for _, t in sizes[n_train]]
        seed_std = f"{chosen.std(ddof=1):.3f}" if len(chosen) > 1 else "n/a (1 seed)"
        lines.append(
            f"| {n_train} | {chosen.mean():.3f} | {seed_std} | "
            f"{min(t.min() for t in per_template):.3f}–{max(t.max() for t in per_template):.3f} | "
            f"{np.mean([t.std(ddof=1) for t in per_template if len(t) > 1]):.3f} |"
        )
    return [*lines, ""]


def distill_lines(label: str, runs: list[tuple[dict, dict]]) -> list[str]:
    lines = [
        f"### {label}: student against teacher",
        "",
        "| n_train | seed | teacher | student acc. | teacher acc. | speed-up at inference |",
        "|---|---|---|---|---|---|",
    ]
    for config, result in sorted(runs, key=lambda cr: (cr[0]["n_train"], cr[0]["seed"])):
        extra = result["extra"]
        teacher_accuracy = extra.get("teacher_accuracy")
        lines.append(
            f"| {config['n_train']} | {config['seed']} | {extra.get('teacher', '?')} | "
            f"{result['accuracy']:.3f} | "
            f"{'n/a' if teacher_accuracy is None else f'{teacher_accuracy:.3f}'} | "
            f"{extra.get('speedup', 'n/a')}× |"
        )
    return [*lines, ""]
