"""pet: a model per template, their (weighted) ensemble's soft labels on the unlabelled pool, the
final classifier, iPET rounds, and what the run reports."""

from __future__ import annotations

import numpy as np
import pytest

from promptworth.errors import PromptworthError
from promptworth.methods import make_method
from promptworth.methods.base import PromptOptions
from promptworth.methods.distill import soft_labels
from promptworth.methods.encoder_classifier import EncoderClassifier
from promptworth.methods.pet import ensemble_scores, pseudo_labelled
from promptworth.methods.prompt_lora import PromptLoRA
from promptworth.run import runner
from promptworth.tasks.base import Split

FAST = {"max_steps": 2, "batch_size": 4}


def pet(**params):
    return make_method("pet", **{"pattern_params": FAST, "student_params": FAST, **params})


def spy(monkeypatch, cls, method: str) -> list:
    """Record the first argument each call of cls.method receives, and the call's context."""
    seen, original = [], getattr(cls, method)

    def record(self, data, *args):
        seen.append((data, args[-1]))
        return original(self, data, *args)

    monkeypatch.setattr(cls, method, record)
    return seen


def test_one_pattern_model_per_template_on_the_labelled_subset(
    task, labelled, pool, make_context, monkeypatch
):
    fits = spy(monkeypatch, PromptLoRA, "fit")
    method = pet(unlabelled=6).fit(labelled, make_context(pool=pool))
    assert [context.prompt.template for _, context in fits] == [0, 1]
    assert all(data.texts == labelled.texts for data, _ in fits)
    assert [m.format_.options.template for m in method.patterns_] == [0, 1]
    fits.clear()
    pet(templates=[1], unlabelled=6).fit(labelled, make_context(pool=pool))
    assert [context.prompt.template for _, context in fits] == [1]


def test_soft_labels_are_the_weighted_ensemble_of_the_pattern_models(
    task, labelled, pool, make_context, monkeypatch
):
    targets = spy(monkeypatch, EncoderClassifier, "fit_targets")
    method = pet(unlabelled=10, temperature=3.0).fit(labelled, make_context(pool=pool))
    learnt = targets[0][0]
    soft_texts = learnt.texts[len(labelled) :]
    assert len(soft_texts) == 10 and not set(soft_texts) & set(labelled.texts)
    assert set(soft_texts) <= set(task.train.texts[12:])
    np.testing.assert_array_equal(learnt.temperature, [1.0] * 12 + [3.0] * 10)
    # the weights are each template's zero-shot accuracy on the labelled subset
    for row, template in zip(method.rows_, (0, 1)):
        context = make_context(prompt=PromptOptions(batch_size=8, template=template))
        zero_shot = make_method("zero-shot").fit(labelled, context).predict(labelled.texts)
        assert row["prior_accuracy"] == pytest.approx((zero_shot.labels == labelled.labels).mean())
        assert row["weight"] == row["prior_accuracy"]
    scores = [m.predict(soft_texts).scores for m in method.patterns_]
    w = method.weights_
    mean = (w[0] * scores[0] + w[1] * scores[1]) / (w[0] + w[1])
    np.testing.assert_allclose(learnt.probs[12:], soft_labels(mean, 3.0), rtol=1e-6)


def test_ensemble_is_the_weighted_mean_of_scores_on_a_controlled_case():
    a = np.array([[0.0, -1.0, -np.inf], [-2.0, 0.0, -1.0]])
    b = np.array([[-1.0, 0.0, -3.0], [0.0, -4.0, -1.0]])
    np.testing.assert_allclose(ensemble_scores([a, b], np.array([1.0, 1.0])), (a + b) / 2)
    expected = (0.75 * a + 0.25 * b) / 1.0
    np.testing.assert_allclose(ensemble_scores([a, b], np.array([0.6, 0.2])), expected)
    # a weight-0 model is left out (its -inf cannot poison the mean); all zero: uniform
    np.testing.assert_allclose(ensemble_scores([b, a], np.array([1.0, 0.0])), b)
    np.testing.assert_allclose(ensemble_scores([a, b], np.array([0.0, 0.0])), (a + b) / 2)
    probs = soft_labels(ensemble_scores([a, b], np.array([1.0, 1.0])), 2.0)
    assert probs[0, 2] == 0 and np.allclose(probs.sum(axis=1), 1)


def test_uniform_weighting_skips_the_prior_and_weighs_equally(labelled, pool, make_context):
    method = pet(weighting="uniform", unlabelled=4).fit(labelled, make_context(pool=pool))
    assert method.weights_.tolist() == [1.0, 1.0]
    assert [row["prior_accuracy"] for row in method.rows_] == [None, None]


