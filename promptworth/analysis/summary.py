"""The accuracy table with 95 % intervals, the marks of what is within noise, and the paired test
of the report's headline comparison (numbers from promptworth.analysis.uncertainty)."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from promptworth.analysis import uncertainty as unc
from promptworth.errors import PromptworthError

BEST, TIED, UNTESTED = "▲", "≈", "?"
FEW_ROWS_NOTE = (
    f"⚠ fewer than {unc.MIN_TEST_ROWS} test rows: a score on so few rows says little, whatever "
    "its interval; give a larger test set (--test-size, --full-test)."
)
RUN_INTERVAL_COLUMNS = [
    "accuracy_ci_low",
    "accuracy_ci_high",
    "macro_f1_ci_low",
    "macro_f1_ci_high",
]


@dataclass
class AccuracySummary:
    """Every (method, size)'s interval, the marks against each size's best, what is missing."""

    groups: unc.Groups
    intervals: dict[tuple[str, int], unc.AccuracyInterval | None]
    verdicts: dict[int, dict]
    notes: list[str]
    metric: str = "accuracy"

    def mark(self, method: str, n_train: int) -> str | None:
        """BEST, TIED, UNTESTED, "" (significantly below the best), None (size not compared)."""
        verdict = self.verdicts.get(n_train)
        if verdict is None:
            return None
        if method == verdict["best"]:
            return BEST
        other = verdict["others"][method]
        if isinstance(other, PromptworthError):
            return UNTESTED
        return TIED if other.within_noise else ""


def scored_groups(frame, rows: list[tuple[str, dict, dict]]) -> unc.Groups:
    """The store's runs grouped as the results table groups them (its `method` label, size),
    seeds in order."""
    stored = {key: (config, result) for key, config, result in rows}
    groups: unc.Groups = {}
    for run in frame.sort_values("seed").itertuples():
        config, result = stored[run.run_key]
        scored = unc.ScoredRun.from_store(run.run_key, run.method, config, result)
        groups.setdefault((run.method, int(run.n_train)), []).append(scored)
    return groups


def summarize(
    frame, rows: list[tuple[str, dict, dict]], metric: str = "accuracy"
) -> AccuracySummary:
    """Intervals of `metric` for every (method, size) and each size's within-noise marks,
    computing what the stored runs allow; runs stored without their test labels are named once
    in the notes."""
    groups = scored_groups(frame, rows)
    runs = [run for group in groups.values() for run in group]
    unlabelled = sum(run.correct is None for run in runs)
    intervals, notes = {}, []
    if unlabelled:
        notes.append(
            f"{unlabelled} of {len(runs)} runs were stored without the test labels they were "
            "scored on (stores written before promptworth kept them): their cells show mean ± "
            "std only, with no interval, mark or paired test; results.csv gives their per-run "
            "accuracy interval from accuracy and n_test alone (the row bootstrap of a proportion "
            "needs no more). A sweep into a fresh --out stores them."
        )
    for (method, n_train), group in groups.items():
        try:
            intervals[(method, n_train)] = unc.accuracy_interval(group, metric)
        except PromptworthError as error:
            intervals[(method, n_train)] = None
            if not isinstance(error, unc.MissingLabels):
                notes.append(f"No interval for {method} at n_train={n_train}: {error}")
    verdicts = unc.against_best(groups, metric) if unlabelled < len(runs) else {}
    notes += fewer_seeds_notes(groups, verdicts)
    for n_train, verdict in verdicts.items():
        for method, other in verdict["others"].items():
            if isinstance(other, PromptworthError) and not isinstance(other, unc.MissingLabels):
                notes.append(f"{UNTESTED} {method} at n_train={n_train}: {other}")
    return AccuracySummary(groups, intervals, verdicts, notes, metric)


def fewer_seeds_notes(groups: unc.Groups, verdicts: dict[int, dict]) -> list[str]:
    """A size's best mean over fewer seeds than other methods had there (a sweep still running):
    a mean over fewer seeds is more often the highest by chance, so the reader is told."""
    notes = []
    for n_train, verdict in verdicts.items():
        seeds = {m: len(runs) for (m, n), runs in groups.items() if n == n_train}
        best, most = verdict["best"], max(seeds.values())
        if seeds[best] < most:
            notes.append(
                f"At n_train={n_train} the best mean, {best}'s, is over {seeds[best]} of the "
                f"{most} seeds other methods ran there: a mean over fewer seeds is more often the "
                "highest by chance; its paired tests use only the seeds both methods ran."
            )
    return notes


def add_run_intervals(frame, rows: list[tuple[str, dict, dict]]):
    """results.csv's per-run interval columns, after macro_f1: the accuracy's exact binomial
    interval from accuracy and n_test (also for runs stored with the row bootstrap's, which has no
    width on an all-right run), and the macro-F1 interval the runner stored (a stored zero-width
    one read as [0, 1], as the runner now stores it)."""
    stored = {key: result for key, _, result in rows}
    values = {column: [] for column in RUN_INTERVAL_COLUMNS}
    for key in frame["run_key"]:
        result = stored[key]
        accuracy = result.get("accuracy_ci95")
        if result.get("n_test") and "accuracy" in result:
            accuracy = unc.proportion_interval(result["accuracy"], result["n_test"])
        macro_f1 = result.get("macro_f1_ci95") or [None, None]
        if macro_f1[0] is not None and macro_f1[0] == macro_f1[1]:
            macro_f1 = [0.0, 1.0]
        for column, value in zip(RUN_INTERVAL_COLUMNS, [*(accuracy or [None, None]), *macro_f1]):
            values[column].append(value)
    frame = frame.copy()
    position = frame.columns.get_loc("macro_f1") + 1
    for offset, column in enumerate(RUN_INTERVAL_COLUMNS):
        frame.insert(position + offset, column, values[column])
    return frame


def accuracy_table(summary: AccuracySummary, table):
    """The mean ± std table (results.summary_table) with each cell's 95 % interval and mark."""
    table = table.copy()
    for method in table.index:
        for n_train in table.columns:
            key = (method, int(n_train))
            if key not in summary.groups or not table.loc[method, n_train]:
                continue
            interval, mark = summary.intervals[key], summary.mark(*key)
            suffix = f" [{interval.low:.3f}, {interval.high:.3f}]" if interval else ""
            warning = unc.few_rows_warning(summary.groups[key][0].n_test)
            table.loc[method, n_train] += (
                suffix + (f" {mark}" if mark else "") + (f" {warning}" if warning else "")
            )
    return table


