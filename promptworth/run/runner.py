"""One run: fit a method on a training subset, predict the test subset, measure score and cost."""

from __future__ import annotations

import hashlib
import json
import platform

import numpy as np

from promptworth.analysis.metrics import scores, task_metrics, text_row_scores
from promptworth.analysis.uncertainty import percentile_interval, resampled_means, run_intervals
from promptworth.errors import PromptworthError
from promptworth.methods.base import Method, Prediction, RunContext
from promptworth.run import costs, serving
from promptworth.run.serving import charged_seconds
from promptworth.store.config import MEMORY_SCOPE
from promptworth.tasks.base import Split, Task


def execute(method: Method, train: Split, test: Split, context: RunContext) -> dict:
    """The run's result: metrics, costs and predictions, ready for the store."""
    problem = method.task_problem(context.task)
    if problem:
        raise PromptworthError(f"{method.name}: {problem}")
    timings: dict[str, float] = {}
    context.backbones.begin((method.name, method.get_params(), context.model, context.encoder))
    costs.return_freed_memory()
    costs.reset_peak_rss()
    costs.reset_gpu_peak()
    loading_before = context.backbones.load_seconds
    with costs.stopwatch(timings, "train_seconds"):
        method.fit(train, context)
    # Loading a backbone is no method's cost: runs reload what another experiment's run freed.
    timings["train_seconds"] -= context.backbones.load_seconds - loading_before
    train_peak_mb = costs.peak_rss_mb()
    with context.backbones.held_only():  # a teacher or encoder used only in training is freed
        costs.return_freed_memory()
        peak_is_the_runs = costs.reset_peak_rss()  # else the process's lifetime peak (not Linux)
        with costs.stopwatch(timings, "eval_seconds"):
            prediction = method.predict(test.texts)
        serve_peak_mb = costs.peak_rss_mb()
        window = serving.measure(method, test.texts)
    training = method.training_cost()
    # Work a run took from a shared cache is charged at what it cost to compute, never at zero;
    # the wall time spent filling the cache is replaced by the same per-example charge.
    timings["train_seconds"] = training.cached_seconds + timings["train_seconds"]
    timings["eval_seconds"] = charged_seconds(prediction, timings["eval_seconds"])
    n_test = len(test)
    return {
        **scored(context.task, test, prediction),
        "n_test": n_test,
        "trainable_params": training.trainable_params,
        "total_params": training.total_params,
        "train_seconds": round(timings["train_seconds"], 3),
        "train_examples": training.train_examples,
        "train_tokens": training.train_tokens,
        "train_steps": training.train_steps,
        "peak_rss_mb": round(max(train_peak_mb, serve_peak_mb), 1),
        "serve_peak_rss_mb": round(serve_peak_mb, 1),
        "memory_scope": MEMORY_SCOPE if peak_is_the_runs else None,
        "peak_gpu_mb": costs.gpu_peak_mb(),
        "eval_seconds": round(timings["eval_seconds"], 3),
        "eval_ms_per_example": round(1000 * timings["eval_seconds"] / max(n_test, 1), 3),
        "eval_examples_per_second": round(n_test / max(timings["eval_seconds"], 1e-9), 2),
        **window,
        "prompt_tokens_per_example": round(prediction.prompt_tokens / max(n_test, 1), 2),
        "artifact_bytes": training.artifact_bytes,
        "device": context.backbones.placement.device,
        "threads": costs.cpu_threads(),
        "cpu": costs.cpu_model(),
        "host": platform.node(),
        # what the run was scored on, so intervals and paired tests need only the store
        "test_labels": test.labels.tolist(),
        "test_digest": split_digest(test),
        "extra": score_diagnostics(prediction.extra, test.labels),
    }


def scored(task: Task, test: Split, prediction: Prediction) -> dict:
    """The run's scores, their 95 % intervals over resamples of the test rows, and what they
    were computed from: predicted labels, or a generation task's answers and each row's score
    by every metric of the task (`row_scores`, read by intervals and paired tests), with the
    share of answers each metric could not read (`{metric}_unparsed`) beside it."""
    if not task.generates:
        return {
            **scores(test.labels, prediction.labels, task.n_labels),
            **run_intervals(test.labels, prediction.labels, task.n_labels),
            "n_labels": task.n_labels,  # macro-F1 averages over every class of the task
            "unmapped": prediction.n_unmapped,
            "predictions": prediction.labels.tolist(),
        }
    if prediction.texts is None or len(prediction.texts) != len(test):
        raise ValueError("a generation task's prediction needs one answer text per test row")
    keys = task_metrics(task.metrics)
    by_metric = text_row_scores(keys, prediction.texts, test.references)
    result = {"headline_metric": keys[0], "row_scores": {}}
    for key, (rows, unparsed) in by_metric.items():
        result[key] = float(np.mean(rows))
        result[f"{key}_ci95"] = list(percentile_interval(resampled_means(np.array(rows))[0]))
        result[f"{key}_unparsed"] = unparsed
        result["row_scores"][key] = rows
    return {
        **result,
        "unmapped": sum(not text.strip() for text in prediction.texts),  # empty answers
        "predictions": list(prediction.texts),
    }


def split_digest(split: Split) -> str:
    """Identity of the test rows (texts and labels, or references, in order): runs are paired
    only when equal."""
    described = [split.texts, np.asarray(split.labels).tolist()]
    if split.references is not None:
        described.append([list(refs) for refs in split.references])
    canonical = json.dumps(described, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


def score_diagnostics(extra: dict, labels: np.ndarray) -> dict:
    """Score the diagnostic predictions a method reports (a teacher's, each template's).

    Methods never see test labels; they put predictions under keys ending in `_predictions`
    (also inside lists of dicts) and the runner adds the matching `_accuracy`."""
    scored = dict(extra)
    for key, value in extra.items():
        if key.endswith("_predictions") and len(value) == len(labels):
            accuracy = float((np.asarray(value) == labels).mean())
            scored[key.removesuffix("_predictions") + "_accuracy"] = accuracy
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            scored[key] = [score_diagnostics(v, labels) for v in value]
    return scored
