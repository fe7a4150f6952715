"""What the store measured about each method, read the way the report's tables read it: the mean
headline metric (accuracy or macro-F1) and its 95 % interval at each size (analysis.summary), the
serving costs of the cost table (median over the runs at the method's largest size,
report.markdown.at_largest_size)."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

import numpy as np

from promptworth.analysis import uncertainty as unc
from promptworth.analysis.results import (
    at_largest_size,
    batched_ms,
    memory_alone,
    method_labels,
    results_frame,
    window_competition,
)
from promptworth.analysis.serve_dtypes import PrecisionSummary, precision_summaries
from promptworth.analysis.summary import AccuracySummary, summarize
from promptworth.errors import PromptworthError

UNKNOWN_DEVICE = "unknown"  # runs stored without their device: their compute cannot be priced
ROWS_ONLY = (
    f"{unc.EXACT}, from the mean accuracy and n_test (runs stored without their test labels)"
)
# What a method's serving memory is, by what its runs stored (Serving.memory_source): "model" when
# every run measured it in the serving window (what the method holds plus its activation peak);
# else a process's peak RSS (interpreter, libraries and model): "run" when every run measured its
# method alone (runner.MEMORY_SCOPE), older stores give upper bounds.
MEMORY_SOURCES = {
    "model": "weights, buffers and arrays the method holds to serve, plus its activation peak",
    "run": "peak RSS of the serving process, interpreter and libraries included",
    "process": "peak RSS of a process with models of other runs resident, an upper bound",
    "whole-run": "peak RSS of the whole run, training included, an upper bound",
    "precision": "the serving precision's weights plus the activation peak measured at the "
    "precision the run served at",
}
BYTES_A_PARAMETER = 4  # float32: the model's own size quoted beside a process's peak RSS


@dataclass(frozen=True)
class Curve:
    """A method's measured learning curve: sizes ascending, mean `metric`, interval, train time."""

    sizes: np.ndarray
    means: np.ndarray
    lows: np.ndarray
    highs: np.ndarray
    train_seconds: np.ndarray  # median over seeds at each size
    interval: str  # how the intervals were computed
    metric: str  # the score of means, lows and highs: accuracy or macro_f1
    test_rows: int  # the fewest test rows any of its sizes was scored on

    @property
    def untrained(self) -> bool:
        return bool(np.all(self.sizes == 0))


@dataclass(frozen=True)
class Serving:
    """Serving measurements (cost-table medians). Latency is measured at batch size 1 when the
    store has it, else derived from the batched time per example (a lower bound), and says so.
    The batched time per example is the serving window's where runs measured one, else the
    prediction pass's over the test subset."""

    device: str
    ms_per_example: float  # batched: what the serving cost is computed from
    latency_ms_p50: float
    latency_ms_p95: float | None
    latency_measured: bool
    memory_mb: float
    memory_source: str  # a MEMORY_SOURCES key
    artifact_mb: float
    prompt_tokens: float
    parameters: float  # the served model's parameter count (NaN: not recorded)
    remeasured: bool = False  # a run it is read from was re-measured (report --measure-serving)
    # what competed with its runs' serving windows for the CPUs, in words (None: quiet windows)
    busy: str | None = None
    # the serving precision these figures were measured at (--serve-dtype); None: the run's own
    precision: str | None = None
    # its score minus the run's own on the same rows, mean over the runs (None: the run's own)
    accuracy_change: float | None = None

    @property
    def weights_mb(self) -> float:
        """The model's own size in float32: what the process's peak RSS holds besides Python."""
        return self.parameters * BYTES_A_PARAMETER / 1e6

    @property
    def memory_measured(self) -> bool:
        """Whether the memory is this method's own serving peak, not an upper bound."""
        return self.memory_source in ("model", "run", "precision")


@dataclass(frozen=True)
class Requirements:
    """What a method needs besides its labels, from its stored recipe (method_params)."""

    unlabelled: int  # unlabelled texts of the task it reads (0: none)
    teacher: str | None  # the model that labels them, when one does


NO_REQUIREMENTS = Requirements(0, None)


