"""distill: the teacher's soft labels on the unlabelled pool, the student, the reported extras."""

from __future__ import annotations

import time

import numpy as np
import pytest

from promptworth.errors import PromptworthError
from promptworth.methods import make_method
from promptworth.methods.base import Method, Prediction, PromptOptions, TrainingCost
from promptworth.methods.distill import soft_labels
from promptworth.methods.encoder_classifier import EncoderClassifier
from promptworth.run import runner
from promptworth.run.sweep import Sweep, SweepSpec
from promptworth.tasks.subsets import Remainder
from promptworth.testing import tiny_task, write_task_files

STUDENT = {"max_steps": 3, "batch_size": 4}


def distill(**params):
    return make_method("distill", **{"teacher": "head", "student_params": STUDENT, **params})


def spy_targets(monkeypatch) -> list:
    """Record what the student is asked to learn."""
    seen, original = [], EncoderClassifier.fit_targets

    def record(self, targets, dev, context):
        seen.append(targets)
        return original(self, targets, dev, context)

    monkeypatch.setattr(EncoderClassifier, "fit_targets", record)
    return seen


def test_student_learns_gold_labels_and_teacher_soft_labels_of_pool_texts(
    task, labelled, pool, make_context, monkeypatch
):
    seen = spy_targets(monkeypatch)
    method = distill(n_unlabeled=10, temperature=3.0).fit(labelled, make_context(pool=pool))
    targets = seen[0]
    soft_texts = targets.texts[len(labelled) :]
    assert len(soft_texts) == 10 and not set(soft_texts) & set(labelled.texts)
    assert set(soft_texts) <= set(task.train.texts[12:])
    np.testing.assert_array_equal(targets.temperature, [1.0] * 12 + [3.0] * 10)
    gold = dict(zip(labelled.texts, labelled.labels))  # in the order split_dev shuffled them
    expected = [gold[text] for text in targets.texts[:12]]
    np.testing.assert_array_equal(targets.probs[:12], np.eye(task.n_labels)[expected])
    teacher_scores = method.teacher_.predict(soft_texts).scores
    np.testing.assert_allclose(targets.probs[12:], soft_labels(teacher_scores, 3.0))


def test_predictions_are_the_students_and_extra_holds_the_teachers(
    task, labelled, pool, make_context
):
    method = distill(n_unlabeled=10).fit(labelled, make_context(pool=pool))
    prediction = method.predict(task.test.texts)
    student = method.student_.predict(task.test.texts)
    np.testing.assert_array_equal(prediction.labels, student.labels)
    extra = prediction.extra
    teacher = method.teacher_.predict(task.test.texts).labels
    assert extra["teacher_predictions"] == teacher.tolist()
    assert extra["teacher"] == "head" and extra["n_unlabeled"] == 10
    assert extra["teacher_eval_ms_per_example"] > 0 and extra["student_eval_ms_per_example"] > 0
    ratio = extra["teacher_eval_ms_per_example"] / extra["student_eval_ms_per_example"]
    assert extra["speedup"] == pytest.approx(ratio, rel=0.05)
    assert prediction.diagnostic_seconds > 0
    assert 1 / task.n_labels <= extra["teacher_mean_confidence"] <= 1


def test_costs_are_the_students_plus_the_teachers_training(labelled, pool, make_context):
    context = make_context(pool=pool)
    method = make_method(
        "distill",
        teacher="prompt-lora",
        teacher_params=STUDENT,
        student_params=STUDENT,
        n_unlabeled=6,
    ).fit(labelled, context)
    cost, student = method.training_cost(), method.student_.training_cost()
    teacher = method.teacher_.training_cost()
    assert cost.trainable_params == student.trainable_params
    assert cost.artifact_bytes == student.artifact_bytes
    assert cost.train_steps == teacher.train_steps + student.train_steps
    assert cost.train_examples == teacher.train_examples + student.train_examples
    recorded = method.predict(["the team won"]).extra["teacher_selection"]
    assert recorded == method.teacher_.selection() and "selected_step" in recorded
    recorded = method.predict(["the team won"]).extra["student_selection"]
    assert recorded == method.student_.selection() and "selected_step" in recorded


def test_the_pool_sample_depends_on_the_seed_only(labelled, pool, make_context, monkeypatch):
    seen = spy_targets(monkeypatch)
    for seed in (0, 0, 1):
        distill(n_unlabeled=8).fit(labelled, make_context(pool=pool, seed=seed))
    first, again, other = (t.texts for t in seen)
    assert first == again and first != other


def test_a_zero_shot_teacher_scores_with_rank_classification(labelled, pool, make_context):
    method = distill(teacher="zero-shot", n_unlabeled=6).fit(labelled, make_context(pool=pool))
    assert method.predict(["the team won"]).labels.shape == (1,)


