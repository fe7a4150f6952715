"""prompt-search: candidate templates, LM paraphrases, dev selection, per-template test accuracy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from promptworth.methods import prompt_search
from promptworth.methods.base import PromptOptions
from promptworth.methods.prompt_search import (
    CUE_SUFFIX,
    PET_PATTERNS,
    PromptSearch,
    as_template,
    unusable,
)
from promptworth.tasks.base import TEXT_SLOT


def fitted(task, make_context, n_train=24, **params) -> PromptSearch:
    params = {"n_paraphrases": 2, "max_dev": 8, **params}
    return PromptSearch(**params).fit(task.train.subset(range(n_train)), make_context())


@pytest.mark.parametrize(
    ("answer", "template"),
    [
        ("Classify the news {text}. Topic:", "Classify the news {text}. Topic:"),
        ('"Here is the article: {text}"', "Here is the article: {text}" + CUE_SUFFIX),
        ("\nThe article is about: sports\nmore", "{text}\nThe article is about:"),
        ("Prompt: What is the topic of this news?", "{text}\nWhat is the topic of this news:"),
        ("{text} and {text}", "{text}\nand:"),
        ("  \n ", None),
    ],
)
def test_answers_become_templates_the_label_can_follow(answer, template):
    assert as_template(answer) == template


def test_candidates_are_task_pet_and_paraphrased_templates(task, make_context):
    method = fitted(task, make_context)
    templates = [c.template for c in method.candidates_]
    assert templates[: len(task.templates)] == task.templates
    assert all(p in templates for p in PET_PATTERNS)
    written = [c for c in method.candidates_ if c.source == "paraphrase"]
    assert len(written) == 2, method.notes_
    assert len(set(templates)) == len(templates)
    assert all(t.count(TEXT_SLOT) == 1 for t in templates)


def test_paraphrases_are_seeded_and_new(backbones, tiny_lm_dir):
    backbone = backbones.get(tiny_lm_dir, "causal-lm")
    known = {"Text: {text}\nTopic:"}
    first = prompt_search.paraphrases(backbone, "Text: {text}\nTopic:", 2, 0, known)
    assert first == prompt_search.paraphrases(backbone, "Text: {text}\nTopic:", 2, 0, known)
    assert len(first) == 2 and not known & set(first)


def test_without_a_chat_template_paraphrasing_is_skipped_and_said(
    task, make_context, backbones, tiny_lm_dir, monkeypatch
):
    tokenizer = backbones.get(tiny_lm_dir, "causal-lm").tokenizer
    monkeypatch.setattr(tokenizer, "chat_template", None)
    method = fitted(task, make_context)
    assert not [c for c in method.candidates_ if c.source == "paraphrase"]
    assert any("no chat template" in note for note in method.notes_)


def test_templates_whose_label_merges_with_the_prompt_are_dropped(task, make_context):
    context = make_context()
    tokenizer = context.backbones.get(context.model, "causal-lm").tokenizer
    assert "merges" in unusable("{text}\nTopic: ", task, tokenizer, context)
    assert unusable("{text} (", task, tokenizer, context) is None


def test_best_dev_accuracy_wins_and_ties_go_to_the_gold_label_probability(
    task, make_context, monkeypatch
):
    dev = {0: (0.5, -2.0, 1), 1: (0.75, -3.0, 1), 2: (0.75, -1.0, 1)}
    monkeypatch.setattr(
        prompt_search,
        "dev_score",
        lambda model, fmt, split, score_rows: dev.get(fmt.options.template, (0, -9, 1)),
    )
    method = fitted(task, make_context)
    assert method.best_ == 2


def test_dev_split_is_capped(task, make_context):
    method = fitted(task, make_context, n_train=24, max_dev=6)
    assert method.cost_.train_examples == 6 * len(method.candidates_)
    assert method.cost_.artifact_bytes == len(method.candidates_[method.best_].template.encode())


def test_every_template_predicts_the_test_inputs_and_the_runner_scores_them(task, make_context):
    from promptworth.run import runner

    method = fitted(task, make_context)
    assert not hasattr(method, "test_labels_")  # selection and spread never read test labels
    test = task.test.subset(range(12))
    prediction = method.predict(test.texts)
    extra = prediction.extra
    rows = extra["candidates"]
    assert len(rows) == len(method.candidates_)
    assert extra["chosen_template"] == rows[extra["chosen"]]["template"]
    assert rows[extra["chosen"]]["test_predictions"] == prediction.labels.tolist()
    assert prediction.diagnostic_seconds > 0  # left out of the eval cost by the runner
    scored = runner.score_diagnostics(extra, test.labels)["candidates"]
    accuracy = float((prediction.labels == test.labels).mean())
    assert scored[extra["chosen"]]["test_accuracy"] == pytest.approx(accuracy)
    for row in scored:
        expected = float((np.array(row["test_predictions"]) == test.labels).mean())
        assert row["test_accuracy"] == pytest.approx(expected)


def test_generation_mode_selects_by_accuracy(task, make_context):
    method = PromptSearch(n_paraphrases=0, max_dev=6).fit(
        task.train.subset(range(12)), make_context(prompt=PromptOptions(predict="generate"))
    )
    assert all(score[1] == 0.0 for score in method.dev_)
    assert method.predict(task.test.texts[:3]).labels.shape == (3,)


def test_the_runner_keeps_the_extra_measurements(task, make_context):
    from promptworth.run import runner

    result = runner.execute(
        PromptSearch(n_paraphrases=0, max_dev=6, score_all_on_test=False),
        task.train.subset(range(12)),
        task.test,
        make_context(),
    )
    assert result["extra"]["chosen_template"] in task.templates + list(PET_PATTERNS)
    assert "test_accuracy" not in result["extra"]["candidates"][0]
    assert result["eval_seconds"] > 0
    json.dumps(result)  # the store writes results as JSON
