"""The `promptworth` command: a thin layer over the library. Heavy imports happen inside commands,
so `--help` and `promptworth methods` never import torch.

A user error (PromptworthError, or a usage error argparse finds) is one line `promptworth: error:
...` and exit status 2; any other exception is a bug in promptworth: it keeps its traceback and
the exit status is 1.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import traceback
from pathlib import Path
from typing import NoReturn

from promptworth.errors import PromptworthError
from promptworth.methods.training import TUNE
from promptworth.subsets import DEFAULT_SAMPLING, SAMPLINGS

METRICS = ("accuracy", "macro_f1")  # the headline metrics a report can use (--metric)

PRESETS: dict[str, dict] = {
    # The main job (docs/get-started/quickstart.md#the-main-job).
    "default": {
        # Spent where it changes the answer, within about 20 minutes on 2 CPU cores:
        # 500 test rows (a 95 % interval of about ±4 points) and the two sizes where the ladder's
        # verdicts turn (10: prompting vs few labels; 100: fine-tuning takes over). prompt-lora
        # needs its 60 steps at 100 labels (30 left it at zero-shot's 0.69-0.70, 60 reached
        # 0.82), and each LM evaluation of 500 rows costs about a minute on 2 CPU cores,
        # so 2 seeds rather than 3, and 2-fold selection at 10 labels.
        "methods": ["zero-shot", "head", "prompt-lora", "features-lr", "encoder-ft"],
        "sizes": [10, 100],
        "seeds": [0, 1],
        "test_size": 500,
        "params": {
            "prompt-lora": {"max_steps": 60, "cv_folds": 2},
            "encoder-ft": {"cv_folds": 2},
        },
    },
    "smoke": {
        "methods": ["zero-shot", "head", "prompt-lora"],
        "sizes": [10, 32],
        "seeds": [0, 1],
        "test_size": 100,
        "params": {"prompt-lora": {"max_steps": 12, "cv_folds": 2}},
    },
    # The full experiment's sizes; hours on a CPU, minutes on a GPU.
    "full": {
        "methods": ["zero-shot", "head", "prompt-lora", "prompt-ft"],
        "sizes": [10, 32, 100, 320, 1000],
        "seeds": [0, 1, 2],
        "test_size": None,
        "params": {},
    },
}


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors read like every other user error: one line, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"promptworth: error: {message} (see `{self.prog} --help`)\n")


def int_list(value: str) -> list[int]:
    """Comma-separated integers; an empty value is an empty list, which the sweep refuses."""
    try:
        return [int(v) for v in value.split(",")] if value.strip() else []
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {value!r}"
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
        raise argparse.ArgumentTypeError(f"expected an integer of at least 1, got {value!r}")
    return number


def method_pair(value: str) -> tuple[str, str]:
    # Commas inside brackets belong to a variant's name: few-shot[calibrate=True,k=8]
    parts = [v.strip() for v in re.split(r",(?![^\[]*\])", value)]
    if len(parts) != 2 or not all(parts):
        raise argparse.ArgumentTypeError(f"expected BASELINE,METHOD, got {value!r}")
    return parts[0], parts[1]


def parse_param(value: str) -> tuple[str, str, str]:
    """METHOD.KEY=VALUE; the method converts VALUE to the parameter's declared type."""
    try:
        target, raw = value.split("=", 1)
        method, key = target.split(".", 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected METHOD.KEY=VALUE, got {value!r}") from None
    if not method.strip() or not key.strip():
        raise argparse.ArgumentTypeError(f"expected METHOD.KEY=VALUE, got {value!r}")
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
        raise argparse.ArgumentTypeError(f"expected LABEL=WORD[,WORD...], got {value!r}")
    return label.strip(), tuple(word.strip() for word in words.split(","))


def add_run_arguments(p: argparse.ArgumentParser, suite: bool = False) -> None:
    """The flags of `run`; `suite` takes --tasks (several) instead of --task."""
    from promptworth.backbones.device import DTYPES
    from promptworth.methods.base import PREDICT_MODES

    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="default",
        help="starting point for methods/sizes/seeds/test size (default: %(default)s)",
    )
    if suite:
        p.add_argument(
            "--tasks",
            type=name_list,
            required=True,
            help="comma-separated tasks (built-in names, files or datasets names), e.g. sst2,trec",
        )
        p.add_argument(
            "--prompt-method",
            help="the method whose worth the cross-task table gives (default: the first method "
            "in --methods, other than zero-shot, that trains on a prompt; else zero-shot)",
        )
    else:
        p.add_argument(
            "--task",
            default="ag_news",
            help="built-in task name, a CSV/JSONL/Parquet file, or a datasets name",
        )
        p.add_argument("--test-file", help="test rows for a file task (default: hold out 20%%)")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--encoding", default="utf-8", help="of the task's files (default: %(default)s)")
    p.add_argument(
        "--allow-overlap",
        action="store_true",
        help="run even when over 1%% of the test texts are also training texts",
    )
    p.add_argument(
        "--model",
        default="smollm2-135m-instruct",
        help="causal LM: packaged alias, local directory or Hugging Face id",
    )
    p.add_argument(
        "--encoder",
        default="all-minilm-l6-v2",
        help="encoder: packaged alias, local directory or Hugging Face id",
    )
    p.add_argument(
        "--methods", type=name_list, help="comma-separated method names (see `promptworth methods`)"
    )
    p.add_argument("--sizes", type=int_list, help="training-set sizes, e.g. 10,32,100,320,1000")
    p.add_argument("--seeds", type=count, help="number of seeds (0..N-1), at least 1")
    test = p.add_mutually_exclusive_group()
    test.add_argument("--test-size", type=int, help="fixed test subset size (default: preset's)")
    test.add_argument("--full-test", action="store_true", help="evaluate on the whole test set")
    p.add_argument(
        "--sampling",
        choices=SAMPLINGS,
        default=DEFAULT_SAMPLING,
        help="nested subsets with classes as equal as each size allows, or a plain random draw",
    )
    p.add_argument(
        "--tune",
        choices=TUNE,
        help="learning-rate search of every gradient-trained method, per size and seed, on its "
        "dev split or k folds (default: each method's own, none)",
    )
    p.add_argument(
        "--template",
        type=template_choice,
        default=0,
        help="index of the task's prompt template, or a template such as "
        '"Article: {text}\\nTopic:" (\\n is a newline)',
    )
    p.add_argument(
        "--verbalizer",
        action="append",
        type=verbalizer_entry,
        default=[],
        metavar="LABEL=WORD[,WORD...]",
        help="the words a label is read as, for this sweep (repeatable; first word primary)",
    )
    p.add_argument("--chat", action="store_true", help="wrap prompts in the model's chat template")
    p.add_argument(
        "--predict",
        choices=PREDICT_MODES,
        default="rank",
        help="rank classification (default) or greedy generation + verbaliser",
    )
    p.add_argument(
        "--length-norm",
        action="store_true",
        help="score multi-token labels by mean instead of summed log-probability",
    )
    p.add_argument("--max-text-tokens", type=int, default=128, help="truncate inputs to this")
    p.add_argument("--dtype", default="auto", choices=DTYPES)
    p.add_argument(
        "--param",
        action="append",
        type=parse_param,
        default=[],
        metavar="METHOD.KEY=VALUE",
        help="set a method parameter (repeatable)",
    )
    p.add_argument("--out", type=Path, default=Path("promptworth-out"), help="output directory")
    add_report_arguments(p)
    p.add_argument("--quiet", action="store_true", help="plain logs, no progress bars")
    add_executor_arguments(p)


