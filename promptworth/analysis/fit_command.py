"""The `promptworth fit` command that trains a stored run's method again, on the user's labels:
the run's task, backbones, dtype, sampling, prompt options and every parameter that differs
from the method's default, at a given number of labels and the run's seed."""

from __future__ import annotations

import dataclasses
import json
import shlex
from typing import Any

from promptworth.methods import REGISTRY, method_class
from promptworth.methods.base import PromptOptions
from promptworth.tasks import BUILTIN_TASKS
from promptworth.tasks.subsets import DEFAULT_SAMPLING

MODEL_DIR = "MODEL/"  # the --out the command names: the user's choice


def param_text(value: Any) -> str:
    """A parameter value as --param reads it back (methods.base.convert)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def field_default(field: dataclasses.Field) -> Any:
    """A Config field's default, also where it is made by a factory ([] and {} defaults)."""
    if field.default is dataclasses.MISSING and field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def changed_params(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters that differ from the method's Config defaults (all of them for a method
    this version does not know)."""
    if method not in REGISTRY:
        return dict(params)
    defaults = {f.name: field_default(f) for f in dataclasses.fields(method_class(method).Config)}
    return {k: v for k, v in params.items() if k not in defaults or defaults[k] != v}


def prompt_flags(prompt: dict[str, Any]) -> list[str]:
    """The prompt flags of the options a run read (the others are not in its config)."""
    default, flags = PromptOptions(), []
    if prompt.get("template", default.template) != default.template:
        template = prompt["template"]
        shown = template.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
        flags += ["--template", shown if isinstance(template, str) else str(template)]
    for label, words in prompt.get("verbalizer", ()):
        flags += ["--verbalizer", f"{label}={','.join(words)}"]
    if prompt.get("chat"):
        flags.append("--chat")
    if prompt.get("predict", default.predict) != default.predict:
        flags += ["--predict", prompt["predict"]]
    if prompt.get("length_norm"):
        flags.append("--length-norm")
    if prompt.get("max_text_tokens", default.max_text_tokens) != default.max_text_tokens:
        flags += ["--max-text-tokens", str(prompt["max_text_tokens"])]
    return flags


def fit_argv(config: dict[str, Any], labels: int) -> list[str]:
    """The arguments of `promptworth fit` for the stored run `config` at `labels` labels (0:
    a method that trains on none)."""
    method = config["method"]
    argv = ["promptworth", "fit", "--task", config["task"], "--method", method]
    for key, value in changed_params(method, config.get("method_params", {})).items():
        argv += ["--param", f"{method}.{key}={param_text(value)}"]
    for flag in ("model", "encoder", "dtype"):  # absent only from stores older than the field
        argv += [f"--{flag}", config[flag]] if flag in config else []
    if labels:
        argv += ["--labels", str(labels), "--seed", str(config["seed"])]
        if config.get("sampling", DEFAULT_SAMPLING) != DEFAULT_SAMPLING:
            argv += ["--sampling", config["sampling"]]
    return [*argv, *prompt_flags(config.get("prompt", {})), "--out", MODEL_DIR]


def fit_command(config: dict[str, Any], labels: int) -> dict[str, Any]:
    """The command as a shell line and as arguments, and what it cannot say itself: a task
    read from files is named in the store only by its name. None for a method `fit` refuses
    (its fitted state has no saved form), with the reason in the note."""
    method = config["method"]
    params = config.get("method_params", {})
    unsaveable = method_class(method).unsaveable(params) if method in REGISTRY else None
    if unsaveable:  # `fit` would refuse it: no command that cannot run
        return {"command": None, "argv": None, "note": f"{method} cannot be kept: {unsaveable}"}
    argv = fit_argv(config, labels)
    note = None
    if config["task"] not in BUILTIN_TASKS:
        note = (
            f"task {config['task']!r} was read from files: give the same --task file (and "
            f"--test-file, if the sweep had one) as the sweep; its data version was "
            f"{config.get('task_version', 'not recorded')}"
        )
    return {"command": shlex.join(argv), "argv": argv, "note": note}
