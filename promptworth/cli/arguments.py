"""The flags `run` and `suite` share, in the groups `--help` shows them in, and the value types
that turn a flag's text into a value (a bad value is a usage error naming the flag).

Choices that live in heavy modules (torch dtypes, predict modes) are imported inside the
functions, and only modules that import no torch or pandas: `--help` stays fast."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from promptworth.analysis.metrics import GENERATION_METRICS, METRICS
from promptworth.errors import quoted
from promptworth.run.presets import DEFAULT_OUT, DEFAULT_PRESET, PRESETS, preset_text


def int_list(value: str) -> list[int]:
    """Comma-separated integers; an empty value is an empty list, which the sweep refuses."""
    try:
        return [int(v) for v in value.split(",")] if value.strip() else []
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {quoted(value)}"
        ) from None


def name_list(value: str) -> list[str]:
    """Comma-separated names; an empty value is an empty list, which the sweep refuses."""
    return [name.strip() for name in value.split(",") if name.strip()]


def count(value: str) -> int:
    """A number of seeds: an integer of at least 1."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected an integer of at least 1, got {quoted(value)}")
    return number


def method_pair(value: str) -> tuple[str, str]:
    # Commas inside brackets belong to a variant's name: few-shot[calibrate=True,k=8]
    parts = [v.strip() for v in re.split(r",(?![^\[]*\])", value)]
    if len(parts) != 2 or not all(parts):
        raise argparse.ArgumentTypeError(f"expected BASELINE,METHOD, got {quoted(value)}")
    return parts[0], parts[1]


def parse_param(value: str) -> tuple[str, str, str]:
    """METHOD.KEY=VALUE; the method converts VALUE to the parameter's declared type."""
    try:
        target, raw = value.split("=", 1)
        method, key = target.split(".", 1)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected METHOD.KEY=VALUE, got {quoted(value)}"
        ) from None
    if not method.strip() or not key.strip():
        raise argparse.ArgumentTypeError(f"expected METHOD.KEY=VALUE, got {quoted(value)}")
    return method.strip(), key.strip(), raw


ESCAPES = {"n": "\n", "t": "\t", "\\": "\\"}


def template_choice(value: str) -> int | str:
    """--template: an index of the task's templates, or a literal template in which the shell's
    \\n, \\t and \\\\ are a newline, a tab and a backslash."""
    if value.strip().lstrip("-").isdigit():  # a negative index is refused by the sweep
        return int(value)
    return re.sub(r"\\(.)", lambda m: ESCAPES.get(m.group(1), m.group(0)), value)


def verbalizer_entry(value: str) -> tuple[str, tuple[str, ...]]:
    """--verbalizer LABEL=WORD[,WORD...]: the label's words, the first its primary one."""
    label, equals, words = value.partition("=")
    if not equals or not label.strip():
        raise argparse.ArgumentTypeError(f"expected LABEL=WORD[,WORD...], got {quoted(value)}")
    return label.strip(), tuple(word.strip() for word in words.split(","))


def preset_field_help(field: str) -> str:
    value = PRESETS[DEFAULT_PRESET][field]
    shown = ",".join(map(str, value)) if isinstance(value, list) else value
    return f"(default: the preset's; the {DEFAULT_PRESET} preset's is {shown})"


def add_experiment_arguments(p: argparse.ArgumentParser) -> None:
    from promptworth.methods.training import TUNE
    from promptworth.run.serve_dtype import SERVE_DTYPES
    from promptworth.tasks.subsets import DEFAULT_SAMPLING, SAMPLINGS

    group = p.add_argument_group("experiment")
    presets = "; ".join(f"{name!r} runs {preset_text(name)}" for name in PRESETS)
    group.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=DEFAULT_PRESET,
        help=f"starting point for methods, sizes, seeds and test size: {presets} "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--methods",
        type=name_list,
        help="comma-separated method names, see `promptworth methods` "
        + preset_field_help("methods"),
    )
    group.add_argument(
        "--sizes",
        type=int_list,
        help="training-set sizes, e.g. 10,32,100,320,1000 " + preset_field_help("sizes"),
    )
    group.add_argument(
        "--seeds",
        type=count,
        help="number of seeds (0..N-1), at least 1 (default: the preset's; the "
        f"{DEFAULT_PRESET} preset's is {len(PRESETS[DEFAULT_PRESET]['seeds'])})",
    )
    test = group.add_mutually_exclusive_group()
    test.add_argument(
        "--test-size", type=int, help="fixed test subset size " + preset_field_help("test_size")
    )
    test.add_argument("--full-test", action="store_true", help="evaluate on the whole test set")
    group.add_argument(
        "--sampling",
        choices=SAMPLINGS,
        default=DEFAULT_SAMPLING,
        help="nested subsets with classes as equal as each size allows, or a plain random draw "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--tune",
        choices=TUNE,
        help="learning-rate search of every gradient-trained method, per size and seed, on its "
        "dev split or k folds (default: each method's own, none)",
    )
    group.add_argument(
        "--serve-dtype",
        type=name_list,
        default=[],
        metavar="PRECISIONS",
        help=f"also serve each trained model at these precisions ({','.join(SERVE_DTYPES)}) "
        "and record score, paired test, latency and size; int8/nf4: pip install "
        "'promptworth[quantize]' (default: none)",
    )
    add_param_argument(
        group,
        "set a method parameter, repeatable; see `promptworth methods --params NAME` "
        "(default: the preset's, then each method's own)",
    )