def add_report_arguments(p: argparse.ArgumentParser) -> None:
    """How the report is written: the flags `run`, `suite` and `report` share."""
    p.add_argument(
        "--metric",
        choices=METRICS,
        default="accuracy",
        help="headline score of the tables, curves, intervals, advantages and recommendation "
        "(macro_f1: mean F1 over the task's classes, for imbalanced tasks; default: %(default)s)",
    )
    p.add_argument(
        "--compare",
        type=method_pair,
        metavar="BASELINE,METHOD",
        help="the two curves of the verdict figure (default: head vs the best method)",
    )


def add_out_argument(p: argparse.ArgumentParser) -> None:
    """OUT, the output directory a command reads: the one positional of report, compare and
    recommend."""
    p.add_argument("out", type=Path, help="the --out directory of a run")


def add_executor_arguments(p: argparse.ArgumentParser) -> None:
    """Where runs execute and where they are tracked: neither changes a result or a run key."""
    from promptworth.executors import EXECUTORS

    p.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="run in this process (default) or on Ray workers: pip install 'promptworth[ray]'",
    )
    p.add_argument(
        "--ray-address",
        help="join this Ray cluster (see `ray start --head`); default: a local Ray instance "
        "that starts and stops with the sweep",
    )
    p.add_argument("--run-cpus", type=float, help="CPUs (and torch threads) per run (default 1)")
    p.add_argument(
        "--run-gpus", type=float, help="GPUs per run (default: 1 when the cluster has GPUs)"
    )
    p.add_argument(
        "--mlflow",
        nargs="?",
        const="",
        metavar="TRACKING_URI",
        help="log each finished run to MLflow (default store: sqlite OUT/mlflow.db): "
        "pip install 'promptworth[mlflow]'",
    )


