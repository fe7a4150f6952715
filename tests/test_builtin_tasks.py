"""The built-in tasks: each loads in its canonical order with the right label meaning, every
class in train and test, and a fingerprint that does not change between loads."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from promptworth.tasks import BUILTIN, BUILTIN_TASKS, load_task, staicc
from promptworth.tasks.builtin import TABLE

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("StaICC") is None, reason="the StaICC package is not installed"
)

# The first row of each published training split (Hugging Face order) and its label name: a
# wrong unshuffle or a wrong label order fails here.
FIRST_TRAIN = {
    "sst2": ("hide new secretions from the parental units", "negative"),
    "rotten_tomatoes": ("the rock is destined to be the 21st century's new", "positive"),
    "sst5": ("a stirring , funny and finally transporting re-imagining", "very positive"),
    "subjective": ("the tucks have a secret , they 're immortal", "objective"),
    "trec": ("How did serfdom develop in and then leave Russia ?", "description"),
    "tweet_eval_emotion": ("“Worry is a down payment on a problem", "optimism"),
    "tweet_eval_hate": ("@user nice new signage.", "non-hate"),
    "financial_phrasebank": ("According to Gran , the company has no plans", "neutral"),
}
FIRST_TEST = {  # tasks with a published test split
    "trec": ("How far is it from Denver to Aspen ?", "numeric"),
    "tweet_eval_emotion": ("#Deppression is real.", "sadness"),
}
# the StaICC tasks of tasks/builtin.py's TABLE (boolq has a module of its own)
FROM_TABLE = {name for name, (module, _) in BUILTIN_TASKS.items() if module == BUILTIN}
SMALL = sorted(FROM_TABLE - {"ag_news"})  # ag_news: tests/test_tasks.py


def test_every_registered_builtin_has_a_table_row():
    assert set(TABLE) == FROM_TABLE
    assert set(FIRST_TRAIN) == set(SMALL)


@pytest.fixture(scope="module")
def tasks():
    return {name: load_task(name) for name in SMALL}


@pytest.mark.parametrize("name", SMALL)
def test_builtin_loads_in_canonical_order(tasks, name):
    task = tasks[name]
    text, label = FIRST_TRAIN[name]
    first_text, first_label = staicc.load_rows(TABLE[name].staicc_file)[0]
    assert first_text.startswith(text)
    assert task.label_names[first_label] == label
    if name in FIRST_TEST:
        text, label = FIRST_TEST[name]
        assert task.test.texts[0].startswith(text)
        assert task.label_names[task.test.labels[0]] == label


@pytest.mark.parametrize("name", SMALL)
def test_builtin_label_counts_are_sane(tasks, name):
    task = tasks[name]
    assert len(task.verbalizers) == task.n_labels >= 2 and len(task.templates) >= 2
    for split in (task.train, task.test):
        counts = np.bincount(split.labels, minlength=task.n_labels)
        assert len(counts) == task.n_labels and counts.min() > 0  # every class in each split
    assert len(task.test) >= 400
    assert not {t.strip() for t in task.test.texts} & {t.strip() for t in task.train.texts} or (
        TABLE[name].layout is not None  # published splits are kept as published
    )


def test_published_split_sizes(tasks):
    sizes = {name: (len(tasks[name].train), len(tasks[name].test)) for name in FIRST_TEST}
    assert sizes == {"trec": (5_452, 500), "tweet_eval_emotion": (3_257, 1_421)}


def test_held_out_share_is_fixed_and_fingerprint_stable(tasks):
    again = load_task("financial_phrasebank")
    task = tasks["financial_phrasebank"]
    assert again.fingerprint == task.fingerprint
    assert again.test.texts == task.test.texts
    assert task.version.endswith("heldout20-v1")
    assert len(task.train) + len(task.test) <= 2_264
