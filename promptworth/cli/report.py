"""`promptworth report` rewrites an output directory's report from its store; `promptworth
compare` prints the paired test of two methods in it."""

from __future__ import annotations

import argparse
import sys

from promptworth.cli.arguments import add_out_argument, add_report_arguments
from promptworth.errors import PromptworthError


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_out_argument(p)
    add_report_arguments(p)
    p.add_argument(
        "--measure-serving",
        action="store_true",
        help="first measure serving again (batch-1 latency, batched throughput, memory) for the "
        "runs the cost table reads that have no batch-1 latency, whose method's figure is over "
        "5x its family's or that were measured on a busy machine: each run's model is rebuilt "
        "from its stored config (retrained with its seed and training subset) and measured in a "
        "clean window; the run keeps its own figures",
    )


def main(args: argparse.Namespace) -> int:
    """Rewrite the output files from a store, e.g. after an interrupted sweep."""
    from promptworth.report.outputs import print_summary, write_outputs
    from promptworth.report.saved import saved_description
    from promptworth.run.validate import check_compare, check_out
    from promptworth.store.database import RunStore

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
    if args.measure_serving:
        rows = measure_serving(store, rows)
    configs = [config for _, config, _ in rows]
    check_compare(args.compare, sorted({c["method"] for c in configs}))
    check_out(args.out)  # writable, no folder where a report file goes
    # the sweep's own header when it covered exactly these runs: the report comes out the same
    description = saved_description(store, {key for key, _, _ in rows}) or [
        f"- rebuilt from `{database}`: {len(rows)} finished runs",
        f"- tasks: {', '.join(sorted({c['task'] for c in configs}))}; "
        f"models: {', '.join(sorted({c['model'] for c in configs}))}",
    ]
    failed = [(failure.config, failure.error) for failure in failures]
    written = write_outputs(rows, args.out, description, args.compare, failed, args.metric)
    print_summary(written, args.out)
    return 0


def measure_serving(store, rows: list, outliers_only: bool = False) -> list:
    """Measure again the serving of the runs `serving_targets` picks among `rows`, saying each
    on stderr; the rows as stored after."""
    from promptworth.recommend.outliers import serving_targets
    from promptworth.run.remeasure import remeasure

    targets = serving_targets(rows, outliers_only)
    if not targets:
        if not outliers_only:
            print("serving: nothing to measure again", file=sys.stderr)
        return rows
    remeasure(store, targets, say=lambda line: print(line, file=sys.stderr))
    return store.load([key for key, _, _ in rows])


def add_compare_arguments(p: argparse.ArgumentParser) -> None:
    add_out_argument(p)
    p.add_argument("--baseline", required=True, metavar="METHOD", help="the reference method")
    p.add_argument("--method", required=True, metavar="METHOD", help="the method to test")
    p.add_argument("--json", action="store_true", help="print the tests as JSON")


def compare(args: argparse.Namespace) -> int:
    from promptworth.report.outputs import compare_text

    print(compare_text(args.out, args.baseline, args.method, args.json))
    return 0