def build_spec(args: argparse.Namespace, task: str | None = None):
    """The SweepSpec of the flags; `task` for one task of a suite (which has no --task)."""
    from promptworth.methods.base import PromptOptions
    from promptworth.sweep import SweepSpec

    preset = PRESETS[args.preset]
    params: dict[str, dict] = {k: dict(v) for k, v in preset["params"].items()}
    given = [f"{method}.{key}" for method, key, _ in args.param]
    repeated = sorted({name for name in given if given.count(name) > 1})
    if repeated:
        raise PromptworthError(f"--param {', '.join(repeated)} given more than once")
    for method, key, value in args.param:
        params.setdefault(method, {})[key] = value
    # A given value, even an empty one (which the sweep refuses), never falls back to the preset.
    test_size = None if args.full_test else given_or(args.test_size, preset["test_size"])
    return SweepSpec(
        task=task if task is not None else args.task,
        model=args.model,
        encoder=args.encoder,
        methods=given_or(args.methods, preset["methods"]),
        method_params=params,
        sizes=given_or(args.sizes, preset["sizes"]),
        seeds=list(range(args.seeds)) if args.seeds is not None else preset["seeds"],
        test_size=test_size,
        sampling=args.sampling,
        dtype=args.dtype,
        prompt=PromptOptions(
            template=args.template,
            verbalizer=tuple(args.verbalizer),
            chat=args.chat,
            predict=args.predict,
            length_norm=args.length_norm,
            max_text_tokens=args.max_text_tokens,
        ),
        out=args.out,
        test_file=getattr(args, "test_file", None),  # suite: each task has its own
        text_column=args.text_column,
        label_column=args.label_column,
        encoding=args.encoding,
        allow_overlap=args.allow_overlap,
        tune=args.tune,
    )


def given_or(value, default):
    return default if value is None else value


def cmd_run(args: argparse.Namespace) -> int:
    from promptworth.outputs import print_summary, write_outputs
    from promptworth.report.data import data_lines, sweep_profile
    from promptworth.sweep import Sweep
    from promptworth.validate import check_compare

    spec = build_spec(args)
    check_compare(args.compare, spec.methods)
    # refuses every bad input before any model loads
    sweep = Sweep(spec, quiet=args.quiet, executor=build_executor(args))
    # Only the user's own --param can be a mistake; a preset's defaults for absent methods are not.
    unknown_params = sorted({method for method, _, _ in args.param} - set(spec.methods))
    if unknown_params:
        print(
            f"warning: --param for methods not in this run: {', '.join(unknown_params)}",
            file=sys.stderr,
        )
    tracker = build_tracker(args, spec.out)
    plan, failures = sweep.execute(tracker)
    rows = sweep.store.load([run.config.key() for run in plan])
    description = [
        f"- task: `{sweep.task.name}` ({sweep.task.version}); "
        f"test subset: {len(sweep.test_indices)} rows",
        *setup_lines(spec, sweep.placement),
        f"- prompt: template {sweep.spec.prompt.template!r} "
        f"`{sweep.task.template_for(sweep.spec.prompt.template)!r}`, "
        f"chat={spec.prompt.chat}, predict={spec.prompt.predict}",
        "",
        *data_lines([sweep_profile(sweep)]),
    ]
    outside = outside_plan_note(sweep.store, {key for key, _, _ in rows}, Path(spec.out))
    if rows:
        failed = [(run.config.to_dict(), error) for run, error in failures]
        result = write_outputs(
            rows, Path(spec.out), description + outside, args.compare, failed, args.metric
        )
        print_summary(result, Path(spec.out))
        for line in outside:
            print(line.removeprefix("- "))
        if tracker is not None:
            tracker.log_report(rows, result["files"])
    if tracker is not None:
        tracker.close()
    return print_failures(failures)


