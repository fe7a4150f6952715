"""distill-gen: sequence-level distillation (Kim & Rush 2016) for a generation task.

The teacher (a registered method that generates, self-consistency by default, on the sweep's
causal LM or `teacher_model`) is trained on the run's labelled subset, then answers
`n_unlabeled` inputs sampled from the rest of the training pool (RunContext.pool); their
references are never read. The student is sft-lora (or `student` sft-ft, sft-ia3) on the
sweep's own causal LM, fine-tuned on the labelled rows' references together with the teacher's
answers (the answer its metrics read, `final_answer`, one line). The student's dev rows are
labelled rows only: a teacher's answer is trained on, never scored.

The run's answers are the student's. Training the teacher and generating its answers is part of
the run's training time; `extra` records the teacher, how many inputs it answered and how many
answers were empty (left out), and both trainings' selections.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from promptworth.methods import REGISTRY, method_class
from promptworth.methods.base import (
    Method,
    Prediction,
    RunContext,
    at_least,
    one_of,
)
from promptworth.methods.distill import Distill, distilled_cost, sample_pool
from promptworth.methods.sft_lora import SFTLoRA, SupervisedFineTuning
from promptworth.tasks.answers import final_answer
from promptworth.tasks.base import Example, Split, Task


def generating_teachers() -> list[str]:
    """The registered methods that generate, but for the distillations themselves."""
    return [
        name
        for name in REGISTRY
        if "generation" in method_class(name).task_types and name != DistillGeneration.name
    ]


def teacher_answers(teacher: Method, texts: list[Example]) -> tuple[list[Example], list[str]]:
    """The texts the teacher answered and their answers (`final_answer` of its outputs: a
    chain's conclusion); empty answers are left out."""
    outputs = teacher.predict(texts).texts
    answered = [(text, final_answer(output.strip())) for text, output in zip(texts, outputs)]
    kept = [(text, answer) for text, answer in answered if answer]
    return [text for text, _ in kept], [answer for _, answer in kept]


def sft_students() -> list[str]:
    """The methods that fine-tune on reference answers (sft-lora, sft-ft, sft-ia3)."""
    return [n for n in REGISTRY if issubclass(method_class(n), SupervisedFineTuning)]


class DistillGeneration(Distill):
    name = "distill-gen"
    family = "semi-supervised"
    task_types = ("generation",)
    test_params: ClassVar[dict[str, Any]] = {
        "teacher": "zero-shot",
        "n_unlabeled": 0,  # the contract suite's context has no pool; tests/test_distill.py does
        "student_params": {"max_steps": 3, "batch_size": 4},
    }

    @dataclass(frozen=True)
    class Config:
        teacher: str = "self-consistency"  # a registered method that generates
        teacher_params: dict = field(default_factory=dict)
        teacher_model: str = ""  # the teacher's causal LM ("" = the sweep's --model)
        student: str = SFTLoRA.name  # sft-lora, sft-ft or sft-ia3, on the sweep's --model
        student_params: dict = field(default_factory=dict)
        n_unlabeled: int = 500  # inputs the teacher answers, sampled from the unlabelled pool

        def __post_init__(self) -> None:
            one_of(self, "teacher", generating_teachers())
            one_of(self, "student", sft_students())
            at_least(self, 0, "n_unlabeled")

    @classmethod
    def unsaveable(cls, params: dict) -> str | None:
        """Its student is a generation fine-tune (sft-*), which has no saved form yet."""
        return SFTLoRA.unsaveable(params)

    @classmethod
    def reads_prompt(cls, params: dict[str, Any]) -> tuple[str, ...]:
        """The teacher's prompt fields and the student's (it reads the template)."""
        teacher = super().reads_prompt(params)
        student = method_class(params.get("student", cls.Config.student)).prompt_fields
        return tuple(dict.fromkeys(teacher + student))

    def task_problem(self, task: Task) -> str | None:
        """Its own, else its teacher's (few-shot generates only uncalibrated)."""
        own = super().task_problem(task)
        if own:
            return own
        teacher = self.teacher_and_student()[0].task_problem(task)
        return f"its teacher {self.config.teacher}: {teacher}" if teacher else None

    def fit(self, train: Split, context: RunContext) -> DistillGeneration:
        c = self.config
        unlabeled = sample_pool(context, c.n_unlabeled, self.name, "n_unlabeled")
        teacher, student = self.teacher_and_student()
        started, loading = time.perf_counter(), context.backbones.load_seconds
        teacher.fit(train, replace(context, model=c.teacher_model or context.model))
        texts, answers = teacher_answers(teacher, unlabeled.texts) if len(unlabeled) else ([], [])
        # as the runner charges training time: without loading the teacher's LM
        loaded = context.backbones.load_seconds - loading
        answered = time.perf_counter() - started - loaded
        both = Split.generation([*train.texts, *texts], [*train.references, *answers])
        student.fit_answers(both, context, gold_rows=len(train))
        self.student_ = student
        self.fit_extra_ = {
            "teacher": c.teacher,
            "n_unlabeled": len(unlabeled),
            "teacher_empty_answers": len(unlabeled) - len(texts),
            "teacher_train_and_answer_seconds": round(answered, 3),
            "teacher_selection": teacher.selection(),
            "student_selection": student.selection(),
        }
        self.cost_ = distilled_cost(teacher.training_cost(), student.training_cost(), 0.0)
        return self

    def predict(self, texts: list[Example]) -> Prediction:
        self.check_fitted()
        prediction = self.student_.predict(texts)
        prediction.extra.update(self.fit_extra_)
        return prediction
