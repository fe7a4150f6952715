"""Per-row scores of generated text against its references, each in [0, 1].

A row's score is the best over its acceptable references (NQ-open lists aliases). Per-row scores
let everything built for 0/1 correctness - means over seeds, row bootstraps, paired tests,
learning curves - read generation runs unchanged. Each scorer also says which outputs it could
not read (an empty answer; no number), reported beside the score as the unparsed rate.

Every text scorer reads the output's final answer: what follows its last "the answer is", else
all of it, so a reasoning chain is scored by its conclusion, and a chain that concludes with
nothing is an empty answer (unparsed). The model-scored metrics (BERTScore, the judge) read it
too (run/model_scores.py).

- exact match and token F1: after SQuAD's answer normalisation (lower case, punctuation and
  the articles a/an/the removed, white space collapsed), as in the SQuAD v1.1 evaluation script;
- ROUGE-1/2/L: F-measure from Google's `rouge-score`, with Porter stemming;
- numbers: the reference's first number against the output's, read strictly (the number after
  "The answer is", the format the prompt asks for) or flexibly (the output's last number).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np

from promptworth.tasks.answers import (
    NUMBER_PATTERN,
    final_answer,
    flexible_number,
    normalise_answer,
    parse_number,
    strict_number,
)

References = tuple[str, ...]


def exact_match_row(output: str, references: References) -> float:
    answer = normalise_answer(final_answer(output))
    return float(any(answer == normalise_answer(ref) for ref in references))


def f1_against(output_tokens: list[str], reference: str) -> float:
    reference_tokens = normalise_answer(reference).split()
    common = sum((Counter(output_tokens) & Counter(reference_tokens)).values())
    if not output_tokens or not reference_tokens:
        return float(output_tokens == reference_tokens)
    if common == 0:
        return 0.0
    precision, recall = common / len(output_tokens), common / len(reference_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1_row(output: str, references: References) -> float:
    tokens = normalise_answer(final_answer(output)).split()
    return max(f1_against(tokens, ref) for ref in references)


def reference_number(reference: str) -> float | None:
    """A numeric reference's value: its first number ("9 apples" -> 9)."""
    found = NUMBER_PATTERN.search(reference)
    return parse_number(found.group()) if found else None


def same_number(value: float | None, reference: float | None) -> bool:
    if value is None or reference is None:
        return False
    return abs(value - reference) <= 1e-6 * max(1.0, abs(reference))


def numeric_scorer(extract: Callable[[str], float | None]):
    def score(output: str, references: References) -> float:
        value = extract(output)
        return float(any(same_number(value, reference_number(ref)) for ref in references))

    return score


def rows(score: Callable[[str, References], float]):
    """A per-row scorer as a scorer of lists: [n] scores of n outputs against their references."""

    def scores(outputs: list[str], references: list[References]) -> np.ndarray:
        return np.array([score(o, r) for o, r in zip(outputs, references, strict=True)])

    return scores


def rouge_rows(kind: str):
    """ROUGE `kind` F-measure of each output against its best reference (rouge-score)."""

    def scores(outputs: list[str], references: list[References]) -> np.ndarray:
        from rouge_score import rouge_scorer

        scorer = rouge_scorer.RougeScorer([kind], use_stemmer=True)
        return np.array(
            [
                max(scorer.score(ref, final_answer(output))[kind].fmeasure for ref in refs)
                for output, refs in zip(outputs, references, strict=True)
            ]
        )

    return scores


def empty(output: str) -> bool:
    return not final_answer(output).strip()


def unreadable(extract: Callable[[str], float | None]) -> Callable[[str], bool]:
    return lambda output: extract(output) is None


exact_match = rows(exact_match_row)
token_f1 = rows(token_f1_row)
numeric_strict = rows(numeric_scorer(strict_number))
numeric_flexible = rows(numeric_scorer(flexible_number))
strict_unparsed = unreadable(strict_number)
flexible_unparsed = unreadable(flexible_number)