def test_the_same_seed_gives_the_same_run(labelled, pool, make_context, task):
    runs = [
        pet(unlabelled=8).fit(labelled, make_context(pool=pool, seed=seed)).predict(task.test.texts)
        for seed in (0, 0)
    ]
    first, again = runs
    np.testing.assert_array_equal(first.labels, again.labels)
    np.testing.assert_allclose(first.scores, again.scores, rtol=1e-5, atol=1e-6)
    assert first.extra["patterns"] == again.extra["patterns"]
    assert first.extra["ensemble_test_predictions"] == again.extra["ensemble_test_predictions"]


def test_the_unlabelled_sample_is_the_seeds_and_never_holds_labelled_rows(
    task, pool, labelled, make_context, monkeypatch
):
    targets = spy(monkeypatch, EncoderClassifier, "fit_targets")
    for seed in (0, 1):
        pet(unlabelled=36).fit(labelled, make_context(pool=pool, seed=seed))
    samples = [t.texts[len(labelled) :] for t, _ in targets]
    assert all(sorted(s) == sorted(task.train.texts[12:]) for s in samples)  # the whole pool
    targets.clear()
    for seed in (0, 0, 1):
        pet(unlabelled=8).fit(labelled, make_context(pool=pool, seed=seed))
    first, again, other = (t.texts[len(labelled) :] for t, _ in targets)
    assert first == again and first != other
    assert not set(first + other) & set(labelled.texts)


def test_extra_reports_each_pattern_and_the_ensemble_and_the_runner_scores_them(
    task, labelled, pool, make_context
):
    method = pet(unlabelled=6)
    result = runner.execute(method, labelled, task.test, make_context(pool=pool))
    extra = result["extra"]
    assert extra["n_unlabelled"] == 6 and extra["pattern_method"] == "prompt-lora"
    assert extra["student_selection"] == method.student_.selection()
    assert "selected_step" in extra["student_selection"]
    assert [row["template"] for row in extra["patterns"]] == [0, 1]
    assert extra["patterns"][1]["template_text"] == task.templates[1]
    test_scores = []
    for row, model in zip(extra["patterns"], method.patterns_):
        prediction = model.predict(task.test.texts)
        test_scores.append(prediction.scores)
        assert row["test_predictions"] == prediction.labels.tolist()
        assert row["selection"] == model.selection() and "selected_step" in row["selection"]
        assert row["test_accuracy"] == pytest.approx((prediction.labels == task.test.labels).mean())
    ensemble = ensemble_scores(test_scores, method.weights_).argmax(axis=1)
    assert extra["ensemble_test_predictions"] == ensemble.tolist()
    assert extra["ensemble_test_accuracy"] == pytest.approx((ensemble == task.test.labels).mean())
    student = method.student_.predict(task.test.texts).labels
    assert result["predictions"] == student.tolist()


def test_costs_are_everything_fit_trained_and_the_served_students_size(
    labelled, pool, make_context, task
):
    method = pet(unlabelled=6).fit(labelled, make_context(pool=pool))
    cost, student = method.training_cost(), method.student_.training_cost()
    patterns = [m.training_cost() for m in method.patterns_]
    assert cost.trainable_params == student.trainable_params
    assert cost.artifact_bytes == student.artifact_bytes
    assert cost.train_steps == student.train_steps + sum(p.train_steps for p in patterns)
    assert cost.train_examples == student.train_examples + sum(p.train_examples for p in patterns)
    assert method.predict(task.test.texts).diagnostic_seconds > 0


