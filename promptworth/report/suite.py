"""The cross-task verdict of `promptworth suite`, in the layout of Le Scao & Rush (2021, Table 1):
one row per task with the advantage of the prompt method over the head and over zero-shot, in
data points, and the best method at each training size; plus one figure with a panel of learning
curves per task.

Each task also gets its own report (the `run` report) in `<out>/tasks/<task>/`; the suite's
report.md links them. `cross_task_rows`, `cross_task_lines` and `plot_cross_task` take the
store's rows (any number of tasks), so any report (markdown or HTML) can show the same table.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from promptworth.paths import inside
from promptworth.run.suite import ZERO_SHOT

BASELINE = "head"


@dataclass
class Cell:
    """One advantage: data points (± std over leave-one-seed-out) with the estimator's notes
    (e.g. "a lower bound"), or why there is none."""

    advantage: float | None = None
    std: float | None = None
    reason: str | None = None
    notes: list[str] = dataclasses.field(default_factory=list)

    def text(self) -> str:
        if self.advantage is None:
            return "n/a"
        return f"{self.advantage:.0f}" + (f" ± {self.std:.0f}" if self.std is not None else "")


@dataclass
class TaskRow:
    task: str
    over_baseline: Cell
    over_zero_shot: Cell
    best: dict[int, tuple[str, float]]  # size -> (method, mean score)


def by_task(rows: list[tuple[str, dict, dict]]) -> dict[str, list[tuple[str, dict, dict]]]:
    """The store's rows grouped by task name, tasks in first-seen order."""
    grouped: dict[str, list] = {}
    for row in rows:
        grouped.setdefault(row[1]["task"], []).append(row)
    return grouped


def advantage_cell(long, baseline: str, method: str, metric: str) -> Cell:
    """`method` over `baseline` with the paper's estimator, or why it cannot be computed."""
    from promptworth.analysis.advantage import estimate

    if method == baseline:
        return Cell(reason=f"the prompt method is {baseline} itself")
    missing = [name for name in (method, baseline) if name not in set(long["method"])]
    if missing:
        return Cell(reason=f"{', '.join(missing)} not run on this task")
    try:
        result = estimate(long, baseline, method, metric)
    except ValueError as error:  # AnalysisError: a single size, curves that never overlap, ...
        return Cell(reason=str(error))
    return Cell(result.advantage, result.std, notes=result.notes)


def best_by_size(frame, metric: str) -> dict[int, tuple[str, float]]:
    """At each training size, the method with the best mean `metric` over seeds; a method that
    uses no labels (zero-shot) competes at every size with its one score."""
    means = frame.groupby(["method", "n_train"])[metric].mean()
    flat = {m: s for (m, n), s in means.items() if n == 0}
    sizes = sorted({int(n) for n in frame["n_train"] if n > 0})
    best = {}
    for size in sizes:
        scores = {m: s for (m, n), s in means.items() if n == size} | flat
        method = max(sorted(scores), key=lambda m: scores[m])
        best[size] = (method, float(scores[method]))
    return best


def cross_task_rows(
    rows: list[tuple[str, dict, dict]],
    prompt_method: str,
    metric: str = "accuracy",
    baseline: str = BASELINE,
) -> list[TaskRow]:
    """One TaskRow per task of the store's `rows` (each task's runs on their own: method labels
    and curves never mix tasks)."""
    from promptworth.analysis.curves import long_from_wide
    from promptworth.analysis.results import results_frame

    table = []
    for task, task_rows in by_task(rows).items():
        frame = results_frame(task_rows)
        long = long_from_wide(frame.drop(columns=["task"]))
        table.append(
            TaskRow(
                task,
                advantage_cell(long, baseline, prompt_method, metric),
                advantage_cell(long, ZERO_SHOT, prompt_method, metric),
                best_by_size(frame, metric),
            )
        )
    return table