@dataclass(frozen=True)
class Measured:
    method: str
    curve: Curve
    serving: Serving
    requirements: dict[int, Requirements] = field(default_factory=dict)  # by size
    # serving at each precision that served every run at its largest size without a
    # significant drop (--serve-dtype), by precision: the recommender chooses among them
    precisions: dict[str, Serving] = field(default_factory=dict)


def measure(
    rows: list[tuple[str, dict, dict]], metric: str, summary: AccuracySummary | None = None
) -> tuple[dict[str, Measured], object]:
    """Each method's measurements of `metric`, and the results frame they came from. `summary`:
    the intervals analysis.summary.summarize already computed from these rows for `metric` (the
    report passes its own), else they are computed here."""
    frame = results_frame(rows)
    if summary is None:
        summary = summarize(frame, rows, metric)
    elif summary.metric != metric:
        raise ValueError(f"a summary of {summary.metric} given to measure {metric}")
    serving = serving_table(frame)
    needs = requirements_table(frame)
    precisions = precision_servings(rows, frame, serving)
    measured = {
        method: Measured(
            method,
            curve(frame[frame["method"] == method], summary),
            serving[method],
            needs[method],
            precisions.get(method, {}),
        )
        for method in sorted(frame["method"].unique())
    }
    return measured, frame


def precision_servings(rows, frame, serving: dict[str, Serving]) -> dict[str, dict[str, Serving]]:
    """Per method, its serving at each precision that served without a significant drop
    (analysis.serve_dtypes): the precision's own timings and weights, the activation peak of
    the run's serving window (a precision changes what the weights take, not the activations
    a batch makes; the process's peak RSS where no window measured it)."""
    labels = method_labels([config for _, config, _ in rows])
    largest = at_largest_size(frame)
    activation = largest.groupby("method")["serving_activation_peak_mb"].median()
    out: dict[str, dict[str, Serving]] = {}
    for summary in precision_summaries(rows, labels):
        if summary.served and summary.method in serving:
            at = precision_serving(serving[summary.method], summary, activation[summary.method])
            out.setdefault(summary.method, {})[summary.precision] = at
    return out


def precision_serving(own: Serving, summary: PrecisionSummary, activation_mb: float) -> Serving:
    weights_mb = summary.median(summary.weights_bytes) / 2**20
    measured = not math.isnan(activation_mb)
    p95 = summary.median(summary.latency_ms_p95)
    return dataclasses.replace(
        own,
        ms_per_example=1000 / summary.median(summary.examples_per_second),
        latency_ms_p50=summary.median(summary.latency_ms_p50),
        latency_ms_p95=None if math.isnan(p95) else p95,
        latency_measured=True,
        memory_mb=weights_mb + activation_mb if measured else summary.median(summary.peak_rss_mb),
        memory_source="precision" if measured else "process",
        remeasured=False,
        busy=None,
        precision=summary.precision,
        accuracy_change=float(np.mean(summary.differences)),
    )


def requirements_table(frame) -> dict[str, dict[int, Requirements]]:
    """Per method and size, what its recipe there reads besides labels (a recipe may change
    with the size): distillation's n_unlabeled texts labelled by its teacher, PET's unlabelled
    texts labelled by its pattern models."""
    out: dict[str, dict[int, Requirements]] = {}
    for (method, n), runs in frame.groupby(["method", "n_train"]):
        params = json.loads(runs["method_params"].iloc[0] or "{}")
        model = runs["model"].iloc[0]
        unlabelled = int(params.get("n_unlabeled") or params.get("unlabelled") or 0)
        teacher = None
        if params.get("teacher"):
            teacher = f"{params['teacher']} on {params.get('teacher_model') or model}"
        elif params.get("pattern_method"):
            teacher = f"{params['pattern_method']} models on {model}, one per pattern"
        out.setdefault(method, {})[int(n)] = Requirements(unlabelled, teacher)
    return out


def priced(s: Serving) -> bool:
    """Whether serving can be costed: a measured time per example on a known device."""
    return not math.isnan(s.ms_per_example) and s.device != UNKNOWN_DEVICE