def interval_bands(summary: AccuracySummary) -> dict[tuple[str, int], tuple[float, float]] | None:
    """The learning-curve figure's bands: every (method, size)'s interval, or None when one is
    missing (the figure then draws min–max bands and says so)."""
    if any(interval is None for interval in summary.intervals.values()):
        return None
    return {key: (i.low, i.high) for key, i in summary.intervals.items()}


def legend_lines(summary: AccuracySummary) -> list[str]:
    """What the cells and marks of the accuracy table mean, then what could not be computed."""
    cells = f"Cells: mean {summary.metric} ± std over seeds"
    kinds = sorted({i.procedure for i in summary.intervals.values() if i})
    if kinds:
        cells += (
            f" [95 % interval of the mean; {'; '.join(kinds)}; "
            "docs/concepts/uncertainty.md#the-bootstrap]"
        )
    lines = [cells + ".", ""]
    if any(unc.few_rows_warning(runs[0].n_test) for runs in summary.groups.values()):
        lines += [FEW_ROWS_NOTE, ""]
    if summary.verdicts:
        untested = any(
            isinstance(other, PromptworthError)
            for verdict in summary.verdicts.values()
            for other in verdict["others"].values()
        )
        lines += [
            f"{BEST} best mean at that size; {TIED} within noise of it (the paired 95 % interval "
            f"of the difference to {BEST}, on the same seeds and test rows, contains 0); "
            f"unmarked: significantly below {BEST}"
            + (f"; {UNTESTED} no paired test (see below)" if untested else "")
            + ". No correction for multiple comparisons.",
            "",
        ]
    notes = [f"- {note}" for note in summary.notes]
    return lines + notes if notes else lines[:-1]


