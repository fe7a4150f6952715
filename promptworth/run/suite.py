"""`promptworth suite`: the same ladder over several tasks into one store.

Every task is checked before any model loads, the sweeps share one backbone cache, and the
cross-task verdict is written by promptworth.report.suite.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from promptworth.errors import PromptworthError, quoted
from promptworth.methods import method_class
from promptworth.paths import REPORT_FILES, SUITE_FILES, check_writable_files
from promptworth.run.sweep import PlannedRun, Sweep, SweepSpec

ZERO_SHOT = "zero-shot"


def default_prompt_method(methods: list[str]) -> str:
    """The first method, other than zero-shot, that reads the prompt template and is trained
    (prompt-lora, prompt-ft, pet, few-shot, ...); else zero-shot itself."""
    for name in methods:
        cls = method_class(name)
        if name != ZERO_SHOT and cls.trains and "template" in cls.prompt_fields:
            return name
    if ZERO_SHOT in methods:
        return ZERO_SHOT
    raise PromptworthError(
        f"--methods {','.join(methods)}: no prompt method to value; add zero-shot or a prompt "
        "method such as prompt-lora, or name one with --prompt-method"
    )


def check_tasks(tasks: list[str]) -> None:
    if not tasks:
        raise PromptworthError("--tasks: give at least one task, e.g. --tasks sst2,trec")
    repeated = sorted({t for t in tasks if tasks.count(t) > 1})
    if repeated:
        raise PromptworthError(f"--tasks: {', '.join(repeated)} given more than once")


def suite_sweeps(spec: SweepSpec, tasks: list[str], quiet: bool = False) -> list[Sweep]:
    """One Sweep per task into `spec.out`, every task checked before any model loads; the
    sweeps share one backbone cache, so each model loads once for the whole suite."""
    check_tasks(tasks)
    sweeps = [Sweep(dataclasses.replace(spec, task=task), quiet=quiet) for task in tasks]
    names = [sweep.task.name for sweep in sweeps]
    for name in sorted({n for n in names if names.count(n) > 1}):
        given = [task for task, n in zip(tasks, names) if n == name]
        raise PromptworthError(
            f"--tasks: {' and '.join(given)} are both task {quoted(name)}; the cross-task table "
            "needs one name per task (rename a file)"
        )
    out = Path(spec.out)
    check_writable_files(out, SUITE_FILES)
    for name in names:
        check_writable_files(out, REPORT_FILES, "tasks", name)
    for sweep in sweeps[1:]:
        sweep.backbones = sweeps[0].backbones
    return sweeps


def run_suite(sweeps: list[Sweep]) -> tuple[list[str], list[tuple[PlannedRun, str]]]:
    """Execute every task's sweep; the planned run keys of all tasks and the failed runs."""
    keys, failures = [], []
    for sweep in sweeps:
        plan, failed = sweep.execute()
        keys += [run.config.key() for run in plan]
        failures += failed
    return keys, failures


def finished_rows(sweeps: list[Sweep], keys: list[str]) -> list[tuple[str, dict, dict]]:
    """The finished runs of `keys` from the suite's store, tasks in the order given."""
    order = {sweep.task.name: i for i, sweep in enumerate(sweeps)}
    return sorted(sweeps[0].store.load(keys), key=lambda row: order[row[1]["task"]])
