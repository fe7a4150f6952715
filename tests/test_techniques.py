"""Prompting techniques for generation tasks: self-critique's rounds, and the steps, calls and
generated tokens every multi-step technique records."""

from __future__ import annotations

import pytest

from promptworth.methods import make_method
from promptworth.methods.self_critique import CRITIQUE_REQUEST, REVISION_REQUEST
from promptworth.testing import tiny_generation_task


@pytest.fixture
def generation_task():
    return tiny_generation_task()


def test_self_critique_answers_then_critiques_and_revises_each_round(generation_task, make_context):
    task = generation_task
    method = make_method("self-critique", rounds=2, critique_tokens=3)
    method.fit(task.train.subset(range(4)), make_context(task=task))
    prediction = method.predict(task.test.texts[:3])
    trace = prediction.extra["traces"][0]
    names = [step["step"] for step in trace["steps"]]
    assert names == ["answer", "critique 1", "revision 1", "critique 2", "revision 2"]
    answer, critique, revision, critique_2, revision_2 = trace["steps"]
    assert critique["prompt"].startswith(answer["prompt"])
    assert critique["prompt"].endswith(f"{answer['output']}\n\n{CRITIQUE_REQUEST}")
    assert revision["prompt"] == f"{critique['prompt']} {critique['output']}\n\n{REVISION_REQUEST}"
    assert f"{revision['output']}\n\n{CRITIQUE_REQUEST}" in critique_2["prompt"]
    assert trace["output"] == revision_2["output"] == prediction.texts[0]
    assert prediction.calls == 5 * 3
    assert prediction.prompt_tokens == sum(
        step["prompt_tokens"] for row in prediction.extra["traces"] for step in row["steps"]
    )


def test_self_critique_rounds_must_be_positive():
    from promptworth.errors import PromptworthError

    with pytest.raises(PromptworthError, match="rounds"):
        make_method("self-critique", rounds=0)
