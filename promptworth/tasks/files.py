"""Tasks from a user's own data: CSV, TSV, JSONL or Parquet files, or a `datasets` name.

What is wrong with the data is refused while loading, before any model loads, with a message
naming the file, row and column: an unreadable file or encoding, an empty text, a missing label,
a training set with one class, test labels never seen in training, and test texts copied from
the training rows. Labels are spelled one way across train and test: when all are numbers, `0`,
`0.0` and `"0"` are one label.
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import math
from pathlib import Path

import numpy as np

from promptworth.errors import PromptworthError, quoted
from promptworth.tasks.base import Example, Split, Task, example_key, example_slots

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
# Test texts that are also training texts, as a share of the test rows, allowed without
# --allow-overlap (with a warning): above it the scores measure memory, not generalisation.
MAX_OVERLAP = 0.01
HELD_OUT = 0.2  # share of a single file's rows held out as test

log = logging.getLogger("promptworth")


class TaskDataError(PromptworthError):
    """Bad user data: the message names the file, row or field and what to do."""


def checked_encoding(encoding: str) -> str:
    """The codec's canonical name (utf-8, iso8859-1, ...), or a TaskDataError naming the flag."""
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise TaskDataError(
            f"--encoding {quoted(encoding)}: unknown encoding (e.g. utf-8, cp1252, latin-1, utf-16)"
        ) from None


def read_table(path: Path, encoding: str = "utf-8"):
    import pandas as pd

    suffix = path.suffix.lower()
    reader = READERS.get(suffix)
    if reader is None:
        raise TaskDataError(
            f"{path}: unknown file type {quoted(suffix)}; use .csv, .tsv, .jsonl, .json or .parquet"
        )
    # utf-8-sig also reads plain UTF-8 and drops a byte-order mark, which would otherwise stick
    # to the first column's name.
    codec = "utf-8-sig" if checked_encoding(encoding) == "utf-8" else encoding
    kwargs: dict = {}
    if reader == "read_csv":  # every cell as text: labels are normalised below, texts stay text
        kwargs = dict(
            sep="\t" if suffix == ".tsv" else ",",
            dtype=str,
            keep_default_na=False,  # a text "NA" or "null" is text; only an empty cell is missing
            na_values=[""],
            encoding=codec,
        )
    elif reader == "read_json":
        kwargs = dict(lines=suffix == ".jsonl", dtype=False, encoding=codec)
    try:
        return getattr(pd, reader)(path, **kwargs)
    except UnicodeDecodeError:
        raise TaskDataError(undecodable(path, encoding)) from None
    except pd.errors.EmptyDataError:
        raise TaskDataError(f"{path}: the file is empty") from None
    except Exception as error:  # pandas raises many types; name the file and the cause
        reason = " ".join(str(error).split())
        raise TaskDataError(f"{path}: could not read it as {suffix}: {reason}") from error


def undecodable(path: Path, encoding: str) -> str:
    """Where the file stops being `encoding`, and which --encoding to try."""
    data = path.read_bytes()
    where = ""
    try:
        data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        where = f" (line {line}: byte {data[error.start]:#04x})"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        hint = "it starts with a UTF-16 byte-order mark: --encoding utf-16"
    else:
        hint = "e.g. --encoding cp1252 (Excel on Windows) or --encoding latin-1"
    return f"{path}: not valid {encoding} text{where}; give the file's encoding, {hint}"


