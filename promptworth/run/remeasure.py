"""Measuring a stored run's serving again (`promptworth report OUT --measure-serving`): the run's
method is rebuilt from its stored config (the same task, backbones, parameters, seed and training
subset train the same model; a method that trains nothing only loads), checked to be the very
run by its key, and measured in the serving window (run/serving.py). The measurement is added to
the run with when and where it was made; the run's own figures are kept
(docs/concepts/costs.md#re-measuring).
"""

from __future__ import annotations

import dataclasses
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from promptworth.errors import PromptworthError
from promptworth.methods import method_class
from promptworth.methods.base import PromptOptions
from promptworth.run import costs, serving
from promptworth.run.executors import Workbench
from promptworth.run.sweep import TASK_SOURCE, Sweep, SweepSpec
from promptworth.run.validate import spec_task
from promptworth.store.database import RunStore, environment
from promptworth.tasks import BUILTIN_TASKS


def task_source(store: RunStore, config: dict) -> dict[str, Any]:
    """The SweepSpec fields naming the task of stored run `config`."""
    if config["task"] in BUILTIN_TASKS:
        return {"task": config["task"]}
    saved = store.meta().get(TASK_SOURCE + config.get("task_version", ""))
    if saved is None:
        raise PromptworthError(
            f"{store.path}: task {config['task']!r} was read from files and this store does not "
            "say which (it predates recording them); run the sweep again to measure its serving"
        )
    return json.loads(saved)


def rebuilt_spec(store: RunStore, config: dict, out: Path):
    """The one-run SweepSpec that plans stored run `config` again (features cached in `out`)."""
    prompt = {k: v for k, v in config.get("prompt", {}).items() if k != "generation"}
    prompt["verbalizer"] = tuple(
        (name, tuple(words)) for name, words in prompt.get("verbalizer", ())
    )
    method = config["method"]
    return SweepSpec(
        **task_source(store, config),
        models=[config["model"]],
        encoders=[config["encoder"]],
        judge_model=config.get("judge", {}).get("model"),
        serve_dtypes=tuple(config.get("serve_dtypes", ())),
        methods=[method],
        method_params={method: config["method_params"]},
        sizes=[config["n_train"]],
        seeds=[config["seed"]],
        test_size=config["test_size"],
        sampling=config["sampling"],
        dtype=config["dtype"],
        prompt=PromptOptions(**prompt),
        out=out,
    )


def remeasure(store: RunStore, reasons: dict[str, str], say=print) -> list[str]:
    """Measure the serving of each stored run in `reasons` (key -> why) again and record it;
    returns the keys measured, the quickest to train again first (each is stored as it is
    measured). Runs share one backbone cache and one task load per task."""
    rows = sorted(store.load(list(reasons)), key=lambda row: row[2].get("train_seconds") or 0)
    done, shared, tasks = [], None, {}
    with tempfile.TemporaryDirectory(prefix="promptworth-serving-") as scratch:
        for key, config, result in rows:
            spec = rebuilt_spec(store, config, Path(scratch))
            source = json.dumps(task_source(store, config), sort_keys=True)
            task = tasks[source] = tasks.get(source) or spec_task(spec)
            if not config["n_train"]:  # a method that trains nothing plans size 0 whatever
                spec = dataclasses.replace(spec, sizes=[len(task.train)])  # the sizes
            sweep = Sweep(spec, quiet=True, task=task)
            shared = sweep.backbones = shared or sweep.backbones
            say(f"re-measuring serving of {label(config)} ({reasons[key]})")
            window = measured_window(sweep, key, config)
            store.add_serving_measurement(key, provenance(window, reasons[key], sweep))
            say(f"  {figures(result)} -> {figures(window)}")
            done.append(key)
    return done


def measured_window(sweep, key: str, config: dict) -> dict[str, Any]:
    """The serving window of stored run `key`, its method rebuilt and fitted again."""
    (run,) = sweep.plan()
    if run.config.key() != key:
        raise PromptworthError(
            f"{label(config)}: its stored config no longer plans the same run (key {key}, now "
            f"{run.config.key()}): the task data, a model or a method default changed; run the "
            "sweep again into a fresh --out to measure it"
        )
    bench = Workbench(sweep.task, sweep.test, sweep.backbones, sweep.features)
    context = bench.context(run)
    method = method_class(config["method"])(**run.config.method_params)
    context.backbones.begin((method.name, method.get_params(), context.model, context.encoder))
    method.fit(sweep.task.train.subset(run.train_indices), context)
    with context.backbones.held_only():  # as in the run: only what the method holds is resident
        return serving.measure(method, sweep.test.texts)


def provenance(window: dict[str, Any], reason: str, sweep) -> dict[str, Any]:
    """A re-measurement as stored: the window's figures, why, when and where it was made."""
    return {
        **window,
        "reason": reason,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "device": sweep.placement.device,
        "dtype": sweep.placement.dtype,
        "threads": costs.cpu_threads(),
        "cpu": costs.cpu_model(),
        "host": platform.node(),
        "environment": environment(),
    }


def label(config: dict) -> str:
    return f"{config['method']} n={config['n_train']} seed={config['seed']} ({config['task']})"


def figures(result: dict) -> str:
    """A run's serving figures in one line, for the terminal."""
    ms = result.get("serving_ms_per_example", result.get("eval_ms_per_example"))
    p50, p95 = result.get("latency_ms_p50"), result.get("latency_ms_p95")
    latency = f"batch-1 p50 {p50:,.1f} / p95 {p95:,.1f} ms" if p50 is not None else "no batch-1"
    others, load = result.get("serving_other_cpus"), result.get("serving_load_average")
    cpus = result.get("serving_cpus")
    if others is not None:
        busy = f" (other work kept {others:,.1f} of {cpus} CPUs busy)"
    else:
        busy = f" (load average {load:,.1f} on {cpus} CPUs)" if load else ""
    return f"{ms:,.1f} ms per example batched, {latency}{busy}"
