"""`promptworth predict`: label a CSV or JSONL file with a model `promptworth fit` wrote."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help="the model directory `promptworth fit --out` wrote")
    p.add_argument("input", type=Path, help="rows to label: a .csv, .tsv, .jsonl or .json file")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        help="the CSV to write: the input columns, `label` and p_LABEL per label "
        "(default: INPUT with .predictions.csv)",
    )
    p.add_argument(
        "--text-column",
        help="the input column of a one-input model (default: text); a model of several "
        "inputs reads the columns named as its inputs",
    )
    p.add_argument("--encoding", default="utf-8", help="of the input file (default: %(default)s)")
    p.add_argument(
        "--batch-size", type=int, default=64, help="rows predicted at a time (default: %(default)s)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    from promptworth.errors import PromptworthError
    from promptworth.methods.base import NO_LABEL
    from promptworth.run.deploy import (
        described_task,
        open_artifact,
        predict_rows,
        predictions_frame,
        read_inputs,
        restore,
    )

    if args.batch_size < 1:
        raise PromptworthError(f"--batch-size {args.batch_size}: must be at least 1")
    output = args.output or args.input.with_suffix(".predictions.csv")
    artifact = open_artifact(args.model)  # digests checked; no model loaded yet
    task = described_task(artifact.description["task"])
    frame, examples = read_inputs(args.input, task, args.text_column, args.encoding)
    deployed = restore(artifact)
    labels, probs = predict_rows(deployed, examples, args.batch_size, args.quiet)
    predictions_frame(frame, task, labels, probs).to_csv(output, index=False)
    unlabelled = int((labels == NO_LABEL).sum())
    if unlabelled:
        print(f"warning: {unlabelled} rows got an answer that names no label", file=sys.stderr)
    print(f"{len(labels)} rows labelled: {output}")
    return 0
