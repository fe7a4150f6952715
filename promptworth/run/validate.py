"""Everything a sweep is given, checked before any model loads.

`checked_task` is the first thing `Sweep` does, so the Python API refuses what the CLI refuses:
each problem raises a PromptworthError naming the flag (the SweepSpec field of the same name),
parameter, file, row or field. A sweep that starts has valid methods, parameters, sizes, seeds,
test size, prompt options, backbones, data and output directory.
"""

from __future__ import annotations

import dataclasses
import numbers
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptworth.backbones.device import DTYPES
from promptworth.backbones.preflight import check_backbone
from promptworth.errors import PromptworthError, did_you_mean, quoted
from promptworth.methods import make_method, method_class
from promptworth.methods.base import PREDICT_MODES, Method, PromptOptions
from promptworth.paths import REPORT_FILES, check_writable_files, inside
from promptworth.tasks import Task, load_task
from promptworth.tasks.base import GENERATION_METRIC_NAMES, verbalizer_problem
from promptworth.tasks.subsets import check_sampling, check_sizes

if TYPE_CHECKING:
    from promptworth.run.sweep import SweepSpec


def checked_task(spec: SweepSpec, task: Task | None = None) -> Task:
    """Check the spec, load its task (whose loader checks the data; `task`: the one the spec
    names, loaded already), check the spec against the task, and return the task."""
    methods = check_spec(spec)
    task = with_added_metrics(spec, task or spec_task(spec))
    check_against_task(spec, task)
    check_task_type(methods, task)
    check_backbones(spec, methods)
    return task


def spec_task(spec: SweepSpec) -> Task:
    """The task `spec` names, loaded and checked by its loader."""
    return load_task(
        spec.task,
        spec.test_file,
        spec.text_column,
        spec.label_column,
        spec.encoding,
        spec.allow_overlap,
    )


def check_spec(spec: SweepSpec) -> list[Method]:
    """What needs neither data nor model files; returns the configured methods."""
    named = [*spec.methods, *spec.method_params]
    methods = checked_methods(spec.methods, {name: spec.params(name) for name in named})
    check_counts("--sizes", spec.sizes, minimum=1, what="training-set size")
    check_counts("--seeds", spec.seeds, minimum=0, what="seed")
    check_backbone_list("--models", spec.models, "causal LM")
    check_backbone_list("--encoders", spec.encoders, "encoder")
    if spec.test_size is not None:
        at_least("--test-size", spec.test_size, 1, "or --full-test for the whole test set")
    check_prompt(spec.prompt)
    for method in methods:
        problem = method.incompatible(spec.prompt)
        if problem:
            raise PromptworthError(f"--methods {method.name}: {problem}")
    if spec.dtype not in DTYPES:
        raise PromptworthError(f"--dtype {quoted(spec.dtype)}: choose one of {', '.join(DTYPES)}")
    check_sampling(spec.sampling)
    check_out(Path(spec.out))
    return methods


def check_backbones(spec: SweepSpec, methods: list[Method]) -> None:
    """Every model directory the sweep would load is complete (config, weights, tokenizer)."""
    for model in spec.models:
        check_backbone(model, "--model", chat=bool(spec.prompt.chat))
    for encoder in spec.encoders:
        check_backbone(encoder, "--encoder")
    if spec.judge_model:
        check_backbone(spec.judge_model, "--judge-model")
    for method in methods:
        for where, backbone in method.backbone_specs().items():
            check_backbone(backbone, where)


def checked_methods(names: list[str], params: dict[str, dict]) -> list[Method]:
    """The configured methods; every parameter given is checked, also for a method that is not
    in the run (a preset's, or a mistake the CLI warns about)."""
    if not names:
        raise PromptworthError("--methods: no method given; `promptworth methods` lists them")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise PromptworthError(f"--methods: {', '.join(repeated)} given more than once")
    for name, given in params.items():
        method_class(name)  # an unknown method fails with the known ones
        make_method(name, **given)
    return [make_method(name, **params.get(name, {})) for name in names]


def at_least(flag: str, value: Any, minimum: int, hint: str = "") -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        hint = f" ({hint})" if hint else ""
        raise PromptworthError(
            f"{flag} {quoted(value)}: must be an integer of at least {minimum}{hint}"
        )


def check_counts(flag: str, values: list[int], minimum: int, what: str) -> None:
    """A non-empty list of distinct integers of at least `minimum`."""
    if not len(values):
        raise PromptworthError(f"{flag}: empty; give at least one {what}")
    for value in values:
        at_least(flag, value, minimum)
    repeated = sorted({v for v in values if list(values).count(v) > 1})
    if repeated:
        raise PromptworthError(f"{flag}: {', '.join(map(str, repeated))} given more than once")


def check_backbone_list(flag: str, specs: list[str], what: str) -> None:
    """At least one backbone, each once (as spelt canonically: `m/` and `m` are one model)."""
    if not specs:
        raise PromptworthError(f"{flag}: empty; give at least one {what}")
    repeated = sorted({spec for spec in specs if specs.count(spec) > 1})
    if repeated:
        raise PromptworthError(f"{flag}: {', '.join(repeated)} given more than once")


