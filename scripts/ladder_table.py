"""The full-ladder table, computed from a store's results.csv (never typed in).

Usage: promptworth report OUT && python scripts/ladder_table.py OUT/results.csv [--readme README.md]
Prints the markdown table; with --readme, replaces the table between the `<!-- ladder-table -->`
markers of that file.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pandas as pd

SIZES = (10, 100, 1000)
# rows from cheapest to most expensive adaptation
LADDER = [
    *("zero-shot", "prompt-search", "few-shot", "features-lr", "head", "encoder-head"),
    *("encoder-ft", "prompt-tuning", "p-tuning", "prefix-tuning", "ia3", "prompt-lora"),
    *("qlora", "prompt-ft", "dpo", "distill"),
]
COSTS_AT = 1000  # the size whose costs the table shows (or the largest run), from its last seed
HEADER = (
    "| method | 10 labels | 100 labels | 1,000 labels | train s (10 / 100 / 1,000) "
    "| trainable params | artifact | eval ms/example | prompt tokens/example | peak RSS GB |"
)


def readable_name(method: str) -> str:
    """`few-shot[calibrate=True,selection=random]` → `few-shot (random k=4, calibrated)`."""
    match = re.fullmatch(r"few-shot\[calibrate=(\w+),selection=(\w+)\]", method)
    if not match:
        return method
    calibrate, selection = match.groups()
    label = "kNN" if selection == "knn" else selection
    return f"few-shot ({label} k=4{', calibrated' if calibrate == 'True' else ''})"


def accuracy_cell(runs: pd.DataFrame) -> str:
    if runs.empty:
        return "–"
    mean, n = runs["accuracy"].mean(), len(runs)
    if runs["n_train"].iloc[0] == 0:
        return f"{mean:.3f} (no labels)"
    return f"{mean:.3f} (1 seed)" if n == 1 else f"{mean:.3f} ± {runs['accuracy'].std():.3f}"


def size_bytes(n: float) -> str:
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def method_row(method: str, runs: pd.DataFrame) -> str:
    sizes = [0] if (runs["n_train"] == 0).all() else SIZES
    by_size = {n: runs[runs["n_train"] == n] for n in sizes}
    cells = [accuracy_cell(by_size[n]) for n in sizes] + [""] * (len(SIZES) - len(sizes))
    seconds = " / ".join(
        f"{by_size[n]['train_seconds'].median():.0f}" if len(by_size[n]) else "–" for n in sizes
    )
    costs_at = COSTS_AT if COSTS_AT in set(runs["n_train"]) else runs["n_train"].max()
    at = runs[runs["n_train"] == costs_at]
    at = at[at["seed"] == at["seed"].max()]  # one run's costs: the last seed, on the newest code
    tokens = at["prompt_tokens_per_example"].median()
    costs = [
        f"{at['trainable_params'].median():,.0f}",
        size_bytes(at["artifact_bytes"].median()),
        f"{at['eval_ms_per_example'].median():.0f}",
        "–" if pd.isna(tokens) else f"{tokens:.0f}",
        f"{at['peak_rss_mb'].median() / 1024:.1f}",
    ]
    return "| " + " | ".join([readable_name(method), *cells, seconds, *costs]) + " |"


def ladder_table(frame: pd.DataFrame) -> str:
    rank = {name: i for i, name in enumerate(LADDER)}
    order = sorted(set(frame["method"]), key=lambda m: (rank.get(m.split("[")[0], len(rank)), m))
    rows = [method_row(m, frame[frame["method"] == m]) for m in order]
    separator = "|" + "---|" * HEADER.count(" | ") + "---|"
    return "\n".join([HEADER, separator, *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_csv", type=Path)
    parser.add_argument("--readme", type=Path)
    args = parser.parse_args()
    table = ladder_table(pd.read_csv(args.results_csv))
    print(table)
    if args.readme:
        text = args.readme.read_text()
        start, end = "<!-- ladder-table -->\n", "<!-- /ladder-table -->"
        if start not in text or end not in text:
            raise SystemExit(f"{args.readme}: no {start.strip()} … {end} markers to replace")
        head, rest = text.split(start, 1)
        args.readme.write_text(head + start + table + "\n" + end + rest.split(end, 1)[1])


if __name__ == "__main__":
    main()