def add_param_argument(group, help: str) -> None:
    """--param METHOD.KEY=VALUE, repeatable: `run`'s and `fit`'s."""
    group.add_argument(
        "--param",
        action="append",
        type=parse_param,
        default=[],
        metavar="METHOD.KEY=VALUE",
        help=help,
    )


def add_task_arguments(p: argparse.ArgumentParser, suite: bool) -> None:
    group = p.add_argument_group("task and data")
    if suite:
        group.add_argument(
            "--tasks",
            type=name_list,
            required=True,
            help="comma-separated tasks (built-in names, task files, data files or datasets "
            "names), e.g. sst2,trec (required)",
        )
        group.add_argument(
            "--prompt-method",
            help="the method whose worth the cross-task table gives (default: the first method "
            "in --methods, other than zero-shot, that trains on a prompt; else zero-shot)",
        )
    else:
        group.add_argument(
            "--task",
            default="ag_news",
            help="built-in task name, task file (YAML), CSV/JSONL/Parquet file, or a datasets "
            "name (default: %(default)s)",
        )
        group.add_argument(
            "--test-file", help="test rows for a data-file task (default: hold out 20%%)"
        )
    group.add_argument(
        "--text-column",
        default="text",
        help="the input column of a data file (default: %(default)s)",
    )
    group.add_argument(
        "--label-column",
        default="label",
        help="the label column of a data file (default: %(default)s)",
    )
    group.add_argument(
        "--encoding", default="utf-8", help="of the task's files (default: %(default)s)"
    )
    group.add_argument(
        "--allow-overlap",
        action="store_true",
        help="run even when over 1%% of the test texts are also training texts",
    )
    group.add_argument(
        "--add-metrics",
        type=name_list,
        default=[],
        metavar="METRICS",
        help="a generation task is scored also by these, comma-separated, of "
        f"{', '.join(GENERATION_METRICS)} (bertscore: with --encoder; judge: with --judge-model; "
        "default: none, the task's own)",
    )


def add_prompt_arguments(p: argparse.ArgumentParser) -> None:
    from promptworth.methods.base import PREDICT_MODES

    group = p.add_argument_group("prompt")
    group.add_argument(
        "--template",
        type=template_choice,
        default=0,
        help="index of the task's prompt template, or a template such as "
        '"Article: {text}\\nTopic:" (\\n is a newline; default: %(default)s)',
    )
    group.add_argument(
        "--verbalizer",
        action="append",
        type=verbalizer_entry,
        default=[],
        metavar="LABEL=WORD[,WORD...]",
        help="the words a label is read as, for this sweep (repeatable; first word primary; "
        "default: the task's)",
    )
    group.add_argument(
        "--chat",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="wrap prompts in the model's chat template (default: on for a generation task when "
        "the model has one, off for classification)",
    )
    group.add_argument(
        "--predict",
        choices=PREDICT_MODES,
        default="rank",
        help="rank classification or greedy generation + verbaliser (default: %(default)s)",
    )
    group.add_argument(
        "--length-norm",
        action="store_true",
        help="score multi-token labels by mean instead of summed log-probability",
    )
    group.add_argument(
        "--max-text-tokens",
        type=int,
        default=128,
        help="truncate each input to this many tokens (default: %(default)s, or the task's own "
        "budget where it has one, as xsum)",
    )