def outside_plan_note(store, planned: set[str], out: Path) -> list[str]:
    """A run writes the outputs of its own plan (`planned`: its finished run keys); say so when
    the store holds more, since the outputs it replaces may have covered them."""
    n_outside = len(store.finished_keys() - planned)
    if not n_outside:
        return []
    return [
        f"- this report covers this sweep's {len(planned)} finished runs; "
        f"`{out}/runs.sqlite` holds {n_outside} more (other methods, sizes, seeds or settings): "
        f"`promptworth report {out}` reports them all"
    ]


def setup_lines(spec, placement) -> list[str]:
    """The report description's model and methods lines, the same for `run` and `suite`."""
    return [
        f"- model: `{spec.model}`; encoder: `{spec.encoder}`; device {placement.device}, "
        f"{placement.dtype}",
        f"- methods: {', '.join(spec.methods)}; sizes {spec.sizes}, {spec.sampling} subsets; "
        f"seeds {spec.seeds}",
    ]


def cmd_suite(args: argparse.Namespace) -> int:
    from promptworth import suite
    from promptworth.report.data import data_lines, sweep_profile
    from promptworth.validate import check_compare

    if args.executor != "local" or args.mlflow is not None:
        raise PromptworthError(
            "--executor ray and --mlflow are for `promptworth run`: run the suite locally, "
            "or each task with `promptworth run --task NAME --executor ray`"
        )
    tasks = args.tasks
    suite.check_tasks(tasks)
    spec = build_spec(args, task=tasks[0])
    prompt_method = args.prompt_method or suite.default_prompt_method(spec.methods)
    if prompt_method not in spec.methods:
        raise PromptworthError(f"--prompt-method {prompt_method}: not in --methods")
    check_compare(args.compare, spec.methods)
    sweeps = suite.suite_sweeps(spec, tasks, quiet=args.quiet)  # every task checked first
    keys, failures = suite.run_suite(sweeps)
    rows = suite.finished_rows(sweeps, keys)
    description = [
        f"- tasks: {', '.join(f'`{s.task.name}` ({s.task.fingerprint})' for s in sweeps)}; "
        f"test subsets of at most {spec.test_size or 'all'} rows",
        *setup_lines(spec, sweeps[0].placement),
        f"- prompt: template {spec.prompt.template} of each task",
        f"- headline metric: {args.metric}",
    ]
    if rows:
        failed = [(run.config.to_dict(), error) for run, error in failures]
        written = suite.write_suite_outputs(
            rows,
            Path(spec.out),
            description,
            prompt_method,
            args.metric,
            args.compare,
            failed,
            data_lines([sweep_profile(sweep) for sweep in sweeps]),
        )
        print("\n".join(suite.cross_task_lines(written["table"], prompt_method, args.metric)))
        print(f"\nReport: {written['files']['report']}")
    return print_failures(failures, with_task=True)


def print_failures(failures, with_task: bool = False) -> int:
    """Each failed or lost run on stderr (the task too, for a suite); the exit status."""
    from promptworth.sweep import label

    for run, error in failures:
        task = f"{run.config.task} " if with_task else ""
        print(f"FAILED {task}{label(run)}: {error}", file=sys.stderr)
    return 1 if failures else 0


def build_executor(args: argparse.Namespace):
    """The executor the flags ask for (None: this process); also refuses --mlflow without
    mlflow before anything is written."""
    from promptworth.executors import RayExecutor, RayOptions, require_extra

    if args.mlflow is not None:
        require_extra("mlflow")
    given = {"address": args.ray_address, "run_cpus": args.run_cpus, "run_gpus": args.run_gpus}
    given = {name: value for name, value in given.items() if value is not None}
    if args.executor == "local":
        if given:
            flags = ", ".join(f"--{name.replace('_', '-')}" for name in given)
            raise PromptworthError(f"{flags}: only with --executor ray")
        return None
    return RayExecutor(RayOptions(**given))


