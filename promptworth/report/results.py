"""The one-row-per-run results table, built from the store."""

from __future__ import annotations

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
    "run_key",
]


def results_frame(rows: list[tuple[str, dict, dict]]):
    """A pandas DataFrame with COLUMNS from the store's (key, config, result) rows."""
    import pandas as pd

    records = [
        {**config, **{k: v for k, v in result.items() if k != "predictions"}, "run_key": key}
        for key, config, result in rows
    ]
    frame = pd.DataFrame.from_records(records, columns=COLUMNS)
    return frame.sort_values(["method", "n_train", "seed"]).reset_index(drop=True)


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
