"""Generation metrics on hand-computed cases: each row's score in [0, 1], best over references."""

from __future__ import annotations

import numpy as np
import pytest

from promptworth.analysis.metrics import METRICS, task_metrics, text_row_scores
from promptworth.analysis.text_scores import (
    exact_match,
    numeric_flexible,
    numeric_strict,
    rouge_rows,
    token_f1,
)
from promptworth.tasks.answers import final_answer, flexible_number, normalise_answer, strict_number


def test_squad_normalisation():
    assert normalise_answer("  The Eiffel-Tower!  ") == "eiffeltower"
    assert normalise_answer("an Apple a day") == "apple day"
    assert normalise_answer("Theatre") == "theatre"  # articles only as whole words


def test_exact_match_normalises_and_takes_the_best_alias():
    refs = [("Paris", "City of Light"), ("Everest",), ("6 geese a-laying", "maids a-milking")]
    outputs = ["the city of light.", "K2", "6 Geese A-laying"]
    np.testing.assert_array_equal(exact_match(outputs, refs), [1.0, 0.0, 1.0])


def test_text_metrics_score_a_reasoning_chain_by_its_final_answer():
    chain = "Paris is in France. So the answer is: The city of Paris.\nMore text"
    assert final_answer(chain) == "The city of Paris."
    assert final_answer("Paris") == "Paris"
    np.testing.assert_array_equal(exact_match([chain], [("city of paris",)]), [1.0])


def test_a_chain_that_concludes_with_nothing_is_unparsed_and_rouge_reads_its_conclusion():
    """ROUGE scores the conclusion, not the reasoning; an empty conclusion is an unparsed answer
    for every text metric, not a silent 0."""
    empty = "The electron comes from the nucleus.\nTherefore, the answer is :"
    chain = "The article is about rain.\nTherefore, the answer is Heavy rain hit the city."
    scored = text_row_scores(
        task_metrics(["exact_match", "token_f1", "rouge"]), [empty, chain], [("x",)] * 2
    )
    assert scored["exact_match"][1] == scored["token_f1"][1] == scored["rougeL"][1] == 0.5
    reference = ("Heavy rain hit the city",)
    assert rouge_rows("rougeL")([chain], [reference])[0] == pytest.approx(1.0)


def test_token_f1_by_hand():
    # "the cat sat" -> [cat, sat]; "a cat sat down" -> [cat, sat, down]: p = 1, r = 2/3
    assert token_f1(["the cat sat"], [("a cat sat down",)])[0] == pytest.approx(0.8)
    # best over aliases: "dog" scores 0, "cat sat" scores 1
    assert token_f1(["the cat sat"], [("dog", "cat sat")])[0] == 1.0
    assert token_f1([""], [("cat",)])[0] == 0.0
    assert token_f1(["The"], [("a",)])[0] == 1.0  # both empty after normalisation


def test_rouge_equals_rouge_score_with_stemming():
    from rouge_score import rouge_scorer

    summary = "The cats were running in the park."
    reference = "A cat runs in a park."
    for kind in ("rouge1", "rouge2", "rougeL"):
        expected = rouge_scorer.RougeScorer([kind], use_stemmer=True).score(reference, summary)
        got = rouge_rows(kind)([summary], [(reference,)])[0]
        assert got == pytest.approx(expected[kind].fmeasure)
    # stemming: cats/cat, running/runs -> run; ROUGE-1 by hand: output unigrams
    # [the, cat, were, run, in, the, park] (7), reference [a, cat, run, in, a, park] (6),
    # overlap cat, run, in, park = 4: F = 2 * (4/7) * (4/6) / (4/7 + 4/6) = 8/13
    assert rouge_rows("rouge1")([summary], [(reference,)])[0] == pytest.approx(8 / 13)
    assert rouge_rows("rougeL")([summary], [("nothing", summary)])[0] == pytest.approx(1.0)


def test_numbers_strict_and_flexible():
    assert strict_number("3 + 4 = 7. The answer is 7.") == 7
    assert strict_number("the answer is: $1,250") == 1250
    assert strict_number("7") is None
    assert flexible_number("3 + 4 = 7 apples, then 8.5") == 8.5
    assert flexible_number("no digits") is None
    outputs = ["So 9. The answer is 9.", "I count 9", "The answer is 10", "9.0 apples"]
    refs = [("9 apples",)] * 4
    np.testing.assert_array_equal(numeric_strict(outputs, refs), [1, 0, 0, 0])
    np.testing.assert_array_equal(numeric_flexible(outputs, refs), [1, 1, 0, 1])


def test_unparsed_rates_beside_every_score():
    outputs = ["The answer is 3", "3", "", "none"]
    refs = [("3",)] * 4
    scored = text_row_scores(task_metrics(["numeric", "exact_match"]), outputs, refs)
    assert list(scored) == ["numeric_flexible", "numeric_strict", "exact_match"]
    assert scored["numeric_strict"] == ([1.0, 0.0, 0.0, 0.0], 0.75)
    assert scored["numeric_flexible"] == ([1.0, 1.0, 0.0, 0.0], 0.5)
    assert scored["exact_match"] == ([1.0, 1.0, 0.0, 0.0], 0.25)  # the final answer: 3


def test_every_generation_metric_is_in_the_one_table_with_scores_in_unit_range():
    outputs, refs = ["The answer is 2, a cat", "dog"], [("2 cats",), ("a dog", "hound")]
    for key in task_metrics(["exact_match", "token_f1", "rouge", "numeric"]):
        metric = METRICS[key]
        assert metric.task_type == "generation"
        values = metric.rows(outputs, refs)
        assert values.shape == (2,) and ((values >= 0) & (values <= 1)).all()
    assert METRICS["accuracy"].task_type == "classification"
