"""distill-gen: a teacher's answers for unlabelled inputs, the sft-lora student trained on them
beside the labelled references (never scored on them), what the run records."""

from __future__ import annotations

import numpy as np
import pytest

from promptworth.errors import PromptworthError
from promptworth.methods import make_method
from promptworth.methods.sft_lora import SFTLoRA
from promptworth.methods.training import Learner
from promptworth.methods.zero_shot import ZeroShot
from promptworth.run import runner
from promptworth.tasks.answers import final_answer
from promptworth.tasks.base import Split
from promptworth.tasks.subsets import Remainder
from promptworth.testing import save_tiny_causal_lm, tiny_generation_task

STUDENT = {"max_steps": 3, "batch_size": 4}
POOL_REFERENCE = "never read"


def distill(**params):
    return make_method(
        "distill-gen", **{"teacher": "zero-shot", "student_params": STUDENT, **params}
    )


@pytest.fixture
def generation(make_context):
    """The tiny generation task, its first 8 training rows labelled, the rest an unlabelled
    pool whose references say POOL_REFERENCE, and a context holding that pool."""
    task = tiny_generation_task()
    train = task.train
    unread = [[POOL_REFERENCE]] * (len(train) - 8)
    pool = Remainder(Split.generation(train.texts, train.references[:8] + unread), range(8))
    return (
        task,
        train.subset(range(8)),
        lambda **kw: make_context(**{"task": task, "pool": pool, **kw}),
    )


def spy_student(monkeypatch) -> list:
    """What the student is fitted on: (split, gold_rows)."""
    seen, original = [], SFTLoRA.fit_answers

    def record(self, train, context, gold_rows):
        seen.append((train, gold_rows))
        return original(self, train, context, gold_rows)

    monkeypatch.setattr(SFTLoRA, "fit_answers", record)
    return seen


def test_student_learns_the_references_and_the_teachers_answers(generation, monkeypatch):
    task, labelled, context = generation
    seen = spy_student(monkeypatch)
    method = distill(n_unlabeled=10).fit(labelled, context())
    ((split, gold_rows),) = seen
    assert gold_rows == len(labelled) == 8
    assert split.texts[:8] == labelled.texts and split.references[:8] == labelled.references
    pool_texts = task.train.texts[8:]
    assert len(split) > 8 and set(split.texts[8:]) <= set(pool_texts)
    teacher = make_method("zero-shot").fit(labelled, context())
    outputs = dict(zip(pool_texts, teacher.predict(pool_texts).texts))
    assert split.references[8:] == [(final_answer(outputs[t]),) for t in split.texts[8:]]
    assert all(refs != (POOL_REFERENCE,) for refs in split.references)  # the pool's unread
    extra = method.predict(task.test.texts[:2]).extra
    assert extra["teacher"] == "zero-shot" and extra["n_unlabeled"] == 10
    assert extra["teacher_empty_answers"] == 10 - len(split.texts[8:])
    assert extra["student_selection"] == method.student_.selection()
    cost, student = method.training_cost(), method.student_.training_cost()
    assert cost.trainable_params == student.trainable_params > 0
    assert cost.train_examples == student.train_examples + teacher.training_cost().train_examples


def test_only_labelled_rows_are_held_out():
    learner = Learner([], None, None, np.full(10, -1), None, dev=lambda rows: None, gold_rows=6)
    np.testing.assert_array_equal(learner.scoreable(np.arange(10)), np.arange(6))
    every = Learner([], None, None, np.full(10, -1), None, dev=lambda rows: None)
    np.testing.assert_array_equal(every.scoreable(np.arange(10)), np.arange(10))


def test_the_dev_split_is_drawn_from_the_labelled_rows(make_context, monkeypatch):
    """40 labelled rows: a dev split of 8 (training.py's min_dev), from them only."""
    from promptworth.methods import prompt_training

    task = tiny_generation_task(n_train=50)
    context = make_context(task=task, pool=Remainder(task.train, range(40)))
    seen, original = [], prompt_training.fit_selected

    def record(learner, fit_rows, dev_rows, *args, **kwargs):
        seen.append((fit_rows, dev_rows))
        return original(learner, fit_rows, dev_rows, *args, **kwargs)

    monkeypatch.setattr(prompt_training, "fit_selected", record)
    distill(n_unlabeled=6).fit(task.train.subset(range(40)), context)
    ((fit_rows, dev_rows),) = seen
    assert len(dev_rows) == 8 and set(dev_rows) < set(range(40))
    assert set(range(40, 46)) <= set(fit_rows) and not set(fit_rows) & set(dev_rows)


def test_the_teacher_model_is_the_teachers_only(generation, monkeypatch, tmp_path):
    _, labelled, context = generation
    larger = str(save_tiny_causal_lm(tmp_path / "teacher-lm"))
    teacher_fit, student_fit, models = ZeroShot.fit, SFTLoRA.fit_answers, []

    def teacher(self, train, run_context):
        models.append(run_context.model)
        return teacher_fit(self, train, run_context)

    def student(self, train, run_context, gold_rows):
        models.append(run_context.model)
        return student_fit(self, train, run_context, gold_rows)

    monkeypatch.setattr(ZeroShot, "fit", teacher)
    monkeypatch.setattr(SFTLoRA, "fit_answers", student)
    distill(teacher_model=larger, n_unlabeled=4).fit(labelled, context())
    assert models == [larger, context().model]


def test_the_teachers_time_is_training_time(generation):
    task, labelled, context = generation
    method = distill(n_unlabeled=6, student="sft-ia3")
    result = runner.execute(method, labelled, task.test, context())
    assert result["train_seconds"] >= result["extra"]["teacher_train_and_answer_seconds"] > 0


def test_bad_teachers_are_refused_before_any_model_loads(generation):
    with pytest.raises(PromptworthError, match=r"distill-gen\.teacher='head'"):
        make_method("distill-gen", teacher="head")
    with pytest.raises(PromptworthError, match="one of sft-lora, sft-ft, sft-ia3"):
        make_method("distill-gen", student="encoder-ft")
    task, labelled, context = generation
    calibrated = make_method("distill-gen", teacher="few-shot")
    assert "its teacher few-shot" in calibrated.task_problem(task)
    with pytest.raises(ValueError, match=r"RunContext\.pool"):
        distill(n_unlabeled=5).fit(labelled, context(pool=None))