def file_digest(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def frame_to_rows(
    frame,
    source: str,
    text_column: str | tuple[str, ...],
    label_column: str | None,
    references: bool = False,
) -> tuple[list[Example], list]:
    """Examples and raw labels (none without `label_column`: data to predict); rows are
    numbered from 1, the header not counted. Several text columns (a task's inputs) give each
    example as a tuple of their cells. With `references` the label column holds a generation
    task's references (`reference_cell`)."""
    columns = (text_column,) if isinstance(text_column, str) else tuple(text_column)
    for column in (*columns, *([label_column] if label_column else [])):
        if column not in frame.columns:
            raise TaskDataError(
                f"{source}: no column {quoted(column)} (columns: "
                f"{', '.join(map(str, frame.columns))}); name the right one with "
                + (
                    "text_column (or inputs) and reference_column in the task file"
                    if references
                    else "--text-column/--label-column"
                )
            )
    if frame.empty:
        raise TaskDataError(f"{source}: no data rows")
    examples, labels = [], []
    label_cells = frame[label_column] if label_column else [None] * len(frame)
    cells = zip(*(frame[column] for column in columns), label_cells)
    for row, (*texts, label) in enumerate(cells, start=1):
        where = f"{source}: row {row}: field"
        for column, text in zip(columns, texts):
            if is_missing(text) or (isinstance(text, str) and not text.strip()):
                raise TaskDataError(f"{where} {quoted(column)} is empty")
            if not isinstance(text, str):
                raise TaskDataError(f"{where} {quoted(column)} is not text: {quoted(text)}")
        examples.append(texts[0] if isinstance(text_column, str) else tuple(texts))
        if label_column is None:
            continue
        if is_missing(label) or (isinstance(label, str) and not label.strip()):
            raise TaskDataError(f"{where} {quoted(label_column)} is missing")
        if references:
            label = reference_cell(label, f"{where} {quoted(label_column)}")
        elif not isinstance(label, (str, int, float, np.number)):
            raise TaskDataError(
                f"{where} {quoted(label_column)} is not a label (text or number): {quoted(label)}"
            )
        labels.append(label)
    return examples, labels


def reference_cell(value, where: str) -> tuple[str, ...]:
    """A generation row's acceptable answers: one text (or number), or a list of them."""
    listed = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value]
    answers = tuple(str(v).strip() for v in listed if isinstance(v, (str, int, float)))
    if not listed or len(answers) < len(listed) or not all(answers):
        raise TaskDataError(
            f"{where} is not a reference: give a text or a list of texts, got {quoted(value)}"
        )
    return answers


def as_number(value) -> float | None:
    if isinstance(value, (bool, np.bool_)):
        return None
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def spelled(*columns: list) -> list[list[str]]:
    """Labels as strings, one spelling per label across all columns (train and test): when every
    label is a number, its shortest form (0, 0.0 and "0" are "0"; 1.5 stays "1.5"); otherwise
    the text without surrounding white space."""
    numbers = [[as_number(v) for v in column] for column in columns]
    if all(n is not None for column in numbers for n in column):
        return [[str(int(n)) if n.is_integer() else repr(n) for n in column] for column in numbers]
    return [[str(v).strip() for v in column] for column in columns]


def label_order(names: set[str]) -> list[str]:
    """Numbers in numeric order (2 before 10), else alphabetical."""
    if all(as_number(name) is not None for name in names):
        return sorted(names, key=float)
    return sorted(names)


def check_classes(train: list[str], test: list[str], source: str, test_source: str) -> None:
    seen = set(train)
    if len(seen) < 2:
        raise TaskDataError(
            f"{source}: the training rows hold {len(seen)} class ({', '.join(map(repr, seen))}); "
            "a classifier needs at least two"
        )
    unseen = label_order(set(test) - seen)
    if unseen:
        raise TaskDataError(
            f"{test_source}: test label(s) {', '.join(map(repr, unseen))} never occur in the "
            "training rows; remove those test rows or add training examples of them"
        )


def stripped(example: Example) -> str:
    """An example's identity for the overlap check: its inputs without surrounding space."""
    return example_key(tuple(part.strip() for part in example_slots(example)))


def check_overlap(train: list[Example], test: list[Example], test_source: str, allow: bool) -> None:
    """Count test texts that are also training texts: refuse above MAX_OVERLAP unless allowed."""
    known = {stripped(example) for example in train}
    shared = sum(stripped(example) in known for example in test)
    if not shared:
        return
    message = (
        f"{test_source}: {shared} of {len(test)} test texts ({shared / len(test):.1%}) "
        "also appear in the training rows"
    )
    if shared / len(test) > MAX_OVERLAP and not allow:
        raise TaskDataError(
            f"{message}; their scores measure memory, not generalisation: remove them, or pass "
            "--allow-overlap to run anyway"
        )
    log.warning("%s", message)


