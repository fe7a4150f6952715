"""Serving measured in a clean window (docs/concepts/costs.md#serving-window): after predicting,
what training left is freed, the method is warmed up, then it is timed at batch size 1 and
batched, and the memory it serves with is what it holds plus the activation peak above that.

The window runs at the end of every run (runner.execute) and again, on a model rebuilt from a
stored run's config, when `promptworth report --measure-serving` re-measures a run.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from promptworth.methods.base import Method, Prediction
from promptworth.run import costs

# Rows are fixed by the run's config (its test subset), never drawn per run (window_rows).
LATENCY_ROWS = 16
THROUGHPUT_ROWS = 32
WARMUP_ROWS = 4
MB = 2**20


def measure(method: Method, texts: list[str]) -> dict[str, Any]:
    """The serving window's fields for a fitted `method` predicting `texts`, served as its
    artifact would be (Method.for_serving)."""
    method = method.for_serving()
    costs.return_freed_memory()
    busy = costs.load_average()  # kept for the record; it counts this run's own threads too
    started, cpu_before = time.perf_counter(), costs.cpu_seconds()
    baseline = costs.rss_mb()
    resettable = costs.reset_peak_rss()
    warmup, one_by_one, batched = window_rows(texts)
    method.predict(warmup)  # batched path, discarded
    for text in warmup:  # batch-1 path, discarded
        method.predict([text])
    latency = batch_one_latency(method, one_by_one)
    throughput = batched_throughput(method, batched)
    others = costs.other_cpus(cpu_before, time.perf_counter() - started)
    weights_mb = held_bytes(method) / MB
    activation_mb = memory_mb = None
    if resettable and baseline is not None:
        activation_mb = round(max(costs.peak_rss_mb() - baseline, 0.0), 1)
        memory_mb = round(weights_mb + activation_mb, 3)
    return {
        **latency,
        **throughput,
        "serving_warmup_rows": len(warmup),
        "serving_load_average": busy,
        "serving_other_cpus": others,
        "serving_cpus": os.cpu_count(),
        "serving_weights_mb": round(weights_mb, 3),
        "serving_activation_peak_mb": activation_mb,
        "serving_memory_mb": memory_mb,
    }


def window_rows(texts: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(warm-up, batch-1, batched) rows: the first LATENCY_ROWS texts are timed one by one, the
    next THROUGHPUT_ROWS together and the WARMUP_ROWS after them warm up, so no timed row was
    met by a cache in the same window (a cache charges a row at what it first cost); a test
    subset too short for that times the batched rows from its start and warms up on its end."""
    one_by_one, rest = texts[:LATENCY_ROWS], texts[LATENCY_ROWS:]
    if len(rest) >= THROUGHPUT_ROWS + WARMUP_ROWS:
        return rest[THROUGHPUT_ROWS:][:WARMUP_ROWS], one_by_one, rest[:THROUGHPUT_ROWS]
    return texts[-WARMUP_ROWS:], one_by_one, texts[:THROUGHPUT_ROWS]


def charged_seconds(prediction: Prediction, wall_seconds: float) -> float:
    """Prediction time as charged: work taken from a cache at what it cost to compute, minus
    time spent on diagnostics that are not the method's own labels."""
    return prediction.cached_seconds + wall_seconds - prediction.diagnostic_seconds


def timed(method: Method, texts: list[str]) -> float:
    """Charged seconds of predicting `texts` in one call."""
    start = time.perf_counter()
    prediction = method.predict(texts)
    return charged_seconds(prediction, time.perf_counter() - start)


def batch_one_latency(method: Method, texts: list[str]) -> dict[str, Any]:
    """Per-request latency at batch size 1: median and 95th percentile (ms), each text alone."""
    seconds = [timed(method, [text]) for text in texts]
    p50, p95 = np.percentile(1000 * np.asarray(seconds), [50, 95])
    return {
        "latency_ms_p50": round(float(p50), 3),
        "latency_ms_p95": round(float(p95), 3),
        "latency_rows": len(texts),
    }


def batched_throughput(method: Method, texts: list[str]) -> dict[str, Any]:
    """Examples per second predicting `texts` in one call, batched at the method's own size."""
    seconds = max(timed(method, texts), 1e-9)
    return {
        "serving_throughput_rows": len(texts),
        "serving_examples_per_second": round(len(texts) / seconds, 2),
        "serving_ms_per_example": round(1000 * seconds / len(texts), 3),
    }


def held_bytes(method: Method) -> int:
    """Bytes of the weights, buffers and arrays `method` keeps to predict (its models, adapters,
    heads, classifiers, stored vectors), each storage counted once however often it is shared."""
    storages: dict[tuple, int] = {}
    for key, size in arrays(vars(method), set()):
        storages[key] = size
    return sum(storages.values())


def arrays(value: Any, seen: set[int]) -> Iterator[tuple[tuple, int]]:
    """(storage identity, bytes) of every tensor and array reachable from `value` through
    methods, modules, containers and the dataclasses methods and backbones define."""
    import torch

    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, torch.nn.Module):
        for tensor in [*value.parameters(), *value.buffers()]:
            yield from arrays(tensor, seen)
    elif isinstance(value, torch.Tensor):
        if value.device.type != "meta":
            storage = value.untyped_storage()
            yield ("torch", value.device.type, storage.data_ptr()), storage.nbytes()
    elif isinstance(value, np.ndarray):
        if value.dtype != object:
            base = value.base if isinstance(value.base, np.ndarray) else value
            yield ("numpy", base.__array_interface__["data"][0]), base.nbytes
    elif isinstance(value, dict):
        for item in value.values():
            yield from arrays(item, seen)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from arrays(item, seen)
    elif walked(value):
        for item in vars(value).values():
            yield from arrays(item, seen)


def walked(value: Any) -> bool:
    """Objects whose attributes hold what a method serves with: nested methods, the dataclasses
    of methods and backbones (a Backbone's model, a prompt format) and scikit-learn estimators.
    Caches of computed features are not the model, and task data is not served."""
    module = type(value).__module__
    if isinstance(value, Method):
        return True
    if module.startswith("sklearn."):
        return hasattr(value, "__dict__")
    return dataclasses.is_dataclass(value) and module.startswith(
        ("promptworth.methods", "promptworth.backbones")
    )