def add_model_arguments(p: argparse.ArgumentParser, several: bool = False) -> None:
    """--model and --encoder; with `several` (a sweep) also --models and --encoders, each
    exclusive with its one-backbone flag."""
    from promptworth.backbones import DEFAULT_CAUSAL_LM, DEFAULT_ENCODER
    from promptworth.backbones.device import DTYPES

    group = p.add_argument_group("models and device")
    for flag, default, what in (
        ("model", DEFAULT_CAUSAL_LM, "causal LM"),
        ("encoder", DEFAULT_ENCODER, "encoder"),
    ):
        one = group.add_mutually_exclusive_group() if several else group
        one.add_argument(
            f"--{flag}",
            default=default,
            help=f"{what}: packaged alias, local directory or Hugging Face id "
            "(default: %(default)s)",
        )
        if several:
            one.add_argument(
                f"--{flag}s",
                type=name_list,
                metavar="A,B,...",
                help=f"several {what}s in one sweep, each as --{flag} takes it (default: the one "
                f"--{flag}); the reports keep them apart (docs/how-to/gpus-and-larger-models.md"
                "#several-models-in-one-sweep)",
            )
    group.add_argument(
        "--judge-model",
        help="causal LM that judges answers for the judge metric: packaged alias, local "
        "directory or Hugging Face id (default: --model, flagged as a self-judge)",
    )
    group.add_argument(
        "--dtype",
        default="auto",
        choices=DTYPES,
        help="weights and compute precision; auto: bf16 where the device has bf16 units, "
        "else fp32 (default: %(default)s)",
    )


def add_output_arguments(p: argparse.ArgumentParser) -> None:
    from promptworth.store.database import DEFAULT_WAIT, WAIT_VARIABLE

    group = p.add_argument_group("output and report")
    group.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="output directory: store, report and figures; a store in it that another program "
        f"holds locked is waited for ${WAIT_VARIABLE} seconds, else {DEFAULT_WAIT:g} "
        "(default: %(default)s)",
    )
    add_report_arguments(group)
    group.add_argument("--quiet", action="store_true", help="plain logs, no progress bars")


def add_report_arguments(p) -> None:
    """How the report is written: the flags `run`, `suite` and `report` share."""
    p.add_argument(
        "--metric",
        choices=tuple(METRICS),
        help="headline score of the tables, curves, intervals, advantages and recommendation "
        "(macro_f1: mean F1 over the task's classes, for imbalanced tasks; default: accuracy, "
        "or a generation task's first metric)",
    )
    p.add_argument(
        "--compare",
        type=method_pair,
        metavar="BASELINE,METHOD",
        help="the two curves of the verdict figure (default: head vs the best method)",
    )


def add_scaling_arguments(p: argparse.ArgumentParser) -> None:
    """Where runs execute and where they are tracked: neither changes a result or a run key."""
    from promptworth.run.executors import DEFAULT_TIMEOUT, EXECUTORS, TIMEOUT_VARIABLE

    group = p.add_argument_group("scaling")
    group.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="run in this process or on Ray workers: pip install 'promptworth[ray]' "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--ray-address",
        help="join this Ray cluster (see `ray start --head`); default: a local Ray instance "
        "that starts and stops with the sweep",
    )
    group.add_argument(
        "--ray-timeout",
        type=float,
        metavar="SECONDS",
        help="give up joining --ray-address after this long, with one line (default: "
        f"${TIMEOUT_VARIABLE}, else {DEFAULT_TIMEOUT:g})",
    )
    group.add_argument(
        "--run-cpus", type=float, help="CPUs (and torch threads) per run on Ray (default: 1)"
    )
    group.add_argument(
        "--run-gpus",
        type=float,
        help="GPUs per run on Ray (default: 1 when the cluster has GPUs, else 0)",
    )
    group.add_argument(
        "--mlflow",
        nargs="?",
        const="",
        metavar="TRACKING_URI",
        help="log each finished run to MLflow (default without a URI: sqlite OUT/mlflow.db): "
        "pip install 'promptworth[mlflow]'",
    )


def add_sweep_arguments(p: argparse.ArgumentParser, suite: bool = False) -> None:
    """The flags of `run`; `suite` takes --tasks (several) instead of --task and runs locally."""
    add_experiment_arguments(p)
    add_task_arguments(p, suite)
    add_prompt_arguments(p)
    add_model_arguments(p, several=True)
    add_output_arguments(p)
    if not suite:
        add_scaling_arguments(p)


def add_out_argument(p: argparse.ArgumentParser) -> None:
    """OUT, the output directory a command reads: the one positional of report, compare and
    recommend."""
    p.add_argument("out", type=Path, help="the --out directory of a run or suite")
