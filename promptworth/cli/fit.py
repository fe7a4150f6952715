"""`promptworth fit`: train one method on your labels, with the recipe a sweep ran, into a
model directory that `promptworth predict` uses (docs/how-to/deploy.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from promptworth.cli.arguments import (
    add_model_arguments,
    add_param_argument,
    add_prompt_arguments,
    add_task_arguments,
)
from promptworth.errors import PromptworthError


def label_count(value: str) -> int | str:
    """--labels: a number of labelled rows of at least 1, or `all`."""
    from promptworth.run.deploy import ALL_LABELS

    if value.strip() == ALL_LABELS:
        return ALL_LABELS
    if value.strip().isdigit() and int(value) >= 1:
        return int(value)
    raise argparse.ArgumentTypeError(f"expected a number of at least 1 or all, got {value!r}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from promptworth.tasks.subsets import DEFAULT_SAMPLING, SAMPLINGS

    group = p.add_argument_group("what to fit")
    group.add_argument("--method", required=True, help="the method, see `promptworth methods`")
    add_param_argument(
        group, "set a parameter of the method, repeatable (default: the method's own)"
    )
    group.add_argument(
        "--labels",
        type=label_count,
        metavar="N|all",
        help="train on the first N rows of the seed's nested subset, as the sweep's run at N "
        "labels did, or on all the training rows (default: none, for a method that trains on "
        "no labels; required for the others)",
    )
    group.add_argument(
        "--seed", type=int, default=0, help="the sweep seed to reproduce (default: %(default)s)"
    )
    group.add_argument(
        "--sampling",
        choices=SAMPLINGS,
        default=DEFAULT_SAMPLING,
        help="how the sweep drew its nested subsets (default: %(default)s)",
    )
    add_task_arguments(p, suite=False)
    add_prompt_arguments(p)
    add_model_arguments(p)
    p.add_argument(
        "--out", type=Path, required=True, help="the model directory to write (new or empty)"
    )


def main(args: argparse.Namespace) -> int:
    from promptworth.cli.run import prompt_options
    from promptworth.run.deploy import fit
    from promptworth.run.sweep import SweepSpec

    params = {}
    for method, key, value in args.param:
        if method != args.method:
            raise PromptworthError(f"--param {method}.{key}: the method fitted is {args.method}")
        if key in params:
            raise PromptworthError(f"--param {method}.{key} given more than once")
        params[key] = value
    spec = SweepSpec(
        task=args.task,
        models=[args.model],
        encoders=[args.encoder],
        methods=[args.method],
        method_params={args.method: params},
        sizes=[],
        seeds=[args.seed],
        sampling=args.sampling,
        dtype=args.dtype,
        prompt=prompt_options(args),
        test_file=args.test_file,
        text_column=args.text_column,
        label_column=args.label_column,
        encoding=args.encoding,
        allow_overlap=args.allow_overlap,
    )
    out = fit(spec, args.labels, args.out)
    print(f"model written to {out}; label new data with: promptworth predict {out} INPUT.csv")
    return 0
