"""One run: fit a method on a training subset, predict the test subset, measure score and cost."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
from collections.abc import Callable

import numpy as np

from promptworth.analysis.metrics import METRICS, scores, task_metrics, text_row_scores
from promptworth.analysis.uncertainty import percentile_interval, resampled_means, run_intervals
from promptworth.errors import PromptworthError
from promptworth.methods.base import Method, Prediction, RunContext
from promptworth.run import costs, serving
from promptworth.run.model_scores import ModelScorers, judge_agreement
from promptworth.run.serve_dtype import RunMeasures, serving_variants
from promptworth.run.serving import charged_seconds
from promptworth.store.config import MEMORY_SCOPE
from promptworth.tasks.base import Split, Task


def execute(
    method: Method,
    train: Split,
    test: Split,
    context: RunContext,
    *,
    judge_model: str | None = None,
    serve_dtypes: tuple[str, ...] = (),
) -> dict:
    """The run's result: metrics, costs and predictions, ready for the store. `judge_model`:
    the causal LM that judges a task scored by the judge metric (run/model_scores.py); with
    `serve_dtypes`, also the trained model measured at each serving precision."""
    problem = method.task_problem(context.task)
    if problem:
        raise PromptworthError(f"{method.name}: {problem}")
    if context.task.generates and context.score_rows is None:
        context = dataclasses.replace(context, score_rows=headline_scorer(context.task))
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
    scorers = ModelScorers(context.backbones, context.encoder, judge_model)
    result = {
        **scored(context.task, test, prediction, scorers),
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
        **generation_costs(context.task, prediction, n_test),
        "artifact_bytes": training.artifact_bytes,
        "device": context.backbones.placement.device,
        "threads": costs.cpu_threads(),
        "cpu": costs.cpu_model(),
        "host": platform.node(),
        # what the run was scored on, so intervals and paired tests need only the store
        "test_labels": test.labels.tolist(),
        "test_digest": split_digest(test),
        "extra": score_diagnostics(prediction.extra, test.labels, text_mean(context, test)),
    }
    if serve_dtypes:
        measures = RunMeasures(scored, serving.batch_one_latency, charged_seconds)
        result["serving_variants"] = serving_variants(
            method, test, context, result, serve_dtypes, measures
        )
    return result


def headline_scorer(task: Task) -> Callable[[list[str], list[tuple[str, ...]]], list[float]]:
    """Each output's score by a generation task's headline metric (RunContext.score_rows)."""
    key = task_metrics(task.metrics)[0]
    return lambda outputs, references: text_row_scores((key,), outputs, references)[key][0]


def scored(
    task: Task, test: Split, prediction: Prediction, scorers: ModelScorers | None = None
) -> dict:
    """The run's scores, their 95 % intervals over resamples of the test rows, and what they
    were computed from: predicted labels, or a generation task's answers and each row's score
    by every metric of the task (`row_scores`, read by intervals and paired tests), with the
    share of answers each metric could not read (`{metric}_unparsed`) beside it. Metrics
    scored by a model (BERTScore, the judge) are computed with `scorers`, their seconds stored
    apart from the method's eval cost, and the judge's agreement with exact match beside it."""
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
    model_keys = [key for key in keys if METRICS[key].model_scored]
    measured = {}
    if model_keys:
        if scorers is None:
            raise ValueError(f"metrics {model_keys} are scored by a model: pass the scorers")
        by_model, measured = scorers.score(model_keys, test, prediction.texts)
        by_metric.update(by_model)
    result = {"headline_metric": keys[0], "row_scores": {}}
    for key in keys:
        rows, unparsed = by_metric[key]
        result[key] = float(np.mean(rows))
        result[f"{key}_ci95"] = list(percentile_interval(resampled_means(np.array(rows))[0]))
        result[f"{key}_unparsed"] = unparsed
        result["row_scores"][key] = rows
    return {
        **result,
        **measured,
        **judge_agreement(result["row_scores"]),
        "unmapped": sum(not text.strip() for text in prediction.texts),  # empty answers
        "predictions": list(prediction.texts),
    }


def generation_costs(task: Task, prediction: Prediction, n_test: int) -> dict:
    """A generation task's work per test row: model.generate calls and tokens generated (a
    multi-step technique makes several calls per row); nothing for a classification task."""
    if not task.generates:
        return {}
    return {
        "calls_per_row": round(prediction.calls / max(n_test, 1), 3),
        "generated_tokens_per_row": round(prediction.generated_tokens / max(n_test, 1), 2),
    }


def split_digest(split: Split) -> str:
    """Identity of the test rows (texts and labels, or references, in order): runs are paired
    only when equal."""
    described = [split.texts, np.asarray(split.labels).tolist()]
    if split.references is not None:
        described.append([list(refs) for refs in split.references])
    canonical = json.dumps(described, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


def text_mean(context: RunContext, test: Split) -> Callable[[list[str]], float] | None:
    """A generation task's headline score of answers to the test rows (None: classification)."""
    if not context.task.generates:
        return None
    return lambda outputs: float(np.mean(context.score_rows(outputs, test.references)))


def score_diagnostics(
    extra: dict, labels: np.ndarray, text_score: Callable[[list[str]], float] | None = None
) -> dict:
    """Score the diagnostic predictions a method reports (a teacher's, each template's).

    Methods never see test labels; they put predictions under keys ending in `_predictions`
    (also inside lists of dicts) and the runner adds the matching `_accuracy`; a generation
    task's answers go under keys ending in `_outputs`, and `text_score` adds their `_score`."""
    scored = dict(extra)
    for key, value in extra.items():
        if key.endswith("_predictions") and len(value) == len(labels):
            accuracy = float((np.asarray(value) == labels).mean())
            scored[key.removesuffix("_predictions") + "_accuracy"] = accuracy
        elif text_score and key.endswith("_outputs") and len(value) == len(labels):
            scored[key.removesuffix("_outputs") + "_score"] = text_score(value)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            scored[key] = [score_diagnostics(v, labels, text_score) for v in value]
    return scored