def check_prompt(prompt: PromptOptions) -> None:
    if isinstance(prompt.template, str):
        if not prompt.template.strip():
            raise PromptworthError("--template: empty; give an index or a template with slots")
    else:
        at_least("--template", prompt.template, 0)
    at_least("--max-text-tokens", prompt.max_text_tokens, 1)
    at_least("prompt batch_size", prompt.batch_size, 1)
    if prompt.predict not in PREDICT_MODES:
        raise PromptworthError(
            f"--predict {quoted(prompt.predict)}: choose one of {', '.join(PREDICT_MODES)}"
        )


def check_out(out: Path) -> None:
    """--out must be a directory that exists or can be made, be writable, and have no folder
    where a report file or the store goes."""
    if out.exists() and not out.is_dir():
        raise PromptworthError(f"--out {out}: is a file, not a directory")
    existing = next(p for p in (out, *out.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise PromptworthError(f"--out {out}: {existing} is a file, not a directory")
    try:  # only a write tells (root passes os.access, yet not in /proc or a read-only mount)
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise PromptworthError(
            f"--out {out}: {existing} is not writable ({error.strerror}); give another --out"
        ) from None
    check_writable_files(out, (*REPORT_FILES, "runs.sqlite"))
    if inside(out, "features").is_file():
        raise PromptworthError(f"--out {out}: features is a file, where promptworth keeps a folder")


def check_against_task(spec: SweepSpec, task: Task) -> None:
    check_template(spec.prompt.template, task)
    check_verbalizer(spec.prompt.verbalizer, task)
    check_sizes(task.train.labels, spec.sizes, spec.sampling)


def with_added_metrics(spec: SweepSpec, task: Task) -> Task:
    """The task scored also by the metrics of --add-metrics (a generation task only); refuses
    a --judge-model for a task no judge scores."""
    added = list(spec.add_metrics)
    if added and not task.generates:
        raise PromptworthError(
            f"--add-metrics {','.join(added)}: task {task.name!r} is a classification task; "
            "only generation tasks take text metrics"
        )
    for name in added:
        if name not in GENERATION_METRIC_NAMES:
            raise PromptworthError(
                f"--add-metrics {quoted(name)}: choose from {', '.join(GENERATION_METRIC_NAMES)}"
                f"{did_you_mean(str(name), GENERATION_METRIC_NAMES)}"
            )
    new = [name for name in dict.fromkeys(added) if name not in task.metrics]
    if new:
        task = dataclasses.replace(task, metrics=(*task.metrics, *new))
    if spec.judge_model and "judge" not in task.metrics:
        raise PromptworthError(
            f"--judge-model {spec.judge_model}: task {task.name!r} is not scored by the judge "
            "metric; add --add-metrics judge (or name judge in the task file's metrics)"
        )
    return task


def check_task_type(methods: list[Method], task: Task) -> None:
    """Each method can learn a task of this type (classification or generation)."""
    for method in methods:
        problem = method.task_problem(task)
        if problem:
            raise PromptworthError(f"--methods {method.name}: {problem}")


def check_template(choice: int | str, task: Task) -> None:
    """An index of one of the task's templates, or a literal template whose slots are the
    task's inputs."""
    if isinstance(choice, str):
        problem = task.template_problem(choice)
        if problem:
            raise PromptworthError(f"--template {quoted(choice)}: {problem}")
    elif choice >= len(task.templates):
        raise PromptworthError(
            f"--template {choice}: task {quoted(task.name)} has "
            f"{len(task.templates)} templates, 0 to {len(task.templates) - 1}"
        )


def check_verbalizer(verbalizer: tuple[tuple[str, tuple[str, ...]], ...], task: Task) -> None:
    """Each label named once and known, with non-blank words no other label has."""
    names = [label for label, _ in verbalizer]
    for label, words in verbalizer:
        flag = f"--verbalizer {label}={','.join(words)}"
        if label not in task.label_names:
            raise PromptworthError(
                f"{flag}: task {task.name!r} has no label {quoted(label)} (labels: "
                f"{', '.join(task.label_names)}){did_you_mean(label, task.label_names)}"
            )
        if names.count(label) > 1:
            raise PromptworthError(f"{flag}: label {quoted(label)} given more than once")
        if not words or not all(word.strip() for word in words):
            raise PromptworthError(f"{flag}: give one or more non-empty words, comma-separated")
    words = dict(verbalizer)
    merged = [list(words.get(n, v)) for n, v in zip(task.label_names, task.verbalizers)]
    problem = verbalizer_problem(task.label_names, merged)
    if problem:
        raise PromptworthError(f"--verbalizer: {problem}")


def check_compare(pair: tuple[str, str] | None, methods: list[str]) -> None:
    """--compare names two of `methods` (a variant such as `few-shot[k=8]` by its base name)."""
    for name in pair or ():
        if name.split("[")[0] not in methods:
            raise PromptworthError(
                f"--compare {','.join(pair)}: {quoted(name)} is not one of the methods "
                f"({', '.join(methods)})"
            )
