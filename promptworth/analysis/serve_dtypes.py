"""Serving precisions summarised: each method's runs at its largest size, per precision their
runs measured (run/serve_dtype.py), and which precision to deploy.
(docs/concepts/serving-precision.md#choosing-a-precision)"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np


@dataclass
class PrecisionSummary:
    """One method (report label) at one serving precision, over its runs at its largest size."""

    method: str
    precision: str
    n_train: int
    metric: str
    runs: int = 0
    scores: list[float] = field(default_factory=list)
    differences: list[float] = field(default_factory=list)  # the variant's minus the run's
    significant_drops: int = 0
    failures: Counter = field(default_factory=Counter)  # reason -> runs
    not_applicable: str | None = None
    latency_ms_p50: list[float] = field(default_factory=list)
    latency_ms_p95: list[float] = field(default_factory=list)
    peak_rss_mb: list[float] = field(default_factory=list)
    examples_per_second: list[float] = field(default_factory=list)
    weights_bytes: list[int] = field(default_factory=list)

    def add(self, record: dict) -> None:
        self.runs += 1
        if "not_applicable" in record:
            self.not_applicable = record["not_applicable"]
        elif "failed" in record:
            self.failures[record["failed"]] += 1
        else:
            self.scores.append(record[record["metric"]])
            self.differences.append(record["difference"])
            self.significant_drops += int(record["significant_drop"])
            self.latency_ms_p50.append(record["latency_ms_p50"])
            self.latency_ms_p95.append(record.get("latency_ms_p95", float("nan")))
            self.peak_rss_mb.append(record.get("serve_peak_rss_mb", float("nan")))
            self.examples_per_second.append(record["eval_examples_per_second"])
            self.weights_bytes.append(record["weights_bytes"])

    @property
    def served(self) -> bool:
        """Every run served at this precision, none with a significant drop."""
        clean = not self.failures and self.not_applicable is None
        return clean and bool(self.scores) and self.significant_drops == 0

    def status(self) -> str:
        if self.not_applicable is not None:
            return f"not applicable: {self.not_applicable}"
        if self.failures:
            reason, _ = self.failures.most_common(1)[0]
            return f"failed in {sum(self.failures.values())} of {self.runs} runs: {reason}"
        if self.significant_drops:
            return f"significant drop in {self.significant_drops} of {self.runs} runs"
        return "ok"

    def median(self, values: list) -> float:
        return float(np.median(values)) if values else float("nan")


def precision_summaries(rows: list[tuple[str, dict, dict]], labels: list[str]):
    """Per (method label, precision), in store order then precision order, the runs at the
    method's largest size that measured serving precisions."""
    largest: dict[str, int] = {}
    for (_, config, result), label in zip(rows, labels):
        if result.get("serving_variants"):
            largest[label] = max(largest.get(label, 0), int(config["n_train"]))
    summaries: dict[tuple[str, str], PrecisionSummary] = {}
    for (_, config, result), label in zip(rows, labels):
        if label not in largest or int(config["n_train"]) != largest[label]:
            continue
        metric = result.get("headline_metric", "accuracy")
        for precision, record in result["serving_variants"].items():
            key = (label, precision)
            if key not in summaries:
                summaries[key] = PrecisionSummary(label, precision, largest[label], metric)
            summaries[key].add(record)
    return list(summaries.values())


def deployable(summaries: list[PrecisionSummary]) -> dict[str, PrecisionSummary]:
    """Per method, the precision to deploy: of those that served in every run without a
    significant drop from the run's own precision, the one with the smallest weights (then
    the fastest at batch 1). Methods with none are absent."""
    served = sorted((s for s in summaries if s.served), key=cost, reverse=True)
    return {summary.method: summary for summary in served}  # the cheapest is written last


def cost(summary: PrecisionSummary) -> tuple[float, float]:
    """What deploying at this precision costs: weights held, then batch-1 latency."""
    return summary.median(summary.weights_bytes), summary.median(summary.latency_ms_p50)


def deploy_precision(
    rows: list[tuple[str, dict, dict]], method: str, chosen: str | None
) -> dict | None:
    """For the recommendation: the precision the recommender chose to deploy `method` (a report
    label) at (`chosen`; None: the precision it ran at) and how each measured precision fared;
    None when its runs measured no serving precision."""
    from promptworth.analysis.results import method_labels

    labels = method_labels([config for _, config, _ in rows])
    summaries = [s for s in precision_summaries(rows, labels) if s.method == method]
    if not summaries:
        return None
    measured = {s.precision: s.status() for s in summaries}
    if chosen is None:
        return {
            "precision": None,
            "any_served": any(s.served for s in summaries),
            "measured": measured,
        }
    (summary,) = [s for s in summaries if s.precision == chosen]
    return {
        "precision": chosen,
        "difference": float(np.mean(summary.differences)),
        "weights_mb": summary.median(summary.weights_bytes) / 2**20,
        "latency_ms_p50": summary.median(summary.latency_ms_p50),
        "measured": measured,
    }
