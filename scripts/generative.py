"""The generation benchmark: xsum, nq_open and asdiv x the generating methods x labelled-set
sizes (methods that train nothing run once, at 0), each task into its own resumable store, then
one table of every task's headline metric (mean over seeds, 95 % interval) and the share of
answers it could not read. A benchmark, not a test: it prints, it never asserts.

Usage (rerun the same command to resume):
    .venv/bin/python scripts/generative.py [--out results/generative] [--tasks xsum,nq_open,asdiv]
        [--methods zero-shot,few-shot,zs-cot,self-consistency,self-critique,sft-lora]
        [--sizes 10,100] [--seeds 2] [--test-size 200] [--add-metrics judge]
        [--judge-model MODEL]
(--add-metrics applies to xsum only, the task whose references a judge is checked against)

With the judge among xsum's metrics, the judge is then checked on Factual-Summary-Pairs
(`promptworth judge check`, into xsum's store) and judges zero-shot's answers against
sft-lora's in both orders (`promptworth judge pair`), each once: a rerun keeps what is there.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from promptworth.cli import main as promptworth
from promptworth.methods import REGISTRY
from promptworth.report.outputs import stored_rows, write_outputs
from promptworth.run.sweep import Sweep, SweepSpec

TASKS = ("xsum", "nq_open", "asdiv")
METHODS = ("zero-shot", "few-shot", "zs-cot", "self-consistency", "self-critique", "sft-lora")
# few-shot has no label probabilities to calibrate on a generation task; three votes per input
PARAMS = {"few-shot": {"calibrate": False}, "self-consistency": {"samples": 3}}
SIZES, SEEDS, TEST_SIZE = (10, 100), 2, 200  # labelled examples, seeds and test rows per task
JUDGED_TASK = "xsum"
JUDGED_PAIR = ("zero-shot", "sft-lora")  # the direct prompt against fine-tuning, judged


def run_task(task: str, args: argparse.Namespace) -> Path:
    out = args.out / task
    spec = SweepSpec(
        task=task,
        methods=list(args.methods),
        method_params={m: PARAMS[m] for m in args.methods if m in PARAMS},
        sizes=args.sizes,
        seeds=list(range(args.seeds)),
        test_size=args.test_size,
        out=out,
        add_metrics=args.add_metrics if task == JUDGED_TASK else [],
        judge_model=args.judge_model,
    )
    logging.info("== %s", task)
    Sweep(spec, quiet=True).execute()
    return out


def judge_the_judge(args: argparse.Namespace) -> None:
    """The judge's check and its pairwise verdicts on the judged task's store, once each."""
    from promptworth.run.judging import read_checks

    store = args.out / JUDGED_TASK
    judge = ["--judge-model", args.judge_model] if args.judge_model else []
    if not read_checks(store):
        logging.info("== the judge on Factual-Summary-Pairs")
        promptworth(["judge", "check", "--out", str(store), *judge])
    if set(JUDGED_PAIR) <= set(args.methods) and not list(store.glob("judge_pair_*.json")):
        logging.info("== the judge on %s vs %s", *JUDGED_PAIR)
        pair = ",".join(JUDGED_PAIR)
        promptworth(["judge", "pair", str(store), pair, "--task", JUDGED_TASK, *judge])


def task_table(task: str, out: Path) -> pd.DataFrame:
    """One row per (method, size) of `task`: the headline metric's summary and unparsed share."""
    written = write_outputs(stored_rows(out), out, [f"- generation benchmark: {task}"])
    metric = written["metric"]
    summary = pd.read_csv(out / "summary.csv").rename(
        columns={f"{metric}_{part}": part for part in ("mean", "ci_low", "ci_high")}
    )
    runs = written["frame"]
    unparsed = runs.groupby(["method", "n_train"])[f"{metric}_unparsed"].mean().rename("unparsed")
    summary = summary.join(unparsed, on=["method", "n_train"])
    return summary.assign(task=task, metric=metric)


def interval(row) -> str:
    return "—" if pd.isna(row.ci_low) else f"[{row.ci_low:.3f}, {row.ci_high:.3f}]"


def markdown(table: pd.DataFrame) -> str:
    lines = [
        "| task | metric | method | n | seeds | mean | 95 % interval | unparsed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in table.itertuples():
        lines.append(
            f"| {row.task} | {row.metric} | {row.method} | {row.n_train} | {row.n_seeds} | "
            f"{row.mean:.3f} | {interval(row)} | {row.unparsed:.0%} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/generative"))
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--seeds", type=int, default=SEEDS)
    parser.add_argument("--test-size", type=int, default=TEST_SIZE)
    parser.add_argument("--add-metrics", default="judge", help=f"{JUDGED_TASK}'s extra metrics")
    parser.add_argument("--judge-model", help="the judge metric's LM (default: the run's model)")
    args = parser.parse_args()
    args.add_metrics = [m for m in args.add_metrics.split(",") if m]
    args.tasks = args.tasks.split(",")
    args.methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in args.methods if m not in REGISTRY]
    if unknown:
        parser.error(f"--methods: unknown {', '.join(unknown)}")
    args.sizes = [int(n) for n in args.sizes.split(",")]
    if min(args.sizes) < 1:
        parser.error("--sizes: sizes of 1 or more (methods that train nothing run once)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    tables = [task_table(task, run_task(task, args)) for task in args.tasks]
    if JUDGED_TASK in args.tasks and "judge" in args.add_metrics:
        judge_the_judge(args)
    print(markdown(pd.concat(tables, ignore_index=True)))


if __name__ == "__main__":
    main()