def test_ipet_retrains_each_pattern_on_the_others_growing_pseudo_labels(
    task, labelled, pool, make_context, monkeypatch
):
    from promptworth.methods import pet as module

    fits = spy(monkeypatch, PromptLoRA, "fit")
    generations, picks, original_generation = [], [], module.PET.train_generation
    original_pick = module.pseudo_labelled

    def record_generation(self, *args):
        generations.append(original_generation(self, *args))
        return generations[-1]

    def record_pick(unlabelled, scores, n, shares):
        picks.append((scores, n, original_pick(unlabelled, scores, n, shares)))
        return picks[-1][2]

    monkeypatch.setattr(module.PET, "train_generation", record_generation)
    monkeypatch.setattr(module, "pseudo_labelled", record_pick)
    method = pet(unlabelled=30, ipet_rounds=2, ipet_growth=2.0)
    method.fit(labelled, make_context(pool=pool))
    assert [context.prompt.template for _, context in fits] == [0, 1] * 3
    assert [n for _, n, _ in picks] == [12, 12, 30, 30]  # (2^j - 1) * 12, capped at the pool
    pool_texts = set(task.train.texts[12:])
    for k, (data, _) in enumerate(fits[2:]):
        round_, model = divmod(k, 2)
        scores, _, picked = picks[k]
        other = generations[round_].pool_scores[1 - model]  # the other pattern, previous round
        np.testing.assert_allclose(scores, other, rtol=1e-12)
        assert data.texts == labelled.texts + picked.texts and set(picked.texts) <= pool_texts
        assert data.labels.tolist() == labelled.labels.tolist() + picked.labels.tolist()
    assert [row["pseudo_labelled"] for row in method.rows_] == [
        [len(picks[0][2]), len(picks[2][2])],
        [len(picks[1][2]), len(picks[3][2])],
    ]
    assert method.patterns_ == generations[-1].models and len(method.patterns_) == 2
    assert method.training_cost().train_steps == method.student_.training_cost().train_steps + sum(
        cost.train_steps for g in generations for cost in g.costs
    )


def test_pseudo_labels_keep_label_shares_and_take_the_most_confident():
    texts = [f"t{i}" for i in range(6)]
    # labels by argmax: 0, 0, 0, 1, 1, 2; confidence decreasing within label 0 from row 2 to 0
    scores = np.log(
        np.array(
            [
                [0.5, 0.3, 0.2],
                [0.7, 0.2, 0.1],
                [0.9, 0.05, 0.05],
                [0.1, 0.8, 0.1],
                [0.3, 0.6, 0.1],
                [0.2, 0.2, 0.6],
            ]
        )
    )
    picked = pseudo_labelled(Split(texts, np.zeros(6, dtype=int)), scores, 3, np.full(3, 1 / 3))
    assert picked.texts == ["t2", "t3", "t5"] and picked.labels.tolist() == [0, 1, 2]
    picked = pseudo_labelled(
        Split(texts, np.zeros(6, dtype=int)), scores, 4, np.array([0.5, 0.5, 0])
    )
    assert picked.texts == ["t1", "t2", "t3", "t4"] and picked.labels.tolist() == [0, 0, 1, 1]


def test_bad_parameters_are_refused_before_any_model_loads(labelled, make_context, task):
    with pytest.raises(PromptworthError, match="pattern_method"):
        make_method("pet", pattern_method="head")
    with pytest.raises(PromptworthError, match="encoder-head, encoder-ft"):
        make_method("pet", student="zero-shot")
    with pytest.raises(PromptworthError, match="weighting"):
        make_method("pet", weighting="median")
    with pytest.raises(PromptworthError, match="distinct template"):
        make_method("pet", templates=[0, 0])
    with pytest.raises(PromptworthError, match=r"pet\.unlabelled=0"):
        make_method("pet", ipet_rounds=1, unlabelled=0)
    with pytest.raises(PromptworthError, match="no parameter"):
        make_method("pet", pattern_params={"no_such": 1})
    context = make_context(model="no-such-model")  # nothing may load before these checks
    with pytest.raises(PromptworthError, match="has 2 templates"):
        pet(templates=[0, 2], unlabelled=0).fit(labelled, context)
    with pytest.raises(PromptworthError, match="predict rank"):
        generate = make_context(model="no-such-model", prompt=PromptOptions(predict="generate"))
        pet(unlabelled=0).fit(labelled, generate)
    with pytest.raises(PromptworthError, match=">= 2"):
        pet(templates=[1], ipet_rounds=1, unlabelled=4).fit(labelled, context)
    with pytest.raises(ValueError, match=r"RunContext\.pool"):
        pet(unlabelled=4).fit(labelled, make_context())


def test_the_final_classifier_defaults_to_its_measured_recipe_under_the_users_params():
    default = make_method("pet").get_params()["student_params"]
    assert (default["head_init"], default["max_steps"]) == ("random", 400)
    assert default != make_method("encoder-ft").get_params()  # not encoder-ft's own defaults
    mixed = make_method("pet", student_params={"max_steps": 50}).get_params()["student_params"]
    assert (mixed["head_init"], mixed["max_steps"]) == ("random", 50)  # one key overridden
    probe = make_method("pet", student_params={"head_init": "probe"}).get_params()
    assert probe["student_params"]["head_init"] == "probe"
    head = make_method("pet", student="encoder-head").get_params()["student_params"]
    assert head["max_steps"] == 400
