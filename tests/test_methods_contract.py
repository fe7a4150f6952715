"""The shared conformance suite: the same contract checks over every registered method.

Like scikit-learn's estimator checks: the constructor only stores its config; fit returns self;
predict before fit fails; predictions have the right shape and range; the same config and seed
give identical predictions; training cost is reported.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from promptworth.errors import PromptworthError
from promptworth.methods import REGISTRY, make_method, method_class, prompt_started
from promptworth.methods.base import FAMILIES, NO_LABEL, NotFittedError
from promptworth.run import runner, serving
from promptworth.tasks.base import UNLABELLED
from promptworth.testing import tiny_generation_task, tiny_pair_task


def tiny(name: str):
    return make_method(name, **method_class(name).test_params)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_constructor_only_stores_config(name):
    method = tiny(name)
    assert not [k for k in vars(method) if k.endswith("_")], "fitted state before fit"
    assert method.get_params() == make_method(name, **method_class(name).test_params).get_params()


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_unknown_parameter_is_refused(name):
    with pytest.raises(PromptworthError, match="no parameter"):
        make_method(name, no_such_parameter=1)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_predict_before_fit_fails(name):
    with pytest.raises(NotFittedError):
        tiny(name).predict(["some text"])


def classifying_methods() -> list[str]:
    return sorted(n for n in REGISTRY if "classification" in method_class(n).task_types)


@pytest.mark.parametrize("kind", ["single", "pair"])
@pytest.mark.parametrize("name", classifying_methods())
def test_fit_predict_shapes_and_determinism(name, kind, task, make_context):
    """Every method on a one-input task and on a two-input (passage, question) task."""
    reason = method_class(name).unavailable("cpu")
    if reason:  # e.g. qlora: its refusal is tested in its own test file
        pytest.skip(reason)
    if kind == "pair":
        task = tiny_pair_task()
        base = make_context
        make_context = lambda: base(task=task)  # noqa: E731
    train = task.train.subset(range(24))
    first = tiny(name)
    assert first.fit(train, make_context()) is first
    prediction = first.predict(task.test.texts)
    assert prediction.labels.shape == (len(task.test),)
    assert set(prediction.labels.tolist()) <= set(range(task.n_labels)) | {NO_LABEL}
    assert prediction.prompt_tokens >= len(task.test)  # every method reads its inputs' tokens
    selection = first.selection()  # how fit chose its weights, recorded in the run's extra
    assert selection.items() <= prediction.extra.items()
    if name in prompt_started():
        assert selection["selection"] in ("dev", "cv", "budget") and "selected_step" in selection
    cost = first.training_cost()
    assert cost.total_params > 0
    if first.trains:
        assert cost.train_examples > 0
    if first.trains and first.updates_weights:
        assert cost.trainable_params > 0 and cost.artifact_bytes > 0
    window = serving.measure(first, task.test.texts)  # the serving window, per method
    assert window["latency_rows"] == min(serving.LATENCY_ROWS, len(task.test))
    assert 0 < window["latency_ms_p50"] <= window["latency_ms_p95"]
    assert window["serving_examples_per_second"] > 0 and window["serving_weights_mb"] > 0
    torch.manual_seed(1234)  # another process history: results must follow the seed alone
    again = tiny(name).fit(train, make_context()).predict(task.test.texts)
    np.testing.assert_array_equal(prediction.labels, again.labels)
    if prediction.scores is not None:
        np.testing.assert_allclose(prediction.scores, again.scores, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_method_declares_its_family(name):
    """The report groups methods into panels by family: each class declares one of FAMILIES."""
    cls = method_class(name)
    assert "family" in vars(cls), f"{name} inherits its family instead of declaring it"
    assert cls.family in FAMILIES


STEP_FIELDS = {"step", "prompt", "output", "answer", "prompt_tokens", "output_tokens", "seconds"}


def generating_methods() -> list[str]:
    return sorted(n for n in REGISTRY if "generation" in method_class(n).task_types)


def tiny_for_generation(name: str):
    cls = method_class(name)
    params = cls.generation_test_params
    return make_method(name, **(cls.test_params if params is None else params))


@pytest.mark.parametrize("name", generating_methods())
def test_generation_fit_predict_texts_and_determinism(name, make_context):
    """Every method that learns generation tasks, on a tiny one: one answer text per row."""
    task = tiny_generation_task()
    context = lambda: make_context(task=task)  # noqa: E731
    train = task.train.subset(range(12))
    first = tiny_for_generation(name)
    assert first.fit(train, context()) is first
    prediction = first.predict(task.test.texts)
    assert len(prediction.texts) == len(task.test)
    assert all(isinstance(text, str) for text in prediction.texts)
    assert (prediction.labels == UNLABELLED).all()
    assert prediction.n_unmapped == sum(not text for text in prediction.texts)
    assert prediction.prompt_tokens >= len(task.test)
    assert first.training_cost().total_params > 0
    steps = prediction.extra["traces"][0]["steps"]  # every step of a row, as the run ran it
    assert steps and all(set(step) >= STEP_FIELDS for step in steps)
    assert prediction.calls == len(steps) * len(task.test)
    assert prediction.generated_tokens >= sum(s["output_tokens"] for s in steps)
    result = runner.execute(tiny_for_generation(name), train, task.test, context())
    for key in ("exact_match", "token_f1"):
        assert 0 <= result[key] <= 1 and len(result["row_scores"][key]) == len(task.test)
    assert result["calls_per_row"] == len(steps)
    per_row = prediction.generated_tokens / len(task.test)
    assert result["generated_tokens_per_row"] == round(per_row, 2)
    torch.manual_seed(1234)
    again = tiny_for_generation(name).fit(train, context()).predict(task.test.texts)
    assert again.texts == prediction.texts


@pytest.mark.parametrize("name", sorted(set(REGISTRY) - set(generating_methods())))
def test_classification_methods_refuse_generation_tasks_before_loading(name, make_context):
    """The refusal is one line and comes before any model loads (the model does not exist)."""
    context = make_context(task=tiny_generation_task(), model="no-such-model")
    task = context.task
    with pytest.raises(PromptworthError, match="tiny-generation' is a generation task") as error:
        runner.execute(tiny(name), task.train.subset(range(4)), task.test, context)
    assert "\n" not in str(error.value)


def trained_params(name: str, **params) -> dict:
    """test_params and `params`, keeping what training produced (cv_folds=0: the step budget,
    no selection that could keep the untrained start), so a round trip restores trained
    weights."""
    fields = {f.name for f in dataclasses.fields(method_class(name).Config)}
    no_cv = {"cv_folds": 0} if "cv_folds" in fields else {}
    return {**method_class(name).test_params, **no_cv, **params}


# Configurations whose saved form differs from their method's test_params': classifiers fit
# again at load, and the semi-supervised methods with unlabelled texts to learn from.
SAVED_VARIANTS = [
    ("features-lr", {"classifier": "random-forest"}),
    ("features-lr", {"classifier": "knn"}),
    ("pet", {"unlabelled": 6, "templates": [0, 1]}),
    ("distill", {"n_unlabeled": 6}),
]


def saved_and_restored(name: str, params: dict, task, make_context, folder):
    """A method fit on 24 rows (the rest its unlabelled pool), saved as artifact files, and a
    fresh one restored from them on a task without rows."""
    from promptworth.run.artifact import read_artifact, write_artifact
    from promptworth.run.deploy import described_task, task_description
    from promptworth.tasks.subsets import Remainder

    train = task.train.subset(range(24))
    context = make_context(pool=Remainder(task.train, list(range(24))))
    fitted = make_method(name, **trained_params(name, **params)).fit(train, context)
    write_artifact(folder / "model", {"method": name}, fitted.state(), {})
    saved = read_artifact(folder / "model").state
    rowless = described_task(task_description(task, task.fingerprint))
    fresh = make_method(name, **trained_params(name, **params))
    assert fresh.restore(saved, make_context(task=rowless)) is fresh
    return fitted, saved, fresh


@pytest.mark.parametrize(
    ("name", "params"), [(name, {}) for name in classifying_methods()] + SAVED_VARIANTS
)
def test_saved_state_restores_the_same_predictions(name, params, task, make_context, tmp_path):
    """fit -> state -> artifact files -> restore in a fresh object, on a task without rows:
    the same labels and (to the CPU's rounding) the same scores."""
    cls = method_class(name)
    assert cls.unsaveable(trained_params(name, **params)) is None
    if cls.unavailable("cpu"):
        pytest.skip(cls.unavailable("cpu"))
    fitted, saved, fresh = saved_and_restored(name, params, task, make_context, tmp_path)
    expected = fitted.predict(task.test.texts)
    again = fresh.predict(task.test.texts)
    np.testing.assert_array_equal(expected.labels, again.labels)
    if expected.scores is not None:
        np.testing.assert_allclose(expected.scores, again.scores, rtol=1e-5, atol=1e-5)
    assert fresh.training_cost() == fitted.training_cost()
    assert fresh.selection() == fitted.selection()
    if saved.meta.get("trained") is not None:  # prompt-trained: the trained weights came back
        assert saved.meta["trained"] and saved.tensors
