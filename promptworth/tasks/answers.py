"""How an answer text is read, shared by the metrics that score it and the methods that vote
over answers (self-consistency): SQuAD's normalisation, numbers, and the final answer a
reasoning chain states after "the answer is"."""

from __future__ import annotations

import re
import string

ARTICLES = re.compile(r"\b(a|an|the)\b")
PUNCTUATION = set(string.punctuation)
NUMBER = r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+"
NUMBER_PATTERN = re.compile(NUMBER)
ANSWER_IS = re.compile(rf"the answer is[:\s]*\$?\s*({NUMBER})", re.IGNORECASE)
FINAL_ANSWER = re.compile(r"the answer is[:\s]*", re.IGNORECASE)
# The cue before a reasoning chain's answer (Kojima et al. 2022), and the words every stored chain
# states its conclusion after, whichever cue a task asked with (Task.answer_trigger)
ANSWER_TRIGGER = "Therefore, the answer is"


def normalise_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in PUNCTUATION)
    return " ".join(ARTICLES.sub(" ", text).split())


def final_answer(output: str) -> str:
    """What follows the last "the answer is" in `output` (a reasoning chain's conclusion), to
    the end of its line; the whole output when it never says so."""
    found = list(FINAL_ANSWER.finditer(output))
    if not found:
        return output
    return output[found[-1].end() :].split("\n")[0].strip()


def parse_number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def strict_number(output: str) -> float | None:
    """The number after "The answer is", or None."""
    found = ANSWER_IS.search(output)
    return parse_number(found.group(1)) if found else None


def flexible_number(output: str) -> float | None:
    """The output's last number, or None."""
    found = NUMBER_PATTERN.findall(output)
    return parse_number(found[-1]) if found else None
