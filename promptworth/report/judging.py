"""report.md's section on judged scores (docs/concepts/judging.md#llm-as-judge): per method and
size, the judge, whether it judged its own model's answers, the judged score, its agreement with
exact match, the seconds judging took (apart from the method's cost) and the judge's accuracy on
Factual-Summary-Pairs where `promptworth judge check` measured it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from promptworth.analysis.metrics import JUDGE_REFERENCE_METRICS
from promptworth.analysis.results import method_labels
from promptworth.run.judging import check_key, read_checks


def judge_lines(rows: list[tuple[str, dict, dict]], out: Path) -> list[str]:
    labels = method_labels([config for _, config, _ in rows])
    cells: dict[tuple[str, int], list[tuple[dict, dict]]] = {}
    for (_, config, result), label in zip(rows, labels):
        if config.get("judge") and "judge" in result:
            cells.setdefault((label, config["n_train"]), []).append((config, result))
    if not cells:
        return []
    checks = read_checks(out)
    lines = [
        "## The judge",
        "",
        "Judged score: the share of answers the judge called correct given the reference "
        "(yes/no by rank classification), mean over seeds. Kappa: Cohen's kappa of its verdicts "
        "with exact match on the same rows, mean over seeds. Check: its accuracy on "
        "Factual-Summary-Pairs with the exact 95 % interval (`promptworth judge check`). "
        "A self-judge judges its own model's answers and may favour them.",
        "",
        "| method | n_train | judge | judged | kappa vs exact match | judging s | check |",
        "|---|---|---|---|---|---|---|",
    ]
    for (label, n_train), runs in sorted(cells.items()):
        config = runs[0][0]
        judge = config["judge"]
        name = f"`{judge['model']}`" + (
            " (self-judge)" if judge["model"] == config["model"] else ""
        )
        check = checks.get(check_key(judge["revision"], config["dtype"]))
        shown = check["pointwise"]["text"] if check else f"not run at {config['dtype']}"
        lines.append(
            f"| {label} | {n_train} | {name} | {np.mean([r['judge'] for _, r in runs]):.3f} | "
            f"{kappa_text([r for _, r in runs])} | "
            f"{sum(r['judge_seconds'] for _, r in runs):.1f} | {shown} |"
        )
    return [*lines, ""]


def kappa_text(results: list[dict]) -> str:
    """The mean kappa with the first 0/1 metric the runs have; "—" where it is undefined."""
    for key in JUDGE_REFERENCE_METRICS:
        values = [r[f"judge_kappa_{key}"] for r in results if f"judge_kappa_{key}" in r]
        if values:
            defined = [v for v in values if v is not None]
            return f"{np.mean(defined):.2f} ({key})" if defined else f"— ({key})"
    return "—"
