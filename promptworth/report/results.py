"""The one-row-per-run results table, built from the store."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

COLUMNS = [
    "task",
    "model",
    "method",
    "n_train",
    "seed",
    "accuracy",
    "macro_f1",
    "n_test",
    "unmapped",
    "trainable_params",
    "total_params",
    "train_seconds",
    "train_examples",
    "train_tokens",
    "train_steps",
    "peak_rss_mb",
    "peak_gpu_mb",
    "eval_seconds",
    "eval_ms_per_example",
    "eval_examples_per_second",
    "prompt_tokens_per_example",
    "artifact_bytes",
    "device",
    "method_params",
    "run_key",
]


def results_frame(rows: list[tuple[str, dict, dict]]):
    """A pandas DataFrame with COLUMNS from the store's (key, config, result) rows."""
    import pandas as pd

    labels = method_labels([config for _, config, _ in rows])
    records = [
        {
            **config,
            **{k: v for k, v in result.items() if k != "predictions"},
            "method": label,
            "method_params": json.dumps(config.get("method_params", {}), sort_keys=True),
            "run_key": key,
        }
        for (key, config, result), label in zip(rows, labels)
    ]
    frame = pd.DataFrame.from_records(records, columns=COLUMNS)
    return frame.sort_values(["method", "n_train", "seed"]).reset_index(drop=True)


def method_labels(configs: list[dict]) -> list[str]:
    """Each run's method name, plus the parameters that tell its variants apart when one store
    holds a method under several parameter sets (few-shot random and kNN, say): their runs must
    not be averaged together. A method run with one parameter set keeps its plain name."""
    variants: dict[str, list[dict]] = defaultdict(list)
    for config in configs:
        params = config.get("method_params", {})
        if params not in variants[config["method"]]:
            variants[config["method"]].append(params)
    labels = []
    for config in configs:
        name, params = config["method"], config.get("method_params", {})
        seen = variants[name]
        differing = sorted({k for p in seen for k in p if any(q.get(k) != p[k] for q in seen)})
        shown = ",".join(f"{k}={params.get(k)}" for k in differing)
        labels.append(f"{name}[{shown}]" if len(seen) > 1 else name)
    return labels


def write_csv(frame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def summary_table(frame, metric: str = "accuracy"):
    """Mean ± std of `metric` per method and size (the table of the report and the terminal)."""
    grouped = frame.groupby(["method", "n_train"])[metric]
    table = grouped.agg(["mean", "std", "count"]).reset_index()
    table["cell"] = [
        f"{m:.3f}" if c < 2 else f"{m:.3f} ± {s:.3f}"
        for m, s, c in zip(table["mean"], table["std"].fillna(0), table["count"])
    ]
    return table.pivot(index="method", columns="n_train", values="cell").fillna("")