def test_a_bigger_teacher_model_replaces_the_causal_lm_for_the_teacher_only(
    labelled, pool, make_context, tiny_lm_dir
):
    context = make_context(pool=pool, model="no-such-model")
    with pytest.raises(PromptworthError, match="no-such-model"):
        distill(teacher="zero-shot", n_unlabeled=6).fit(labelled, context)
    method = distill(teacher="zero-shot", teacher_model=tiny_lm_dir, n_unlabeled=6)
    assert method.fit(labelled, context).teacher_.model_ is not None


def test_a_teacher_without_label_scores_is_refused(labelled, pool, make_context):
    context = make_context(pool=pool, prompt=PromptOptions(predict="generate", batch_size=8))
    with pytest.raises(ValueError, match="no label scores"):
        distill(teacher="zero-shot", n_unlabeled=6).fit(labelled, context)


def test_missing_or_small_pool_is_a_clear_error(labelled, make_context, task):
    with pytest.raises(ValueError, match=r"RunContext\.pool"):
        distill(n_unlabeled=5).fit(labelled, make_context())
    with pytest.raises(PromptworthError, match="only 36"):
        distill(n_unlabeled=37).fit(labelled, make_context(pool=Remainder(task.train, range(12))))


def test_bad_names_are_refused():
    with pytest.raises(PromptworthError, match=r"distill\.teacher='distill'"):
        make_method("distill", teacher="distill")
    with pytest.raises(PromptworthError, match="encoder-head, encoder-ft"):
        make_method("distill", student="head")
    with pytest.raises(PromptworthError, match="no parameter"):
        make_method("distill", teacher_params={"no_such": 1})


def test_soft_labels_soften_with_temperature():
    scores = np.array([[0.0, 1.0, -np.inf], [2.0, 0.0, 0.0]])
    sharp, soft = soft_labels(scores, 1.0), soft_labels(scores, 4.0)
    np.testing.assert_allclose(sharp.sum(axis=1), 1.0)
    assert sharp[0, 2] == 0 and soft[0, 2] == 0
    assert soft.max(axis=1).tolist() < sharp.max(axis=1).tolist()


def test_remainder_is_the_pool_without_the_labelled_rows(task):
    rest = Remainder(task.train, [0, 5, 7])
    assert len(rest) == len(task.train) - 3
    picked = rest.subset([0, 1, 2, 3, 4, 5])
    assert picked.texts == [task.train.texts[i] for i in (1, 2, 3, 4, 6, 8)]


class SlowDiagnostics(Method):
    """Spends 0.3 s of predict on diagnostics and says so."""

    name, summary = "slow-diagnostics", "test double"

    def fit(self, train, context):
        self.cost_ = TrainingCost(total_params=1)
        return self

    def predict(self, texts):
        time.sleep(0.3)
        return Prediction(np.zeros(len(texts), dtype=int), diagnostic_seconds=0.3)


def test_runner_leaves_diagnostic_seconds_out_of_the_eval_cost(task, make_context):
    result = runner.execute(SlowDiagnostics(), task.train, task.test, make_context())
    assert result["eval_seconds"] < 0.1


def test_the_sweep_gives_each_run_the_rest_of_the_pool(
    tmp_path, tiny_lm_dir, tiny_encoder_dir, monkeypatch
):
    files = write_task_files(tiny_task(n_train=30, n_test=9), tmp_path)
    seen = spy_targets(monkeypatch)
    spec = SweepSpec(
        task=files[0],
        test_file=files[1],
        models=[tiny_lm_dir],
        encoders=[tiny_encoder_dir],
        methods=["distill"],
        sizes=[8],
        seeds=[0],
        dtype="float32",
        out=tmp_path / "out",
        method_params={
            "distill": {"teacher": "head", "n_unlabeled": 22, "student_params": STUDENT}
        },
    )
    sweep = Sweep(spec, quiet=True)
    plan, failures = sweep.execute()
    assert not failures
    labelled = {sweep.task.train.texts[i] for i in plan[0].train_indices}
    pool_texts = seen[0].texts[len(seen[0].texts) - 22 :]
    assert not labelled & set(pool_texts)  # all 22 unlabelled rows, none of the labelled 8
    ((_, _, result),) = sweep.store.load()
    assert len(result["extra"]["teacher_predictions"]) == len(sweep.task.test)


def test_the_serving_window_weighs_and_times_the_student_without_its_teacher(
    task, labelled, pool, make_context
):
    from promptworth.run import serving

    method = distill(n_unlabeled=10, teacher="prompt-lora").fit(labelled, make_context(pool=pool))
    served = method.for_serving()
    assert serving.held_bytes(served) == serving.held_bytes(method.student_)
    assert serving.held_bytes(method) > serving.held_bytes(served)  # the teacher's LM besides
    np.testing.assert_array_equal(
        served.predict(task.test.texts).labels, method.predict(task.test.texts).labels
    )
    window = serving.measure(method, task.test.texts)
    assert window["serving_weights_mb"] == pytest.approx(
        serving.held_bytes(method.student_) / serving.MB, abs=1e-3
    )
