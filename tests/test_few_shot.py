"""few-shot: demonstrations, their selection, the context budget, calibration, the prefix cache."""

from __future__ import annotations

import numpy as np
import pytest

from promptworth.errors import PromptworthError
from promptworth.methods.base import PromptOptions
from promptworth.methods.few_shot import (
    CONTENT_FREE,
    SEPARATOR,
    FewShot,
    balanced_draw,
    calibrated_scores,
    common_prefix_length,
    score_with_prefix,
)
from promptworth.methods.prompting import score_candidates
from promptworth.tasks.subsets import nested_subsets
from promptworth.testing import tiny_task


def fitted(task, make_context, n_train=24, **params) -> FewShot:
    return FewShot(**params).fit(task.train.subset(range(n_train)), make_context())


def test_prefix_cache_gives_the_scores_of_full_prompts(task, make_context):
    method = fitted(task, make_context)
    fmt = method.format_
    prompts = [fmt.encode_prompt(method.prompt(method.fixed_, t)) for t in task.test.texts[:7]]
    shared = common_prefix_length(prompts)
    assert shared > sum(method.demo_tokens_[method.fixed_]) - 8  # the demonstrations are shared
    # One-token words and a three-token word, so the cached continuation path runs too.
    candidates = [*method.candidates_[:2], [[5, 6, 7]]]
    full = score_candidates(method.model_, fmt.tokenizer, prompts, candidates, 3, False)
    cached = score_with_prefix(
        method.model_,
        fmt.tokenizer,
        prompts[0][:shared],
        [p[shared:] for p in prompts],
        candidates,
        3,
        False,
    )
    np.testing.assert_allclose(cached, full, rtol=1e-5, atol=1e-5)


def test_random_demonstrations_are_seeded_and_shared(task, make_context):
    method = fitted(task, make_context)
    # Default k: one demonstration per label, the first row of each label in the subset's order.
    assert sorted(task.train.labels[method.fixed_].tolist()) == list(range(task.n_labels))
    assert sorted(method.fixed_.tolist()) == list(range(task.n_labels))
    again = fitted(task, make_context)
    np.testing.assert_array_equal(method.fixed_, again.fixed_)
    # The seed orders the labels, so the label shown last (which the LM favours) varies.
    train = task.train.subset(range(24))
    last = {int(FewShot().fit(train, make_context(seed=s)).fixed_[-1]) for s in range(8)}
    assert len(last) > 1
    demos, _ = method.demonstrations(task.test.texts[:4])
    assert all(np.array_equal(d, method.fixed_) for d in demos)


