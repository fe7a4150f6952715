"""`promptworth suite`: the same sweep over several tasks into one store, then the cross-task
verdict (Le Scao & Rush's Table 1) and a report per task."""

from __future__ import annotations

import argparse
from pathlib import Path

from promptworth.cli.arguments import add_sweep_arguments
from promptworth.cli.run import build_spec, print_failures, setup_lines
from promptworth.errors import PromptworthError


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_sweep_arguments(p, suite=True)


def main(args: argparse.Namespace) -> int:
    from promptworth.cli.report import measure_serving
    from promptworth.report import suite as suite_report
    from promptworth.report.data import data_lines, sweep_profile
    from promptworth.report.outputs import report_metric, terminal_verdict
    from promptworth.run import suite
    from promptworth.run.validate import check_compare

    tasks = args.tasks
    suite.check_tasks(tasks)
    spec = build_spec(args, task=tasks[0])
    prompt_method = args.prompt_method or suite.default_prompt_method(spec.methods)
    if prompt_method not in spec.methods:
        raise PromptworthError(f"--prompt-method {prompt_method}: not in --methods")
    check_compare(args.compare, spec.methods)
    sweeps = suite.suite_sweeps(spec, tasks, quiet=args.quiet)  # every task checked first
    keys, failures = suite.run_suite(sweeps)
    measure_serving(sweeps[0].store, suite.finished_rows(sweeps, keys), outliers_only=True)
    rows = suite.finished_rows(sweeps, keys)
    metric = report_metric(rows, args.metric)
    description = [
        f"- tasks: {', '.join(f'`{s.task.name}` ({s.task.fingerprint})' for s in sweeps)}; "
        f"test subsets of at most {spec.test_size or 'all'} rows",
        *setup_lines(spec, sweeps[0].placement),
        f"- prompt: template {spec.prompt.template} of each task",
        f"- headline metric: {metric}",
    ]
    if rows:
        failed = [(run.config.to_dict(), error) for run, error in failures]
        written = suite_report.write_suite_outputs(
            rows,
            Path(spec.out),
            description,
            prompt_method,
            metric,
            args.compare,
            failed,
            data_lines([sweep_profile(sweep) for sweep in sweeps]),
        )
        table = suite_report.cross_task_lines(written["table"], prompt_method, metric)
        print("\n".join(table))
        for task, verdict in written["verdicts"].items():
            print(f"\n{task}:")
            print("\n".join(terminal_verdict(verdict)))
            print(f"Report: {written['reports'][task]}")
        print(f"\nReport: {written['files']['report']}")
    return print_failures(failures, with_task=True)
