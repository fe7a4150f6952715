"""Learning-curve scores in long format (method, seed, n_train, metric, value).

Two inputs are accepted and told apart by their columns: the long format itself (the Le Scao & Rush
reference files) and promptworth's wide ``results.csv`` (one row per run, one column per metric).
Every problem is raised as an :class:`AnalysisError` whose message can be shown to a user as is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from promptworth.analysis.metrics import METRICS
from promptworth.errors import PromptworthError

LONG_COLUMNS = ("method", "seed", "n_train", "metric", "value")
WIDE_KEYS = ("method", "n_train", "seed")
WIDE_METRICS = tuple(METRICS)
# Columns that must hold a single value for curves to be comparable; carried along when present.
GROUP_COLUMNS = ("task", "model")


class AnalysisError(PromptworthError, ValueError):
    """A problem with the data or the request, worded for the user (the CLI exits with code 2).
    Also a ValueError: the report catches it with the other ValueErrors of an estimate."""


def load_long(path: str | Path) -> pd.DataFrame:
    """Read a long-format or wide promptworth results CSV and return validated long format."""
    path = Path(path)
    raw = _read_csv(path)
    columns = set(raw.columns)
    if set(LONG_COLUMNS) <= columns:
        kept = [c for c in (*LONG_COLUMNS, *GROUP_COLUMNS) if c in columns]
        return _validated(raw[kept], source=path)
    if set(WIDE_KEYS) <= columns and columns & set(WIDE_METRICS):
        return _wide_to_long(raw, source=path)
    raise AnalysisError(f"{path}: {_missing_columns_message(columns)}")


def long_from_wide(df: pd.DataFrame) -> pd.DataFrame:
    """Convert in-memory promptworth results (one row per run) to validated long format."""
    columns = set(df.columns)
    if not (set(WIDE_KEYS) <= columns and columns & set(WIDE_METRICS)):
        raise AnalysisError(f"results table: {_missing_columns_message(columns)}")
    return _wide_to_long(df, source=None)


def select(
    long_df: pd.DataFrame, task: str | None = None, model: str | None = None
) -> pd.DataFrame:
    """Keep one task and/or model, so that curves from different set-ups are never mixed."""
    for column, wanted in (("task", task), ("model", model)):
        if wanted is None:
            continue
        if column not in long_df.columns:
            raise AnalysisError(f"--{column} given but the results have no '{column}' column")
        known = sorted(long_df[column].astype(str).unique())
        if wanted not in known:
            raise AnalysisError(f"unknown {column} '{wanted}'; known: {', '.join(known)}")
        long_df = long_df[long_df[column].astype(str) == wanted]
    return long_df


def check_single_group(long_df: pd.DataFrame) -> None:
    """Refuse results that mix tasks, or a method whose curve mixes models: neither is one
    experiment. Methods on different models may be compared (promptworth's results label each
    method with its model when a store holds several: `zero-shot[model=m]`)."""
    for column in GROUP_COLUMNS:
        if column not in long_df.columns:
            continue
        per_method = column == "model" and "method" in long_df.columns
        counts = long_df.groupby("method")[column].nunique() if per_method else None
        if long_df[column].nunique() > 1 and (counts is None or (counts > 1).any()):
            known = ", ".join(sorted(long_df[column].astype(str).unique()))
            raise AnalysisError(
                f"the results mix several {column}s ({known}); choose one with --{column}"
            )


def _read_csv(path: Path) -> pd.DataFrame:
    """Read every cell as text so that bad cells can be reported by line and column."""
    try:
        return pd.read_csv(path, dtype=str, skipinitialspace=True)
    except FileNotFoundError:
        raise AnalysisError(f"file not found: {path}") from None
    except IsADirectoryError:
        raise AnalysisError(f"{path} is a directory, not a CSV file") from None
    except pd.errors.EmptyDataError:
        raise AnalysisError(f"{path} is empty") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise AnalysisError(f"cannot read {path}: {exc}") from None


def _missing_columns_message(columns: set[str]) -> str:
    """Name the columns missing from whichever accepted format the table is closest to."""
    long_missing = [c for c in LONG_COLUMNS if c not in columns]
    wide_missing = [c for c in WIDE_KEYS if c not in columns]
    if not columns & set(WIDE_METRICS):
        wide_missing.append(" or ".join(WIDE_METRICS))
    missing = long_missing if len(long_missing) <= len(wide_missing) else wide_missing
    return (
        f"missing column(s): {', '.join(missing)} (expected long format "
        f"{','.join(LONG_COLUMNS)} or promptworth results with {', '.join(WIDE_KEYS)} "
        f"and {' and/or '.join(WIDE_METRICS)})"
    )


def _wide_to_long(wide: pd.DataFrame, source: Path | None) -> pd.DataFrame:
    """Melt one-row-per-run results; a run without a score for a metric has no point for it."""
    ids = ["_row", *(c for c in (*WIDE_KEYS, *GROUP_COLUMNS) if c in wide.columns)]
    metrics = [m for m in WIDE_METRICS if m in wide.columns]
    wide = wide.reset_index(drop=True)
    for metric in metrics:
        _numeric(wide[metric], metric, source, allow_missing=True)
    long = wide.assign(_row=wide.index).melt(
        id_vars=ids, value_vars=metrics, var_name="metric", value_name="value"
    )
    return _validated(long[long["value"].notna()], source=source)


def _validated(df: pd.DataFrame, source: Path | None) -> pd.DataFrame:
    """Check types and values column by column, naming the first offending row."""
    df = df.reset_index(drop=True)
    rows = df.pop("_row").to_numpy() if "_row" in df.columns else np.arange(len(df))
    out = pd.DataFrame(
        {
            "method": _text(df["method"], "method", source, rows),
            "seed": _seed(df["seed"], source, rows),
            "n_train": _sizes(df["n_train"], source, rows),
            "metric": _text(df["metric"], "metric", source, rows),
            "value": _numeric(df["value"], "value", source, rows=rows).astype(float),
        }
    )
    for column in GROUP_COLUMNS:
        if column in df.columns:
            out[column] = df[column].astype(str)
    if out.empty:
        where = source if source is not None else "results table"
        raise AnalysisError(f"{where}: no scores to analyse")
    return out


def _where(source: Path | None, row: int, column: str) -> str:
    """Locate a cell: by CSV line for files (header is line 1), by 1-based row in memory."""
    if source is None:
        return f"row {row + 1}, column '{column}'"
    return f"{source}, line {row + 2}, column '{column}'"


def _numeric(
    series: pd.Series,
    column: str,
    source: Path | None,
    allow_missing: bool = False,
    rows: np.ndarray | None = None,
) -> pd.Series:
    """Parse numbers; a non-numeric (or, unless allowed, empty) cell is an error naming it."""
    rows = np.arange(len(series)) if rows is None else rows
    values = pd.to_numeric(series, errors="coerce")
    bad = values.isna() & (series.notna() | (not allow_missing))
    bad |= ~np.isfinite(values.fillna(0.0).to_numpy(dtype=float))
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        cell = series.iloc[i]
        what = "is empty" if pd.isna(cell) else f"'{cell}' is not a finite number"
        raise AnalysisError(f"{_where(source, int(rows[i]), column)}: {what}")
    return values


def _text(series: pd.Series, column: str, source: Path | None, rows: np.ndarray) -> pd.Series:
    """Names (method, metric) must be present; they are compared as strings."""
    text = series.astype(str).str.strip()
    empty = series.isna().to_numpy() | (text == "").to_numpy()
    if empty.any():
        i = int(np.argmax(empty))
        raise AnalysisError(f"{_where(source, int(rows[i]), column)}: is empty")
    return text


def _seed(series: pd.Series, source: Path | None, rows: np.ndarray) -> pd.Series:
    """Seeds only identify runs: integers when they all are, otherwise their text."""
    text = _text(series, "seed", source, rows)
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().all() and (numbers == numbers.round()).all():
        return numbers.astype("int64")
    return text


def _sizes(series: pd.Series, source: Path | None, rows: np.ndarray) -> pd.Series:
    """Training-set sizes are non-negative counts (0 = no training data, e.g. zero-shot)."""
    sizes = _numeric(series, "n_train", source, rows=rows)
    negative = (sizes < 0).to_numpy()
    if negative.any():
        i = int(np.argmax(negative))
        raise AnalysisError(f"{_where(source, int(rows[i]), 'n_train')}: is negative")
    return sizes.astype("int64") if (sizes == sizes.round()).all() else sizes.astype(float)
