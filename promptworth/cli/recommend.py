"""`promptworth recommend`: the method to use for a scenario (labels, volume, latency, prices),
from an output directory's measured runs."""

from __future__ import annotations

import argparse

from promptworth.analysis.metrics import METRICS
from promptworth.cli.arguments import add_out_argument


def add_arguments(p: argparse.ArgumentParser) -> None:
    from promptworth.recommend.inputs import INPUTS, INTEGER_INPUTS, flag_name, help_text

    add_out_argument(p)
    scenario = p.add_argument_group("scenario")
    for declared in INPUTS:
        name, choices = declared.name, declared.metadata["choices"]
        if choices:
            scenario.add_argument(flag_name(name), dest=name, choices=choices, help=help_text(name))
            continue
        kind = int if name in INTEGER_INPUTS else float
        scenario.add_argument(
            flag_name(name), dest=name, type=kind, metavar="N", help=help_text(name)
        )
    p.add_argument(
        "--metric",
        choices=tuple(METRICS),
        help="what methods are read, ranked and --target given in (default: the headline "
        "metric of the report in OUT, else accuracy)",
    )
    p.add_argument("--json", action="store_true", help="print the recommendation as JSON")


def main(args: argparse.Namespace) -> int:
    import json

    from promptworth.recommend import Inputs, recommend
    from promptworth.recommend.inputs import INPUTS
    from promptworth.recommend.text import recommendation_lines
    from promptworth.report.outputs import recommend_metric, stored_rows

    inputs = Inputs.from_given(**{f.name: getattr(args, f.name) for f in INPUTS})
    rows = stored_rows(args.out)
    metric, notes = recommend_metric(args.out, args.metric)
    recommendation = recommend(rows, inputs, metric)
    recommendation.notes += notes
    if args.json:
        print(json.dumps(recommendation.to_json(), indent=2, ensure_ascii=False))
    else:
        print("\n".join(recommendation_lines(recommendation)).rstrip())
    return 0