def summary_rows(summary: AccuracySummary) -> list[dict]:
    """One row per (method, size) for summary.csv and uncertainty.json."""
    rows = []
    for (method, n_train), runs in sorted(summary.groups.items()):
        interval = summary.intervals[(method, n_train)]
        verdict = summary.verdicts.get(n_train, {})
        versus = verdict.get("others", {}).get(method)
        paired = versus if isinstance(versus, unc.PairedComparison) else None
        scores = [run.score(summary.metric) for run in runs]
        name = summary.metric
        rows.append(
            {
                "method": method,
                "n_train": n_train,
                "n_seeds": len(runs),
                f"{name}_mean": statistics.fmean(scores),
                f"{name}_std": statistics.stdev(scores) if len(runs) > 1 else None,
                f"{name}_ci_low": interval.low if interval else None,
                f"{name}_ci_high": interval.high if interval else None,
                "interval": interval.procedure if interval else None,
                "best_at_size": verdict.get("best"),
                "mark": mark_name(summary.mark(method, n_train)),
                "difference_to_best": paired.difference if paired else None,
                "difference_ci_low": paired.low if paired else None,
                "difference_ci_high": paired.high if paired else None,
                "p_value": paired.p_value if paired else None,
            }
        )
    return rows


def mark_name(mark: str | None) -> str | None:
    names = {BEST: "best", TIED: "within noise of best", "": "below best", UNTESTED: "untested"}
    return None if mark is None else names[mark]


def headline_comparisons(
    summary: AccuracySummary, pair: tuple[str, str] | None
) -> list[unc.PairedComparison] | str | None:
    """The paired tests of the headline pair (baseline, method), or why there are none."""
    if pair is None:
        return None
    try:
        return unc.compare_methods(summary.groups, *pair, summary.metric)
    except PromptworthError as error:
        return str(error)


def paired_lines(pair: tuple[str, str], comparisons) -> list[str]:
    """Markdown lines: the headline pair's accuracy difference at each size, paired."""
    baseline, method = pair
    if isinstance(comparisons, str):
        return [f"No paired test of {method} against {baseline}: {comparisons}", ""]
    lines = [
        f"Paired test of the {comparisons[0].metric} difference {method} − {baseline} on the same "
        f"{comparisons[0].n_rows} test rows and seeds (bootstrap over both; McNemar's exact p per "
        "seed as a check):",
        "",
        "| n_train | difference | 95 % interval | p | McNemar p per seed | |",
        "|---|---|---|---|---|---|",
    ]
    for c in comparisons:
        size = (
            c.n_train
            if c.n_train == c.baseline_n_train
            else (f"{c.n_train} ({baseline} at {c.baseline_n_train})")
        )
        mcnemar = ", ".join(f"{m['p_value']:.3g} (seed {m['seed']})" for m in c.mcnemar)
        lines.append(
            f"| {size} | {c.difference:+.3f} | [{c.low:+.3f}, {c.high:+.3f}] | "
            f"{p_text(c.p_value)} | {mcnemar} | "
            f"{'within noise' if c.within_noise else 'significant'} |"
        )
    return [*lines, ""]


def p_text(p: float) -> str:
    """The bootstrap p-value; at its floor no resample crossed 0, so it is an upper bound."""
    floor = 2 / (unc.N_RESAMPLES + 1)
    return f"≤ {floor:.2g}" if p <= floor else f"{p:.3g}"


def write_uncertainty(summary: AccuracySummary, headline, pair, out: Path) -> dict[str, Path]:
    """summary.csv (one row per method and size) and uncertainty.json (that, the comparisons
    with each size's best, the headline pair's paired tests and the notes)."""
    import pandas as pd

    rows = summary_rows(summary)
    csv_path, json_path = out / "summary.csv", out / "uncertainty.json"
    pd.DataFrame(rows).to_csv(csv_path, index=False)
    document = {
        "metric": summary.metric,
        "level": unc.LEVEL,
        "resamples": unc.N_RESAMPLES,
        "procedure": unc.PROCEDURE,
        summary.metric: rows,
        "best_by_size": [
            {
                "n_train": n_train,
                "best": verdict["best"],
                "others": [
                    {"method": m, "error": str(o)} if isinstance(o, Exception) else o.to_dict()
                    for m, o in verdict["others"].items()
                ],
            }
            for n_train, verdict in summary.verdicts.items()
        ],
        "headline": None
        if pair is None
        else {
            "baseline": pair[0],
            "method": pair[1],
            **(
                {"error": headline}
                if isinstance(headline, str)
                else {"comparisons": [c.to_dict() for c in headline]}
            ),
        },
        "notes": summary.notes,
    }
    json_path.write_text(json.dumps(document, indent=2, default=str, ensure_ascii=False))
    return {"summary": csv_path, "uncertainty": json_path}
