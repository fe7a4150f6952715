"""`promptworth run`: one sweep (every method x size x seed) into --out, then its report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from promptworth.cli.arguments import add_sweep_arguments
from promptworth.errors import PromptworthError
from promptworth.run.presets import PRESETS


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_sweep_arguments(p)


def main(args: argparse.Namespace) -> int:
    from promptworth.cli.report import measure_serving
    from promptworth.report.data import data_lines, sweep_profile
    from promptworth.report.outputs import print_summary, write_outputs
    from promptworth.report.saved import save_report_inputs
    from promptworth.run.runner import split_digest
    from promptworth.run.sweep import Sweep
    from promptworth.run.validate import check_compare

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
    planned = sweep.store.load([run.config.key() for run in plan])
    rows = measure_serving(sweep.store, planned, outliers_only=True)
    description = [
        f"- task: `{sweep.task.name}` ({sweep.task.version}); "
        f"test subset: {len(sweep.test_indices)} rows",
        *setup_lines(spec, sweep.placement),
        f"- prompt: template {sweep.spec.prompt.template!r} "
        f"`{sweep.task.template_for(sweep.spec.prompt.template)!r}`, "
        f"chat={chat_shown(plan)}, predict={spec.prompt.predict}",
        "",
        *data_lines([sweep_profile(sweep)]),
    ]
    outside = outside_plan_note(sweep.store, {key for key, _, _ in rows}, Path(spec.out))
    if rows:
        save_report_inputs(
            sweep.store,
            description + outside,
            [key for key, _, _ in rows],
            split_digest(sweep.test),
            sweep.test.texts,
            sweep.task.label_names,
        )
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


def build_spec(args: argparse.Namespace, task: str | None = None):
    """The SweepSpec of the flags; `task` for one task of a suite (which has no --task)."""
    from promptworth.run.sweep import SweepSpec

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
        models=given_or(args.models, [args.model]),
        encoders=given_or(args.encoders, [args.encoder]),
        methods=given_or(args.methods, preset["methods"]),
        method_params=params,
        sizes=given_or(args.sizes, preset["sizes"]),
        seeds=list(range(args.seeds)) if args.seeds is not None else preset["seeds"],
        test_size=test_size,
        sampling=args.sampling,
        dtype=args.dtype,
        prompt=prompt_options(args),
        out=args.out,
        test_file=getattr(args, "test_file", None),  # suite: each task has its own
        text_column=args.text_column,
        label_column=args.label_column,
        encoding=args.encoding,
        allow_overlap=args.allow_overlap,
        tune=args.tune,
        add_metrics=args.add_metrics,
        judge_model=args.judge_model,
        serve_dtypes=tuple(args.serve_dtype),
    )


def prompt_options(args: argparse.Namespace):
    """The PromptOptions of the prompt flags (arguments.add_prompt_arguments)."""
    from promptworth.methods.base import PromptOptions

    return PromptOptions(
        template=args.template,
        verbalizer=tuple(args.verbalizer),
        chat=args.chat,
        predict=args.predict,
        length_norm=args.length_norm,
        max_text_tokens=args.max_text_tokens,
    )


def given_or(value, default):
    return default if value is None else value


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
        f"- {backbones_text(spec.models, 'model')}; {backbones_text(spec.encoders, 'encoder')}; "
        f"device {placement.device}, "
        f"{placement.dtype}",
        f"- methods: {', '.join(spec.methods)}; sizes {spec.sizes}, {spec.sampling} subsets; "
        f"seeds {spec.seeds}",
    ]


def backbones_text(specs: list[str], kind: str) -> str:
    """`model: `m`` or `models: `a`, `b``, as the report's header names them."""
    return f"{kind}{'s' if len(specs) > 1 else ''}: " + ", ".join(f"`{s}`" for s in specs)


def print_failures(failures, with_task: bool = False) -> int:
    """Each failed or lost run on stderr (the task too, for a suite); the exit status."""
    from promptworth.run.sweep import label

    for run, error in failures:
        task = f"{run.config.task} " if with_task else ""
        print(f"FAILED {task}{label(run)}: {error}", file=sys.stderr)
    return 1 if failures else 0


def build_executor(args: argparse.Namespace):
    """The executor the flags ask for (None: this process); also refuses --mlflow without
    mlflow before anything is written."""
    from promptworth.run.executors import RayExecutor, RayOptions, require_extra

    if args.mlflow is not None:
        require_extra("mlflow")
    options = {  # the flag as the user typed it -> (RayOptions field, value)
        "--ray-address": ("address", args.ray_address),
        "--ray-timeout": ("timeout", args.ray_timeout),
        "--run-cpus": ("run_cpus", args.run_cpus),
        "--run-gpus": ("run_gpus", args.run_gpus),
    }
    given = {flag: option for flag, option in options.items() if option[1] is not None}
    if args.executor == "local":
        if given:
            raise PromptworthError(f"{', '.join(given)}: only with --executor ray")
        return None
    return RayExecutor(RayOptions(**dict(given.values())))


def build_tracker(args: argparse.Namespace, out: Path):
    """The MLflow tracker of --mlflow (None without it); made once the sweep's inputs passed,
    so a refused command writes nothing in --out."""
    from promptworth.report.tracking import Tracker

    return Tracker(out, args.mlflow or None) if args.mlflow is not None else None


def chat_shown(plan) -> str:
    """Whether the runs' prompts went through the chat template: one value, or per model when
    --chat left it to each model (a generation task on models with and without one)."""
    chats = {bool(run.config.prompt.chat) for run in plan}
    return str(chats.pop()) if len(chats) == 1 else "per model (its own template where it has one)"
