"""Where the recommended method errs and where the top two methods part ways, from the
predictions each run stored: per-class accuracy and the confusion matrix of the recommended
method (pooled over its seeds), then the test examples on which its vote and the runner-up's
differ, with the text (when the sweep saved the test rows in the store) and each one's answer."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from promptworth.analysis import uncertainty as unc

SHOWN_EXAMPLES = 10  # disagreements listed
TEXT_CHARACTERS = 160  # of each example's text


@dataclass(frozen=True)
class Voted:
    """One method at one size: its seeds' runs and, per test row, the most frequent answer."""

    method: str
    n_train: int
    runs: list[unc.ScoredRun]

    @cached_property
    def votes(self) -> np.ndarray:
        stacked = np.stack([run.predictions for run in self.runs])
        return np.array([Counter(column).most_common(1)[0][0] for column in stacked.T])

    def agreeing(self, row: int) -> int:
        return sum(int(run.predictions[row] == self.votes[row]) for run in self.runs)

    def title(self) -> str:
        return f"{self.method} at {self.n_train:,} labels"


def measured_at(groups: unc.Groups, method: str, labels: int) -> Voted | None:
    """`method` at the largest measured size within `labels` (its only size when untrained),
    when every run there stored its predictions and test labels."""
    sizes = sorted(n for m, n in groups if m == method)
    within = [n for n in sizes if n <= labels] or sizes[:1]
    if not within:
        return None
    runs = groups[(method, within[-1])]
    if any(run.predictions is None or run.labels is None for run in runs):
        return None
    return Voted(method, within[-1], runs)


def class_names(runs: list[unc.ScoredRun], saved: dict[str, dict]) -> list[str]:
    """The task's label names when the sweep saved them, else "class 0", "class 1", ..."""
    rows = saved.get(runs[0].test_digest or "")
    if rows:
        return list(rows["label_names"])
    count = max(
        run.n_labels or int(max(run.labels.max(), run.predictions.max())) + 1 for run in runs
    )
    return [f"class {i}" for i in range(count)]


def prediction_lines(
    groups: unc.Groups, recommendation: dict | None, saved: dict[str, dict]
) -> list[str]:
    """The section, for the recommended method and the runner-up read at the scenario's labels;
    empty without a recommendation or without stored predictions."""
    if not recommendation or not recommendation.get("recommended"):
        return []
    labels = recommendation["inputs"]["labels"]["value"]
    chosen = [
        measured_at(groups, choice["method"], labels)
        for choice in (recommendation["recommended"], recommendation.get("runner_up"))
        if choice
    ]
    if chosen[0] is None:
        return []
    best = chosen[0]
    names = class_names(best.runs, saved)
    lines = [
        f"## Where {best.method} errs",
        "",
        *class_lines(best, names),
        *confusion_lines(best, names),
    ]
    if len(chosen) > 1 and chosen[1] is not None:
        lines += disagreement_lines(best, chosen[1], names, saved)
    return lines


def class_lines(voted: Voted, names: list[str]) -> list[str]:
    """Accuracy on each class's test rows, pooled over the seeds."""
    labels = np.concatenate([run.labels for run in voted.runs])
    correct = np.concatenate([run.predictions == run.labels for run in voted.runs])
    lines = [
        f"Per-class accuracy of {voted.title()} (test rows of each class, pooled over "
        f"{len(voted.runs)} seed{'s' if len(voted.runs) > 1 else ''}):",
        "",
        "| class | test rows | accuracy |",
        "|---|---|---|",
    ]
    for index, name in enumerate(names):
        mine = labels == index
        rows = int(mine.sum()) // len(voted.runs)
        score = f"{correct[mine].mean():.3f}" if mine.any() else "—"
        lines.append(f"| {cell_text(name)} | {rows} | {score} |")
    return [*lines, ""]


def confusion_lines(voted: Voted, names: list[str]) -> list[str]:
    """Counts summed over the seeds: row = true class, column = predicted class."""
    counts = np.zeros((len(names), len(names)), dtype=int)
    for run in voted.runs:
        np.add.at(counts, (run.labels, run.predictions), 1)
    header = " | ".join(cell_text(n) for n in names)
    lines = [
        f"Confusion matrix of {voted.title()} (row: true class, column: predicted; counts "
        "summed over the seeds):",
        "",
        f"| true \\ predicted | {header} |",
        "|---|" + "---|" * len(names),
    ]
    lines += [
        f"| {cell_text(name)} | " + " | ".join(str(c) for c in row) + " |"
        for name, row in zip(names, counts)
    ]
    return [*lines, ""]


def disagreement_lines(
    first: Voted, second: Voted, names: list[str], saved: dict[str, dict]
) -> list[str]:
    """The test rows where the two methods' votes differ: how many, then the first few with
    the text and each answer (with how many of its seeds gave it)."""
    if first.runs[0].test_digest != second.runs[0].test_digest:
        return [f"{first.method} and {second.method} were scored on different test rows.", ""]
    truth = first.runs[0].labels
    a, b = first.votes, second.votes
    rows = np.flatnonzero(a != b)
    lines = [
        f"{first.title()} and {second.title()} (the runner-up) give different answers on "
        f"{len(rows)} of {len(truth)} test rows (each method's answer: the most frequent over its "
        f"seeds): {first.method} is right on {int(np.sum(a[rows] == truth[rows]))} of them, "
        f"{second.method} on {int(np.sum(b[rows] == truth[rows]))}.",
        "",
    ]
    if not len(rows):
        return lines
    texts = saved.get(first.runs[0].test_digest or "", {}).get("texts")
    lines += [
        f"| row | text | true | {first.method} | {second.method} |",
        "|---|---|---|---|---|",
    ]
    for row in rows[:SHOWN_EXAMPLES]:
        text = cell_text(shortened(texts[row])) if texts else "—"
        lines.append(
            f"| {row} | {text} | {cell_text(names[truth[row]])} | "
            f"{answer(first, row, names)} | {answer(second, row, names)} |"
        )
    if not texts:
        lines += [
            "",
            "The test texts were not saved in this store (a sweep run by this version of "
            "promptworth saves them): the rows are numbered in the sweep's test subset.",
        ]
    return [*lines, ""]


def answer(voted: Voted, row: int, names: list[str]) -> str:
    mark = "✓" if voted.votes[row] == voted.runs[0].labels[row] else "✗"
    seeds = f" ({voted.agreeing(row)}/{len(voted.runs)} seeds)" if len(voted.runs) > 1 else ""
    return f"{mark} {cell_text(names[voted.votes[row]])}{seeds}"


def shortened(text) -> str:
    """One line of at most TEXT_CHARACTERS; a several-input row's inputs joined by " / "."""
    parts = [text] if isinstance(text, str) else list(text)
    flat = " / ".join(" ".join(part.split()) for part in parts)
    return flat if len(flat) <= TEXT_CHARACTERS else flat[: TEXT_CHARACTERS - 1] + "…"


def cell_text(text: str) -> str:
    """Safe inside a markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")