def split_off_test(texts: list[str], labels: list, fraction: float = HELD_OUT, seed: int = 0):
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
    test_source: str,
    allow_overlap: bool = False,
    **described,
) -> Task:
    """A checked task; `label_names` (a dataset's own class names, or a task file's labels)
    fixes the label order, else the training labels do, spelled as `spelled` says. `described`:
    Task fields beyond the data (verbalizers, inputs, description) where not the defaults."""
    train_labels, test_labels = (train[1], test[1]) if label_names else spelled(train[1], test[1])
    check_classes(train_labels, test_labels, source, test_source)
    check_overlap(train[0], test[0], test_source, allow_overlap)
    names = label_names or label_order(set(train_labels))
    index = {label: i for i, label in enumerate(names)}
    fields = {
        "verbalizers": [[name] for name in names],
        "templates": templates or GENERIC_TEMPLATES,
        "description": f"user task from {source}",
        **described,
    }
    return Task(
        name=name,
        version=version,
        label_names=names,
        train=Split(train[0], np.array([index[y] for y in train_labels], dtype=int)),
        test=Split(test[0], np.array([index[y] for y in test_labels], dtype=int)),
        **fields,
    )


def load_files(
    train_path: str,
    test_path: str | None = None,
    text_column: str = "text",
    label_column: str = "label",
    label_names: list[str] | None = None,
    templates: list[str] | None = None,
    encoding: str = "utf-8",
    allow_overlap: bool = False,
) -> Task:
    """A task from files; without a test file, a fixed 20% of the rows is held out as test."""
    paths = [Path(train_path)] + ([Path(test_path)] if test_path else [])
    for path in paths:
        if not path.exists():
            raise TaskDataError(f"no such file: {path}")
        if not path.is_file():
            raise TaskDataError(f"{path}: is a directory; give a data file")
    codec = checked_encoding(encoding)
    train = frame_to_rows(read_table(paths[0], encoding), str(paths[0]), text_column, label_column)
    if test_path:
        test_source = str(paths[1])
        test = frame_to_rows(read_table(paths[1], encoding), test_source, text_column, label_column)
    else:
        test_source = f"{paths[0]} (the {HELD_OUT:.0%} held out as test)"
        train, test = split_off_test(*train)
    # Other bytes-to-text readings of the same file are other data: the encoding is part of it.
    version = f"sha256-{file_digest(*paths)}" + ("" if codec == "utf-8" else f"-{codec}")
    return build_task(
        paths[0].stem,
        version,
        train,
        test,
        label_names,
        templates,
        str(paths[0]),
        test_source,
        allow_overlap,
    )


def load_hf_dataset(
    name: str,
    text_column: str = "text",
    label_column: str = "label",
    templates: list[str] | None = None,
    allow_overlap: bool = False,
) -> Task:
    """A task from a `datasets` name (hub or local cache), with its own train/test splits."""
    rows, names, version = hf_rows(name, text_column, label_column)
    return build_task(
        name.replace("/", "__"),
        version,
        rows["train"],
        rows["test"],
        names,
        templates,
        f"{name}[train]",
        f"{name}[test]",
        allow_overlap,
    )


def hf_rows(
    name: str, text_column: str | tuple[str, ...], label_column: str
) -> tuple[dict[str, tuple[list[Example], list]], list[str] | None, str]:
    """A `datasets` name's train and test rows (labels as class names where it has them), its
    class names, and its version."""
    try:
        import datasets
    except ImportError as error:
        raise TaskDataError("loading a datasets name needs `pip install datasets`") from error
    try:
        dataset = datasets.load_dataset(name)
    except Exception as error:  # datasets raises many types for a name it cannot load
        reason = " ".join(str(error).split())
        raise TaskDataError(
            f"--task {name}: no built-in task, no such file, and the datasets library could not "
            f"load it ({type(error).__name__}: {reason})"
        ) from error
    if "train" not in dataset or "test" not in dataset:
        raise TaskDataError(
            f"dataset {quoted(name)} has splits {list(dataset)}; it needs train and test"
        )
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
            split: (texts, class_names(labels, names, f"{name}[{split}]"))
            for split, (texts, labels) in rows.items()
        }
    fingerprint = getattr(dataset["train"], "_fingerprint", "unknown")
    return rows, names, f"datasets-{fingerprint}"


def class_names(labels: list, names: list[str], source: str) -> list[str]:
    """A dataset's class indices as its class names; -1 (an unlabelled split) is refused."""
    bad = next((label for label in labels if not 0 <= int(label) < len(names)), None)
    if bad is not None:
        raise TaskDataError(
            f"{source}: label {bad} is not a class index 0..{len(names) - 1}; is this split "
            "unlabelled?"
        )
    return [names[int(label)] for label in labels]
