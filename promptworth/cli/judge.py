"""`promptworth judge check` measures a judge on Factual-Summary-Pairs into OUT/judge_checks.json
(report.md shows it beside the scores that judge gave); `promptworth judge pair OUT A,B` judges
two methods' stored answers against each other in both orders
(docs/concepts/judging.md#llm-as-judge)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from promptworth.cli.arguments import add_out_argument, count, method_pair
from promptworth.errors import PromptworthError
from promptworth.run.presets import DEFAULT_OUT


def add_arguments(p: argparse.ArgumentParser) -> None:
    from promptworth.backbones import DEFAULT_CAUSAL_LM
    from promptworth.backbones.device import DTYPES

    commands = p.add_subparsers(dest="judge_command", metavar="{check,pair}")
    check = commands.add_parser(
        "check", help="the judge's accuracy on Factual-Summary-Pairs, into OUT/judge_checks.json"
    )
    check.add_argument(
        "--judge-model",
        default=DEFAULT_CAUSAL_LM,
        help="the causal LM to check: packaged alias, local directory or Hugging Face id "
        "(default: %(default)s)",
    )
    check.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="where to keep it (default: %(default)s)"
    )
    check.add_argument(
        "--limit", type=count, help="only the first N of the 371 pairs (default: all)"
    )
    check.set_defaults(handler=run_check)
    pair = commands.add_parser("pair", help="judge two methods' stored answers in both orders")
    add_out_argument(pair)
    pair.add_argument(
        "methods", type=method_pair, metavar="A,B", help="two methods as the report names them"
    )
    pair.add_argument("--task", required=True, help="the task the runs were scored on")
    pair.add_argument("--test-file", help="its test file, for a data-file task (default: none)")
    pair.add_argument("--judge-model", help="the judge (default: the runs' model, a self-judge)")
    for command in (check, pair):
        command.add_argument(
            "--dtype",
            default="auto",
            choices=DTYPES,
            help="the judge's precision (default: %(default)s, as runs choose it)",
        )
    pair.set_defaults(handler=run_pair)


def main(_: argparse.Namespace) -> int:
    raise PromptworthError("judge: give check or pair (promptworth judge --help)")


def run_check(args: argparse.Namespace) -> int:
    from promptworth.run.judging import run_check, save_check

    record = run_check(args.judge_model, args.dtype, args.limit)
    path = save_check(args.out, record)
    print(f"judge {record['judge']} ({record['dtype']}) on {record['set']}:")
    print(f"  pointwise yes/no accuracy {record['pointwise']['text']}")
    pairwise = record["pairwise"]
    print(f"  pairwise accuracy {pairwise['text']}; flip rate {pairwise['flip_rate']:.3f}")
    print(f"  {record['seconds']:.1f} s judging; kept in {path}")
    return 0


def run_pair(args: argparse.Namespace) -> int:
    from promptworth.analysis.results import method_labels
    from promptworth.report.outputs import stored_rows
    from promptworth.run.judging import compare_answers, loaded_judge, paired_runs

    rows = stored_rows(args.out)
    labels = method_labels([config for _, config, _ in rows])
    runs = {
        name: [(c, r) for (_, c, r), label in zip(rows, labels) if label == name]
        for name in args.methods
    }
    for name, found in runs.items():
        if not found:
            raise PromptworthError(
                f"{args.out}: no finished run of {name!r}; methods there: "
                f"{', '.join(sorted(set(labels)))}"
            )
        if "row_scores" not in found[0][1]:
            raise PromptworthError(f"{name}: its runs are not on a generation task")
    pairs = paired_runs(*runs.values())
    if not pairs:
        raise PromptworthError(
            f"{args.methods[0]} and {args.methods[1]}: no runs of the same size and seed to pair"
        )
    config = pairs[0][0][0]
    test = scored_test(args.task, args.test_file, config["test_size"], pairs)
    judge_spec = args.judge_model or config["model"]
    judge, _, placement = loaded_judge(judge_spec, args.dtype)
    compared = compare_answers(judge, test, pairs)
    self_judge = " (self-judge)" if judge_spec == config["model"] else ""
    a, b = args.methods
    print(f"judge {judge_spec}{self_judge}, {placement.dtype}: {a} (A) vs {b} (B), both orders")
    for found in compared:
        agreement = ", ".join(
            f"{metric} {'—' if k['kappa'] is None else format(k['kappa'], '.2f')} "
            f"({k['rows']} rows)"
            for metric, k in found["kappa_with"].items()
        )
        print(
            f"  n_train {found['n_train']}, seed {found['seed']}: A {found['a_wins']}, "
            f"B {found['b_wins']}, flipped {found['flipped']} of {found['rows']} "
            f"(flip rate {found['flip_rate']:.2f}); kappa with {agreement}"
        )
    path = args.out / f"judge_pair_{a}_vs_{b}.json".replace("/", "_")
    path.write_text(json.dumps({"judge": judge_spec, "pairs": compared}, indent=2))
    print(f"kept in {path}")
    return 0


def scored_test(task: str, test_file: str | None, test_size: int, pairs):
    """The test rows the paired runs were scored on, refused unless their digest matches."""
    from promptworth.run.runner import split_digest
    from promptworth.tasks import load_task
    from promptworth.tasks.subsets import fixed_test_indices

    loaded = load_task(task, test_file)
    test = loaded.test.subset(fixed_test_indices(len(loaded.test), test_size))
    digest = split_digest(test)
    for run_a, run_b in pairs:
        for _, result in (run_a, run_b):
            if result.get("test_digest") != digest:
                raise PromptworthError(
                    f"--task {task}: its test rows are not those the runs were scored on; give "
                    "the --task (and --test-file) of the run"
                )
    return test