def build_tracker(args: argparse.Namespace, out: Path):
    """The MLflow tracker of --mlflow (None without it); made once the sweep's inputs passed,
    so a refused command writes nothing in --out."""
    from promptworth.tracking import Tracker

    return Tracker(out, args.mlflow or None) if args.mlflow is not None else None


def cmd_methods(_: argparse.Namespace) -> int:
    from promptworth.methods import REGISTRY

    width = max(map(len, REGISTRY))
    for name, (_, summary) in REGISTRY.items():
        print(f"{name:<{width}}  {summary}")
    print("\nParameters: `promptworth methods --params NAME`, set with --param NAME.KEY=VALUE")
    return 0


def cmd_method_params(args: argparse.Namespace) -> int:
    from dataclasses import fields

    from promptworth.methods import method_class

    cls = method_class(args.params)
    print(f"{cls.name}: {cls.summary}")
    defaults = cls.Config()  # fields with a default_factory have no plain `default`
    for f in fields(cls.Config):
        print(f"  {f.name} = {getattr(defaults, f.name)!r}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Rewrite the output files from a store, e.g. after an interrupted sweep."""
    from promptworth.outputs import print_summary, write_outputs
    from promptworth.store import RunStore
    from promptworth.validate import check_compare

    database = args.out / "runs.sqlite"
    if not database.is_file():
        raise PromptworthError(
            f"{args.out}: no runs.sqlite here; give the --out directory of a run"
        )
    store = RunStore(database)
    rows, failures = store.load(), store.failures()
    for failure in failures:
        c = failure.config
        print(
            f"FAILED {c['method']} n={c['n_train']} seed={c['seed']}: {failure.error}",
            file=sys.stderr,
        )
    if not rows:
        raise PromptworthError(f"{database} holds no finished run yet")
    configs = [config for _, config, _ in rows]
    check_compare(args.compare, sorted({c["method"] for c in configs}))
    description = [
        f"- rebuilt from `{database}`: {len(rows)} finished runs",
        f"- tasks: {', '.join(sorted({c['task'] for c in configs}))}; "
        f"models: {', '.join(sorted({c['model'] for c in configs}))}",
    ]
    failed = [(failure.config, failure.error) for failure in failures]
    written = write_outputs(rows, args.out, description, args.compare, failed, args.metric)
    print_summary(written, args.out)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from promptworth.outputs import compare_text

    print(compare_text(args.out, args.baseline, args.method, args.json))
    return 0


def add_recommend_arguments(p: argparse.ArgumentParser) -> None:
    from promptworth.recommend.inputs import HELP, INTEGER_INPUTS, flag_name

    add_out_argument(p)
    for name, text in HELP.items():
        kind = int if name in INTEGER_INPUTS else float
        p.add_argument(flag_name(name), dest=name, type=kind, metavar="N", help=text)
    p.add_argument(
        "--metric",
        choices=METRICS,
        help="what methods are read, ranked and --target given in (default: the headline "
        "metric of the report in OUT, else accuracy)",
    )
    p.add_argument("--json", action="store_true", help="print the recommendation as JSON")


def cmd_recommend(args: argparse.Namespace) -> int:
    """The recommended method for a scenario, from the store's measured runs."""
    import json

    from promptworth.outputs import recommend_metric, stored_rows
    from promptworth.recommend import Inputs, recommend
    from promptworth.recommend.inputs import HELP
    from promptworth.recommend.text import recommendation_lines

    inputs = Inputs.from_given(**{name: getattr(args, name) for name in HELP})
    rows = stored_rows(args.out)
    metric, notes = recommend_metric(args.out, args.metric)
    recommendation = recommend(rows, inputs, metric)
    recommendation.notes += notes
    if args.json:
        print(json.dumps(recommendation.to_json(), indent=2, ensure_ascii=False))
    else:
        print("\n".join(recommendation_lines(recommendation)).rstrip())
    return 0


def cmd_tasks(_: argparse.Namespace) -> int:
    from promptworth.tasks import BUILTIN_TASKS

    for name, (_, description) in BUILTIN_TASKS.items():
        print(f"{name}  {description}")
    print("\nAlso: a CSV/JSONL/Parquet file (--text-column, --label-column) or a datasets name.")
    return 0


def cmd_tasks_new(args: argparse.Namespace) -> int:
    from promptworth.tasks.taskfile import starter_yaml

    text = starter_yaml(args.data, args.text_column, args.label_column, args.out, args.encoding)
    if args.out == "-":
        print(text, end="")
        return 0
    if Path(args.out).exists() and not args.force:
        raise PromptworthError(f"-o {args.out}: exists; give another name or --force")
    Path(args.out).write_text(text, encoding="utf-8")
    print(
        f"wrote {args.out}: edit its verbaliser words and templates, then "
        f"`promptworth tasks show {args.out}`"
    )
    return 0


def cmd_tasks_show(args: argparse.Namespace) -> int:
    from promptworth.tasks import load_task
    from promptworth.tasks.describe import describe

    print(describe(load_task(args.task)))
    return 0


def add_tasks_commands(tasks: argparse.ArgumentParser) -> None:
    """`tasks` lists the built-in tasks; `tasks new` and `tasks show` write and check one."""
    commands = tasks.add_subparsers(dest="tasks_command")
    new = commands.add_parser("new", help="write a starting task file (YAML) from a data file")
    new.add_argument("data", help="a .csv .tsv .jsonl .json or .parquet file")
    new.add_argument("--text-column", default="text")
    new.add_argument("--label-column", default="label")
    new.add_argument("--encoding", default="utf-8")
    new.add_argument("-o", "--out", default="task.yaml", help="the task file ('-': print it)")
    new.add_argument("--force", action="store_true", help="overwrite an existing task file")
    new.set_defaults(handler=cmd_tasks_new)
    show = commands.add_parser("show", help="labels, counts, templates and a rendered prompt")
    show.add_argument("task", help="a built-in task name, a task file or a data file")
    show.set_defaults(handler=cmd_tasks_show)


def build_parser() -> argparse.ArgumentParser:
    from promptworth.analysis import advantage_cli

    parser = Parser(
        prog="promptworth",
        description="Prompt or fine-tune? Learning curves, data-point advantage and costs of "
        "LM adaptation methods.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a sweep (default: the embedded AG News experiment)")
    add_run_arguments(run)
    run.set_defaults(handler=cmd_run)
    adv = commands.add_parser(
        "advantage", help="how many data points one method is worth over another"
    )
    advantage_cli.add_arguments(adv)
    adv.set_defaults(handler=advantage_cli.main)
    methods = commands.add_parser("methods", help="list the adaptation methods")
    methods.add_argument("--params", metavar="NAME", help="show one method's parameters")
    methods.set_defaults(handler=lambda a: cmd_method_params(a) if a.params else cmd_methods(a))
    suite = commands.add_parser(
        "suite", help="the same sweep over several tasks, then the cross-task verdict"
    )
    add_run_arguments(suite, suite=True)
    suite.set_defaults(handler=cmd_suite)
    report = commands.add_parser("report", help="rewrite the report of an output directory")
    add_out_argument(report)
    add_report_arguments(report)
    report.set_defaults(handler=cmd_report)
    compare = commands.add_parser("compare", help="paired accuracy test of two methods")
    add_out_argument(compare)
    compare.add_argument("--baseline", required=True, metavar="METHOD")
    compare.add_argument("--method", required=True, metavar="METHOD")
    compare.add_argument("--json", action="store_true", help="print the tests as JSON")
    compare.set_defaults(handler=cmd_compare)
    recommend = commands.add_parser(
        "recommend", help="which method to use for a scenario, with costs and break-even"
    )
    add_recommend_arguments(recommend)
    recommend.set_defaults(handler=cmd_recommend)
    tasks = commands.add_parser("tasks", help="list the built-in tasks")
    tasks.set_defaults(handler=cmd_tasks)
    add_tasks_commands(tasks)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit:  # --help (0) or a usage error (2), already printed
        return exit.code if isinstance(exit.code, int) else 2
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    quiet_libraries()
    try:
        return args.handler(args)
    except PromptworthError as error:
        print(f"promptworth: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    except Exception:
        traceback.print_exc()
        print(
            "promptworth: internal error: this is a bug in promptworth; please report it with "
            "the traceback above",
            file=sys.stderr,
        )
        return 1


def quiet_libraries() -> None:
    """Keep transformers' per-load progress bars and advice out of the user's terminal."""
    import os

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


if __name__ == "__main__":
    sys.exit(main())
