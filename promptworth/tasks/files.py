"""Tasks from a user's own data: CSV, JSONL or Parquet files, or a `datasets` name."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from promptworth.tasks.base import Split, Task

GENERIC_TEMPLATES = [
    "Text: {text}\nLabel:",
    "{text}\nThe category of this text is",
]
READERS = {
    ".csv": "read_csv",
    ".tsv": "read_csv",
    ".jsonl": "read_json",
    ".json": "read_json",
    ".parquet": "read_parquet",
}


class TaskDataError(ValueError):
    """Bad user data: the message names the file, row or field and what to do."""


def read_table(path: Path):
    import pandas as pd

    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise TaskDataError(
            f"{path}: unknown file type {path.suffix!r}; use .csv, .tsv, .jsonl or .parquet"
        )
    kwargs = {"sep": "\t"} if path.suffix.lower() == ".tsv" else {}
    if reader == "read_json":
        kwargs = {"lines": path.suffix.lower() == ".jsonl"}
    try:
        return getattr(pd, reader)(path, **kwargs)
    except Exception as error:  # pandas raises many types; name the file and the cause
        raise TaskDataError(f"{path}: could not read it as {path.suffix}: {error}") from error


def file_digest(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def frame_to_rows(
    frame, source: str, text_column: str, label_column: str
) -> tuple[list[str], list]:
    for column in (text_column, label_column):
        if column not in frame.columns:
            raise TaskDataError(
                f"{source}: no column {column!r} (columns: {', '.join(map(str, frame.columns))}); "
                f"name the right one with --text-column/--label-column"
            )
    texts, labels = [], []
    for row_number, (text, label) in enumerate(
        zip(frame[text_column], frame[label_column]), start=1
    ):
        if not isinstance(text, str) or not text.strip():
            raise TaskDataError(
                f"{source}: row {row_number}: field {text_column!r} is empty or not text"
            )
        if label is None or (isinstance(label, float) and np.isnan(label)):
            raise TaskDataError(f"{source}: row {row_number}: field {label_column!r} is missing")
        texts.append(text)
        labels.append(label)
    return texts, labels


def encode_labels(labels: list, label_names: list[str], source: str) -> np.ndarray:
    index = {name: i for i, name in enumerate(label_names)}
    encoded = []
    for row_number, label in enumerate(labels, start=1):
        key = str(label)
        if key not in index:
            raise TaskDataError(
                f"{source}: row {row_number}: label {key!r} is not one of {label_names}"
            )
        encoded.append(index[key])
    return np.array(encoded, dtype=int)


def split_off_test(texts: list[str], labels: list, fraction: float = 0.2, seed: int = 0):
    order = np.random.default_rng(seed).permutation(len(texts))
    n_test = max(1, round(fraction * len(texts)))
    test_idx, train_idx = order[:n_test], order[n_test:]
    pick = lambda idx, values: [values[i] for i in idx]  # noqa: E731
    return (pick(train_idx, texts), pick(train_idx, labels)), (
        pick(test_idx, texts),
        pick(test_idx, labels),
    )


def build_task(
    name: str,
    version: str,
    train: tuple[list[str], list],
    test: tuple[list[str], list],
    label_names: list[str] | None,
    templates: list[str] | None,
    source: str,
) -> Task:
    names = label_names or sorted({str(label) for label in train[1] + test[1]})
    return Task(
        name=name,
        version=version,
        label_names=names,
        verbalizers=[[name] for name in names],
        templates=templates or GENERIC_TEMPLATES,
        train=Split(train[0], encode_labels(train[1], names, source)),
        test=Split(test[0], encode_labels(test[1], names, source)),
        description=f"user task from {source}",
    )


def load_files(
    train_path: str,
    test_path: str | None = None,
    text_column: str = "text",
    label_column: str = "label",
    label_names: list[str] | None = None,
    templates: list[str] | None = None,
) -> Task:
    """A task from files; without a test file, a fixed 20% of the rows is held out as test."""
    paths = [Path(train_path)] + ([Path(test_path)] if test_path else [])
    for path in paths:
        if not path.is_file():
            raise TaskDataError(f"{path}: no such file")
    train = frame_to_rows(read_table(paths[0]), str(paths[0]), text_column, label_column)
    if test_path:
        test = frame_to_rows(read_table(paths[1]), str(paths[1]), text_column, label_column)
    else:
        train, test = split_off_test(*train)
    return build_task(
        paths[0].stem,
        f"sha256-{file_digest(*paths)}",
        train,
        test,
        label_names,
        templates,
        str(paths[0]),
    )


def load_hf_dataset(
    name: str,
    text_column: str = "text",
    label_column: str = "label",
    templates: list[str] | None = None,
) -> Task:
    """A task from a `datasets` name (hub or local cache), with its own train/test splits."""
    try:
        import datasets
    except ImportError as error:
        raise TaskDataError("loading a datasets name needs `pip install datasets`") from error
    dataset = datasets.load_dataset(name)
    if "train" not in dataset or "test" not in dataset:
        raise TaskDataError(f"dataset {name!r} has splits {list(dataset)}; it needs train and test")
    feature = dataset["train"].features.get(label_column)
    names = list(getattr(feature, "names", []) or []) or None
    rows = {
        split: frame_to_rows(
            dataset[split].to_pandas(), f"{name}[{split}]", text_column, label_column
        )
        for split in ("train", "test")
    }
    if names:
        rows = {
            split: (texts, [names[int(label)] for label in labels])
            for split, (texts, labels) in rows.items()
        }
    fingerprint = getattr(dataset["train"], "_fingerprint", "unknown")
    return build_task(
        name.replace("/", "__"),
        f"datasets-{fingerprint}",
        rows["train"],
        rows["test"],
        names,
        templates,
        name,
    )
