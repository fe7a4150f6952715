"""Serving figures that disagree with their serving family: a method whose batched time per
example, or whose measured batch-1 latency, is more than OUTLIER_RATIO times off the median of
the methods that serve the same backbone on the same device with about the same prompt is
flagged, so the answer never prices it as if the figure were sound.

A flagged figure is measured again in a clean window by `promptworth report OUT
--measure-serving` (and at the end of a sweep, for that sweep's outliers); the flag then says
whether it persists (docs/concepts/costs.md#outliers).

The family here is what sets serving cost, not the recipe's family (Method.family groups the
report's panels by how a method trains): the stored parameter count (the backbone, adapters
being a small share of it), the device and the prompt tokens per example.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from promptworth.analysis.results import at_largest_size, results_frame, window_competition
from promptworth.recommend.measured import Measured, Serving, serving_table

OUTLIER_RATIO = 5.0  # × the family's median
SAME_BACKBONE = 0.05  # parameter counts within 5 % of each other: the same backbone
SAME_PROMPT = 0.25  # prompt tokens per example within 25 %: the same prompt length
MIN_PEERS = 2  # with a single peer the outlier of the two cannot be told
MEASURE_AGAIN = "promptworth report OUT --measure-serving"


@dataclass(frozen=True)
class Figure:
    """A serving figure the family check reads: its name and unit in the flag, and where it is
    read."""

    name: str
    unit: str
    read: Callable[[Serving], float]


FIGURES = (
    Figure("serving time", "ms per example", lambda s: s.ms_per_example),
    Figure(
        "batch-1 latency (p50)",
        "ms per request",
        lambda s: s.latency_ms_p50 if s.latency_measured else math.nan,
    ),
)
UNITS = {figure.name: figure.unit for figure in FIGURES}


@dataclass(frozen=True)
class Outlier:
    method: str
    ms_per_example: float  # the flagged figure, ms (per example batched, or per request)
    family_ms: float  # the median of its peers' same figure
    peers: tuple[str, ...]
    figure: str = FIGURES[0].name
    remeasured: bool = False  # the figure is already a re-measurement: the outlier persists
    busy: str | None = None  # what competed with its serving windows (Serving.busy)

    @property
    def ratio(self) -> float:
        return self.ms_per_example / self.family_ms

    def text(self) -> str:
        side = "slower" if self.ratio > 1 else "faster"
        times = self.ratio if self.ratio > 1 else 1 / self.ratio
        found = (
            f"{self.method}'s {self.figure}, {self.ms_per_example:,.1f} {UNITS[self.figure]}, is "
            f"{times:,.0f}× "
            f"{side} than the {self.family_ms:,.1f} ms median of the methods serving the same "
            f"backbone with the same prompt length ({', '.join(self.peers)})"
        )
        if self.remeasured and self.busy:
            return (
                f"{found}: re-measured, still {times:,.0f}× its family, but on a machine busy "
                f"with other work ({self.busy}), which slows "
                "a measurement many times over; measure again on a quiet machine "
                f"({MEASURE_AGAIN}) before trusting either figure"
            )
        if self.remeasured:
            return (
                f"{found}: re-measured in a clean window, still {times:,.0f}× its family; the "
                "figure persists, so read its serving cost and latency as measured, not as "
                "its family's"
            )
        return (
            f"{found}: likely a measurement outlier, not re-measured yet; its serving cost and "
            f"latency are not to be trusted until it is (run {MEASURE_AGAIN})"
        )


def peers_of(name: str, serving: dict[str, Serving], figure: Figure) -> list[str]:
    """The other methods serving the same backbone on the same device with the same prompt,
    with `figure` measured."""
    mine = serving[name]
    return [
        other
        for other, s in serving.items()
        if other != name
        and s.device == mine.device
        and close(s.parameters, mine.parameters, SAME_BACKBONE)
        and close(s.prompt_tokens, mine.prompt_tokens, SAME_PROMPT)
        and not math.isnan(figure.read(s))
    ]


def close(a: float, b: float, share: float) -> bool:
    return not (math.isnan(a) or math.isnan(b)) and abs(a - b) <= share * max(a, b)


def serving_outliers(measured: dict[str, Measured]) -> dict[str, Outlier]:
    """Each method with a serving figure more than OUTLIER_RATIO × off its peers' median (the
    batched time first: one flag per method)."""
    return outliers_of({name: m.serving for name, m in measured.items()})


def outliers_of(serving: dict[str, Serving]) -> dict[str, Outlier]:
    """serving_outliers over the methods' Serving records alone."""
    found = {}
    for name in serving:
        flags = (figure_outlier(name, serving, figure) for figure in FIGURES)
        outlier = next((flag for flag in flags if flag is not None), None)
        if outlier is not None:
            found[name] = outlier
    return found


def figure_outlier(name: str, serving: dict[str, Serving], figure: Figure) -> Outlier | None:
    peers = peers_of(name, serving, figure)
    ms = figure.read(serving[name])
    if len(peers) < MIN_PEERS or math.isnan(ms) or ms <= 0:
        return None
    family = float(np.median([figure.read(serving[p]) for p in peers]))
    if family > 0 and max(ms / family, family / ms) > OUTLIER_RATIO:
        s = serving[name]
        peers = tuple(sorted(peers))
        return Outlier(name, ms, family, peers, figure.name, s.remeasured, s.busy)
    return None


def serving_targets(rows: list[tuple[str, dict, dict]], outliers_only: bool = False) -> dict:
    """The stored runs whose serving to measure again, each with why: per task, every run the
    serving table reads (a method's runs at its largest size) of a method flagged an outlier,
    and (unless `outliers_only`) every such run without a batch-1 latency or whose serving window
    competed with other work (window_competition), and one run of each method whose memory no window
    measured (unmeasured_memory). `outliers_only` (the
    end of a sweep) leaves out the runs measured again already; asked for, a flagged figure is
    measured again each time (a busy machine may have slowed the last measurement)."""
    frame = results_frame(rows)
    targets = {}
    for _, runs in frame.groupby("task"):
        flagged = outliers_of(serving_table(runs))
        for run in at_largest_size(runs).itertuples():
            outlier = flagged.get(run.method)
            again = isinstance(run.serving_remeasured_at, str)
            if outlier is not None and not (outliers_only and again):
                times = max(outlier.ratio, 1 / outlier.ratio)
                targets[run.run_key] = (
                    f"its method's {outlier.figure} is {times:,.0f}× its family's"
                )
            elif outliers_only:
                continue
            elif math.isnan(run.latency_ms_p50):
                targets[run.run_key] = "no batch-1 latency stored"
            elif window_competition(run._asdict()):
                targets[run.run_key] = "measured on a busy machine"
        if not outliers_only:
            targets |= unmeasured_memory(at_largest_size(runs), targets)
    return targets


def unmeasured_memory(largest, targets: dict) -> dict:
    """Per method none of whose runs at its largest size measured what its model holds in a
    serving window (older stores kept the process's peak RSS), its cheapest run to train again
    unless one of its runs is measured anyway: one window stands for every seed."""
    picked = {}
    for _, runs in largest.groupby("method"):
        if runs["serving_memory_mb"].notna().any() or runs["run_key"].isin(targets).any():
            continue
        cheapest = runs.sort_values(["train_seconds", "seed"]).iloc[0]
        picked[cheapest["run_key"]] = "no serving-window memory stored for its method"
    return picked
