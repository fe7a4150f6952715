"""``promptworth advantage``: how many data points a method is worth over a baseline.

Only the standard library is imported at module level so that ``--help`` stays fast; numpy,
pandas, scipy and matplotlib are imported inside :func:`main`.
"""

from __future__ import annotations

import argparse
import json

# Kept in step with promptworth.analysis.advantage.ESTIMATORS (a test checks it).
ESTIMATOR_CHOICES = ("accumulated-max", "seed-mean", "mean-bootstrap", "log-ratio", "all")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the subcommand's arguments on ``parser``."""
    parser.description = (
        "Average number of labeled data points METHOD saves over BASELINE to reach the same "
        "score (Le Scao & Rush 2021); positive means METHOD needs fewer labels."
    )
    parser.add_argument(
        "results",
        metavar="RESULTS.csv",
        help="long format (method,seed,n_train,metric,value) or promptworth results.csv",
    )
    parser.add_argument("--baseline", required=True, metavar="METHOD", help="reference method")
    parser.add_argument("--method", required=True, metavar="METHOD", help="method to value")
    parser.add_argument("--metric", help="metric to compare (default: the only one, else accuracy)")
    parser.add_argument(
        "--estimator",
        choices=ESTIMATOR_CHOICES,
        default="accumulated-max",
        help="accumulated-max is the paper's (default); seed-mean the same on the seed means, "
        "as the report's tables read them; all runs every one",
    )
    parser.add_argument(
        "--target",
        type=float,
        help="also report the labels each method needs to reach this score (default: none)",
    )
    parser.add_argument(
        "--task", help="keep only this task of a results.csv with several (default: all)"
    )
    parser.add_argument(
        "--model", help="keep only this model of a results.csv with several (default: all)"
    )
    parser.add_argument(
        "--plot",
        metavar="PNG",
        help="also save the learning-curve figure here (default: no figure)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def main(args: argparse.Namespace) -> int:
    """Run the analysis; user errors raise AnalysisError (a PromptworthError), which the CLI
    prints as one line with exit status 2.

    With ``--estimator all`` an estimator that cannot apply (e.g. log-ratio with a zero-shot
    method) is reported in place of its result; the command fails only if none applies.
    """
    from promptworth.analysis import advantage
    from promptworth.analysis.curves import AnalysisError, load_long, select

    check_request(args)
    names = advantage.ESTIMATORS if args.estimator == "all" else (args.estimator,)
    long_df = select(load_long(args.results), task=args.task, model=args.model)
    metric = advantage.resolve_metric(long_df, args.metric)
    results = {name: _estimate(long_df, metric, name, args) for name in names}
    if all(isinstance(r, AnalysisError) for r in results.values()):
        raise next(iter(results.values()))
    if args.plot:
        from promptworth.report.advantage_plot import plot_advantage

        plot_advantage(long_df, args.baseline, args.method, metric, args.plot)
    print(_as_json(results, args, metric) if args.json else _as_text(results))
    return 0


def check_request(args: argparse.Namespace) -> None:
    """The flags that need no data: a finite --target, a --plot file matplotlib can write."""
    import math
    from pathlib import Path

    from matplotlib.backend_bases import FigureCanvasBase

    from promptworth.analysis.curves import AnalysisError

    if args.target is not None and not math.isfinite(args.target):
        raise AnalysisError(f"--target {args.target}: expected a finite score")
    if args.plot:
        plot = Path(args.plot)
        formats = FigureCanvasBase.get_supported_filetypes()
        if plot.suffix.lstrip(".").lower() not in formats:
            raise AnalysisError(f"--plot {plot}: use a suffix of {', '.join(sorted(formats))}")
        if not plot.parent.is_dir():
            raise AnalysisError(f"--plot {plot}: no such directory {plot.parent}")


def _estimate(long_df, metric: str, name: str, args: argparse.Namespace):
    """One estimator's result, or the AnalysisError explaining why it does not apply."""
    from promptworth.analysis import advantage
    from promptworth.analysis.curves import AnalysisError

    try:
        return advantage.estimate(
            long_df, args.baseline, args.method, metric, name, target=args.target
        )
    except AnalysisError as exc:
        return exc


def _as_text(results: dict) -> str:
    """Paragraph per estimator; a failed estimator gets one line saying why."""
    from promptworth.analysis import advantage

    return "\n\n".join(
        f"{name}: not applicable: {r}" if isinstance(r, Exception) else advantage.describe(r)
        for name, r in results.items()
    )


def _as_json(results: dict, args: argparse.Namespace, metric: str) -> str:
    """One object: the estimate itself, or for ``all`` the common keys plus ``results``."""
    as_dicts = {
        name: {"estimator": name, "error": str(r)} if isinstance(r, Exception) else r.to_dict()
        for name, r in results.items()
    }
    if len(as_dicts) == 1:
        payload = next(iter(as_dicts.values()))
    else:
        common = {"method": args.method, "baseline": args.baseline, "metric": metric}
        payload = {"estimator": "all", **common, "results": as_dicts}
    return json.dumps(payload, indent=2, ensure_ascii=False)