def curve(runs, summary: AccuracySummary) -> Curve:
    """One method's curve of the summary's metric; intervals from the store's per-row test
    labels when it has them, else (accuracy only) from the mean accuracy and n_test."""
    metric = summary.metric
    sizes = sorted(int(n) for n in runs["n_train"].unique())
    means, lows, highs, procedures = [], [], [], set()
    for n in sizes:
        at = runs[runs["n_train"] == n]
        mean = float(at[metric].mean())
        interval = summary.intervals.get((at["method"].iloc[0], n))
        if interval is not None:
            low, high, procedure = interval.low, interval.high, interval.procedure
        elif metric == "accuracy":
            low, high = unc.proportion_interval(mean, int(at["n_test"].iloc[0]))
            procedure = ROWS_ONLY
        else:
            raise PromptworthError(
                f"{at['method'].iloc[0]} at n_train={n}: no {metric} interval (e.g. runs "
                "stored without their test labels or number of classes; the report's notes say "
                "why): give --metric accuracy, or run a new sweep into a fresh --out"
            )
        means.append(mean)
        lows.append(low)
        highs.append(high)
        procedures.add(procedure)
    seconds = [float(runs[runs["n_train"] == n]["train_seconds"].median()) for n in sizes]
    return Curve(
        *(np.asarray(v, dtype=float) for v in (sizes, means, lows, highs, seconds)),
        interval="; ".join(sorted(procedures)),
        metric=metric,
        test_rows=int(runs["n_test"].min()),
    )


def serving_table(frame) -> dict[str, Serving]:
    """The cost table's medians per method, as Serving records."""
    largest = at_largest_size(frame).copy()
    largest["ms_per_example"] = batched_ms(largest)
    columns = [
        "ms_per_example",
        "eval_ms_per_example",
        "latency_ms_p50",
        "latency_ms_p95",
        "serving_memory_mb",
        "serve_peak_rss_mb",
        "peak_rss_mb",
        "artifact_bytes",
        "prompt_tokens_per_example",
        "total_params",
    ]
    by_method = largest.groupby("method")
    medians = by_method[columns].median()
    devices = by_method["device"].agg(
        lambda d: d.mode().iloc[0] if d.notna().any() else UNKNOWN_DEVICE
    )
    # what an artifact holds does not depend on its seed: one window's memory stands for them all
    in_window = by_method["serving_memory_mb"].agg(lambda m: bool(m.notna().any()))
    remeasured = by_method["serving_remeasured_at"].agg(lambda at: bool(at.notna().any()))
    largest["competition"] = [window_competition(run) for _, run in largest.iterrows()]
    busy = {name: first_text(found) for name, found in largest.groupby("method")["competition"]}
    alone = memory_alone(frame)
    return {
        method: dataclasses.replace(
            serving(row, devices[method], in_window[method], alone[method]),
            remeasured=remeasured[method],
            busy=busy[method],
        )
        for method, row in medians.iterrows()
    }


def first_text(values) -> str | None:
    """The first string among `values` (pandas may hold a missing one as NaN, which is truthy)."""
    return next((v for v in values if isinstance(v, str)), None)


def serving(row, device: str, in_window: bool, measured_alone: bool) -> Serving:
    latency_measured = not math.isnan(row["latency_ms_p50"])
    memory_measured = not math.isnan(row["serve_peak_rss_mb"])
    memory_source = "run" if measured_alone else "process" if memory_measured else "whole-run"
    memory_source = "model" if in_window else memory_source
    memory = {"model": "serving_memory_mb", "whole-run": "peak_rss_mb"}
    return Serving(
        device=str(device),
        ms_per_example=float(row["ms_per_example"]),
        latency_ms_p50=float(row["latency_ms_p50"] if latency_measured else row["ms_per_example"]),
        latency_ms_p95=float(row["latency_ms_p95"]) if latency_measured else None,
        latency_measured=latency_measured,
        memory_mb=float(row[memory.get(memory_source, "serve_peak_rss_mb")]),
        memory_source=memory_source,
        artifact_mb=float(row["artifact_bytes"]) / 1e6,
        prompt_tokens=float(row["prompt_tokens_per_example"]),
        parameters=float(row["total_params"]),
    )