@pytest.mark.parametrize("k", [1, 2, 4, 5, 7])
def test_random_demonstrations_are_balanced_over_labels(k):
    labels = np.random.default_rng(3).permutation(np.repeat(np.arange(3), [30, 6, 12]))
    for seed in range(4):
        draw = balanced_draw(labels, 3, k, seed)
        counts = np.bincount(labels[draw], minlength=3)
        assert len(draw) == k and set(counts) <= {k // 3, -(-k // 3)}, counts
        # Round-robin: every prefix of the prompt's demonstrations is balanced too.
        for n in range(1, k + 1):
            assert np.ptp(np.bincount(labels[draw[:n]], minlength=3)) <= 1


@pytest.mark.parametrize("sampling", ["balanced", "random"])
def test_demonstrations_do_not_depend_on_the_pool_size(sampling, make_context):
    """A 10-row and a 1,000-row subset of one seed's nested order show the same demonstrations:
    few-shot reads k examples, so more labels must not change what it does."""
    big = tiny_task(n_train=1000)
    short = PromptOptions(max_text_tokens=16)  # room for 6 demonstrations in 256 positions
    for seed in range(3):
        subsets = nested_subsets(big.train.labels, [10, 1000], seed, sampling)
        shown = {}
        for n, rows in subsets.items():
            method = FewShot(k=6).fit(
                big.train.subset(rows), make_context(task=big, seed=seed, prompt=short)
            )
            assert len(method.fixed_) == 6  # all fit in the tiny LM's 256 positions
            shown[n] = rows[method.fixed_]  # the demonstrations as rows of the pool
            if np.bincount(big.train.labels[rows], minlength=3).min() >= 2:  # enough to show
                assert np.bincount(big.train.labels[shown[n]], minlength=3).tolist() == [2, 2, 2]
        if sampling == "balanced":  # the 10-row subset holds 3 or 4 of each label: identical
            np.testing.assert_array_equal(shown[10], shown[1000])


def test_a_label_missing_from_the_subset_leaves_the_others_balanced():
    labels = np.array([0, 0, 0, 0, 2, 2, 2])
    draw = balanced_draw(labels, 3, 4, seed=0)
    assert np.bincount(labels[draw], minlength=3).tolist() == [2, 0, 2]


def test_prompt_shows_demonstrations_with_gold_labels_then_the_input(task, make_context):
    method = fitted(task, make_context, k=2)
    prompt = method.prompt(method.fixed_, "the rocket reached orbit")
    blocks = prompt.split(SEPARATOR)
    assert blocks[-1] == "Text: the rocket reached orbit\nTopic:"
    for block, index in zip(blocks[:-1], method.fixed_):
        label = task.label_names[task.train.labels[index]]
        assert block == f"Text: {task.train.texts[index]}\nTopic: {label}"
    assert method.cost_.artifact_bytes == len("".join(b + SEPARATOR for b in blocks[:-1]).encode())
    assert method.cost_.trainable_params == 0 and method.cost_.train_examples == 2


def test_under_a_chat_template_each_demonstration_is_a_user_turn_and_its_answer(task, make_context):
    """As lm-evaluation-harness's multi-turn few-shot: demonstrations pasted into one user
    message make a small chat model answer with one of their questions."""
    method = FewShot(k=2).fit(
        task.train.subset(range(24)), make_context(prompt=PromptOptions(batch_size=8, chat=True))
    )
    prompt = method.prompt(method.fixed_, "the rocket reached orbit")
    turns = []
    for index in method.fixed_:
        label = task.label_names[task.train.labels[index]]
        turns += [
            {"role": "user", "content": f"Text: {task.train.texts[index]}\nTopic:"},
            {"role": "assistant", "content": label},
        ]
    turns.append({"role": "user", "content": "Text: the rocket reached orbit\nTopic:"})
    tokenizer = method.format_.tokenizer
    assert prompt == tokenizer.apply_chat_template(
        turns, tokenize=False, add_generation_prompt=True
    )
    alone = tokenizer.apply_chat_template(turns[-1:], tokenize=False, add_generation_prompt=True)
    added = len(tokenizer(prompt).input_ids) - len(tokenizer(alone).input_ids)
    assert added == sum(method.demo_tokens_[i] for i in method.fixed_)


def test_k_is_limited_by_the_training_subset(task, make_context):
    method = fitted(task, make_context, n_train=2, k=4)
    assert sorted(method.fixed_.tolist()) == [0, 1]


def test_k_is_limited_by_the_context_window(task, make_context):
    # The tiny LM reads 256 positions; with room kept for a 200-token input few demos fit.
    method = FewShot(k=8).fit(
        task.train.subset(range(24)), make_context(prompt=PromptOptions(max_text_tokens=200))
    )
    assert 0 < len(method.fixed_) < 8
    assert method.demo_tokens_[method.fixed_].sum() <= method.budget_
    with pytest.raises(ValueError, match="no room for demonstrations"):
        FewShot().fit(task.train, make_context(prompt=PromptOptions(max_text_tokens=300)))


def test_knn_puts_the_most_similar_example_last(task, make_context):
    method = fitted(task, make_context, selection="knn", k=3)
    demos, _ = method.demonstrations(task.train.texts[:5])
    for i, row in enumerate(demos):
        assert len(row) == 3
        assert task.train.texts[row[-1]] == task.train.texts[i]  # itself: cosine 1
    similarity = method.unit_vectors(task.test.texts[:1])[0] @ method.train_vectors_.T
    demos, _ = method.demonstrations(task.test.texts[:1])
    assert np.all(np.diff(similarity[0][demos[0]]) >= 0)


def test_knn_embeds_each_text_once(task, make_context, monkeypatch):
    from promptworth.backbones.features import FeatureCache
    from promptworth.methods import few_shot

    calls = []
    real_embed = few_shot.embed
    monkeypatch.setattr(few_shot, "embed", lambda *a: calls.append(len(a[1])) or real_embed(*a))
    features = FeatureCache()
    train = task.train.subset(range(24))
    for _ in range(2):
        method = FewShot(selection="knn").fit(train, make_context(features=features))
        method.predict(task.test.texts)
    assert sum(calls) == len(set(train.texts) | set(task.test.texts))


def test_calibration_divides_out_the_content_free_prior():
    # The model favours label 0; content-free inputs show the same bias, which is removed.
    scores = np.log(np.array([[0.6, 0.4], [0.8, 0.2]] + [[0.75, 0.25]] * len(CONTENT_FREE)))
    assert calibrated_scores(scores, 2, calibrate=False).argmax(axis=1).tolist() == [0, 0]
    calibrated = calibrated_scores(scores, 2, calibrate=True)
    assert calibrated.argmax(axis=1).tolist() == [1, 0]
    p_cal = np.exp(calibrated) / np.exp(calibrated).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(p_cal[0], np.array([0.6 / 0.75, 0.4 / 0.25]) / (0.8 + 1.6))


def test_calibrated_prediction_runs_in_both_selections(task, make_context):
    for selection in ("random", "knn"):
        method = fitted(task, make_context, selection=selection, calibrate=True)
        prediction = method.predict(task.test.texts[:8])
        assert prediction.labels.shape == (8,)
        np.testing.assert_array_equal(prediction.scores.argmax(axis=1), prediction.labels)
        assert prediction.extra["calibrated"] and prediction.extra["selection"] == selection


def test_calibration_needs_rank_classification(task, make_context):
    with pytest.raises(PromptworthError, match="calibrate"):
        FewShot(calibrate=True).fit(
            task.train, make_context(prompt=PromptOptions(predict="generate"))
        )


def test_generation_reads_the_answer_after_the_demonstrations(task, make_context):
    method = FewShot(k=2, calibrate=False).fit(
        task.train.subset(range(24)), make_context(prompt=PromptOptions(predict="generate"))
    )
    prediction = method.predict(task.test.texts[:4])
    assert prediction.labels.shape == (4,)
    assert prediction.n_unmapped == int((prediction.labels == -1).sum())


def test_common_prefix_leaves_a_token_to_run():
    assert common_prefix_length([[1, 2, 3, 4], [1, 2, 5]]) == 2
    assert common_prefix_length([[1, 2, 3], [1, 2, 3]]) == 2
    assert common_prefix_length([[1, 2], [3]]) == 0
