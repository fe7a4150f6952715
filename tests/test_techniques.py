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


def fitted_cot(task, make_context, **params):
    from promptworth.methods.few_shot_cot import FewShotCoT

    method = FewShotCoT(**{"k": 2, "reasoning_tokens": 3, "max_bootstrap": 6, **params})
    return method.fit(task.train.subset(range(8)), short_context(task, make_context))


def short_context(task, make_context, **fields):
    """Inputs cut to 24 tokens: room for two demonstrations in the tiny model's 256 positions."""
    from promptworth.methods.base import PromptOptions

    return make_context(task=task, prompt=PromptOptions(batch_size=8, max_text_tokens=24), **fields)


def test_few_shot_cot_shows_the_chains_that_scored_as_demonstrations(generation_task, make_context):
    from promptworth.methods.generation import ANSWER_TRIGGER, COT_TRIGGER

    method = fitted_cot(generation_task, make_context, min_score=0.0)  # every chain kept
    assert method.bootstrap_ == {"rows": 6, "kept": 6, "min_score": 0.0}
    assert method.notes_ == []
    first = method.demos_[0]
    assert first.startswith(generation_task.fill(method.template_, generation_task.train.texts[0]))
    assert f"{COT_TRIGGER} " in first and f"\n{ANSWER_TRIGGER} " in first
    prediction = method.predict(generation_task.test.texts[:3])
    trace = prediction.extra["traces"][0]
    assert trace["prompt"].startswith(method.demos_[0] + "\n\n" + method.demos_[1] + "\n\n")
    assert [step["step"] for step in trace["steps"]] == ["reasoning", "answer"]
    assert prediction.extra["k_used_mean"] == 2
    cost = method.training_cost()
    assert cost.train_examples == 6 and cost.train_tokens > 0 and cost.trainable_params == 0


def test_few_shot_cot_keeps_only_chains_the_headline_metric_scores_correct(
    generation_task, make_context, monkeypatch
):
    """The kept chains are the rows the metric scores >= min_score, in the subset's order."""
    calls = []

    def score_rows(outputs, references):
        calls.append(references)
        return [1.0 if row in (1, 4) else 0.5 for row in range(len(outputs))]

    context = short_context(generation_task, make_context, score_rows=score_rows)
    from promptworth.methods.few_shot_cot import FewShotCoT

    method = FewShotCoT(k=4, reasoning_tokens=3, max_bootstrap=6)
    method.fit(generation_task.train.subset(range(8)), context)
    assert calls == [generation_task.train.references[:6]]
    assert method.bootstrap_["kept"] == 2 and len(method.demos_) == 2
    texts = generation_task.train.texts
    assert method.demos_[0].startswith(generation_task.fill(method.template_, texts[1]))
    assert method.demos_[1].startswith(generation_task.fill(method.template_, texts[4]))


def test_few_shot_cot_without_a_correct_chain_says_so_and_prompts_without_demos(
    generation_task, make_context
):
    from promptworth.run import runner

    method = fitted_cot(generation_task, make_context, min_score=1.0)
    if method.bootstrap_["kept"]:
        pytest.skip("the tiny model answered a training row right")
    assert method.demos_ == []
    assert "none of the 6 bootstrapped chains scored 1 or more" in method.notes_[0]
    prediction = method.predict(generation_task.test.texts[:2])
    assert prediction.extra["k_used_mean"] == 0
    assert prediction.extra["notes"] == method.notes_
    zs_cot = make_method("zs-cot", reasoning_tokens=3).fit(None, make_context(task=generation_task))
    assert prediction.texts == zs_cot.predict(generation_task.test.texts[:2]).texts
    result = runner.execute(
        make_method("few-shot-cot", k=2, reasoning_tokens=3, max_bootstrap=6),
        generation_task.train.subset(range(8)),
        generation_task.test,
        make_context(task=generation_task),
    )
    assert result["extra"]["bootstrap"]["kept"] == 0 and result["extra"]["notes"]