def cross_task_lines(
    table: list[TaskRow], prompt_method: str, metric: str, baseline: str = BASELINE
) -> list[str]:
    """The markdown table, then the reason for each n/a cell and the notes of each number
    (numbered as in the table)."""
    sizes = sorted({size for row in table for size in row.best})
    lines = [
        f"Advantage of **{prompt_method}** in labelled examples (positive: it needs fewer; "
        f"accumulated-max, the paper's estimator, on {metric}), and the best method by mean "
        f"{metric} at each size:",
        "",
        f"| task | {prompt_method} over {baseline} | {prompt_method} over {ZERO_SHOT} | "
        + " | ".join(f"best at {size}" for size in sizes)
        + " |",
        "|---|---|---|" + "---|" * len(sizes),
    ]
    reasons: list[str] = []
    for row in table:
        cells = []
        for cell, versus in ((row.over_baseline, baseline), (row.over_zero_shot, ZERO_SHOT)):
            said = cell.reason or "; ".join(cell.notes)
            if said:
                reasons.append(f"[{len(reasons) + 1}] {row.task}, over {versus}: {said}")
            cells.append(cell.text() + (f" [{len(reasons)}]" if said else ""))
        best = [f"{row.best[s][0]} ({row.best[s][1]:.3f})" if s in row.best else "—" for s in sizes]
        lines.append(f"| {row.task} | " + " | ".join(cells + best) + " |")
    return lines + ([""] + [f"- {reason}" for reason in reasons] if reasons else [])


def plot_cross_task(rows: list[tuple[str, dict, dict]], path: Path, metric: str) -> Path:
    """One panel of learning curves per task (report.plots.plot_panels), one shared legend."""
    from promptworth.analysis.results import results_frame
    from promptworth.report.plots import plot_panels

    grouped = by_task(rows)
    frames = {task: results_frame(task_rows) for task, task_rows in grouped.items()}
    title = f"{metric} vs labelled examples, per task (mean over seeds; band min–max)"
    return plot_panels(frames, path, metric, title)


def write_suite_outputs(
    rows: list[tuple[str, dict, dict]],
    out: Path,
    description: list[str],
    prompt_method: str,
    metric: str = "accuracy",
    compare: tuple[str, str] | None = None,
    failures: list[tuple[dict, str]] = (),
    data_lines: list[str] = (),
) -> dict:
    """Every task's own report in `<out>/tasks/<task>/`, then the suite's report.md, suite.json
    (the cross-task table) and suite.png (the per-task learning curves); returns the paths."""
    import json

    from promptworth.report.markdown import failure_lines
    from promptworth.report.outputs import write_outputs

    reports, verdicts = {}, {}
    for task, task_rows in by_task(rows).items():
        failed = [(config, error) for config, error in failures if config["task"] == task]
        own = inside(out, "tasks", task)
        own.mkdir(parents=True, exist_ok=True)
        written = write_outputs(
            task_rows, own, [f"- task `{task}` of the suite in `{out}`"], compare, failed, metric
        )
        reports[task] = written["files"]["report"]
        verdicts[task] = written["recommendation"]["verdict"]
    table = cross_task_rows(rows, prompt_method, metric)
    files = {
        "figure": plot_cross_task(rows, inside(out, "suite.png"), metric),
        "table": inside(out, "suite.json"),
    }
    document = {"metric": metric, "prompt_method": prompt_method, "baseline": BASELINE}
    document["tasks"] = [dataclasses.asdict(row) for row in table]
    files["table"].write_text(json.dumps(document, indent=2, default=str))
    lines = [
        "# promptworth suite report",
        "",
        *description,
        "",
        "## How many data points is the prompt worth, task by task?",
        "",
        *cross_task_lines(table, prompt_method, metric),
        "",
        f"![learning curves per task]({files['figure'].name})",
        "",
        *data_lines,
        "## Per-task reports",
        "",
        *[
            f"- {task}: [{path.relative_to(out)}]({path.relative_to(out)})"
            for task, path in reports.items()
        ],
        "",
        *failure_lines([(f"{c['task']}: {c['method']}", c, error) for c, error in failures]),
    ]
    files["report"] = inside(out, "report.md")
    files["report"].write_text("\n".join(lines) + "\n")
    return {"files": files, "table": table, "reports": reports, "verdicts": verdicts}
