"""distill: knowledge distillation from a method of the sweep into a small encoder.

The teacher (a registered method, prompt-lora by default) is trained on the run's labelled
subset, then gives soft labels - the softmax of its label scores at temperature T - to
`n_unlabeled` texts sampled from the rest of the training pool (RunContext.pool). The student
(encoder-ft on the sweep's encoder, MiniLM by default) learns those soft labels (T^2-scaled
soft cross-entropy, Hinton et al. 2015) together with the gold labels of the labelled subset.

The run's predictions are the student's. `Prediction.extra` keeps the teacher's predictions on
the same test texts (its accuracy is computed from them by the report) and both models'
eval seconds per example on those texts, so the inference speed-up is measured, not assumed.
`promptworth fit` keeps the student alone (ServesStudent).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from promptworth.errors import PromptworthError
from promptworth.methods import REGISTRY, make_method, method_class
from promptworth.methods.base import (
    BACKBONE_KINDS,
    Method,
    Prediction,
    PromptOptions,
    RunContext,
    SavedState,
    TrainingCost,
    at_least,
    one_of,
    positive,
)
from promptworth.methods.encoder_classifier import EncoderClassifier, Targets
from promptworth.methods.training import split_dev
from promptworth.tasks.base import Example, Split, Task


def soft_labels(scores: np.ndarray, temperature: float) -> np.ndarray:
    """Row-wise softmax of scores / T; labels scored -inf get probability 0."""
    z = scores / temperature
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def soft_targets(texts: list[Example], scores: np.ndarray, temperature: float) -> Targets:
    """What a student learns from label scores: their softmax at T, matched at the same T."""
    probs = soft_labels(scores, temperature)
    return Targets(list(texts), probs, np.full(len(texts), temperature))


def sample_pool(context: RunContext, n: int, method: str, param: str) -> Split:
    """`n` texts of the unlabelled pool, the same for the same seed (and n)."""
    if n == 0:
        return Split([], np.zeros(0, dtype=int))
    if context.pool is None:
        raise ValueError(
            f"{method} needs RunContext.pool, the unlabelled rest of the training pool (the "
            f"sweep sets it); pass pool= when calling fit directly, or set {param}=0"
        )
    if n > len(context.pool):
        raise PromptworthError(f"{param}={n} but the pool has only {len(context.pool)} texts")
    rng = np.random.default_rng(context.seed)
    return context.pool.subset(np.sort(rng.choice(len(context.pool), n, replace=False)))


def student_names() -> list[str]:
    """The methods that can learn soft labels: the encoder classifiers."""
    return [n for n in REGISTRY if issubclass(method_class(n), EncoderClassifier)]


def train_student(
    student: EncoderClassifier, train: Split, soft: Targets, context: RunContext
) -> EncoderClassifier:
    """The student learns the labelled subset's gold labels together with the `soft` targets;
    the training rule's dev split comes from the labelled subset (gold labels only)."""
    fit_idx, dev_idx = split_dev(len(train), student.schedule(), context.seed)
    gold = Targets.gold(train.subset(fit_idx), context.task.n_labels)
    return student.fit_targets(gold + soft, train.subset(dev_idx), context)


def distilled_cost(teacher: TrainingCost, student: TrainingCost, labelling: float) -> TrainingCost:
    """What a distillation's training cost: the student's parameters and artifact, both
    trainings' examples, tokens and steps, and the work both took from caches (`labelling`: the
    teacher's labelling)."""
    return TrainingCost(
        trainable_params=student.trainable_params,
        total_params=student.total_params,
        train_examples=teacher.train_examples + student.train_examples,
        train_tokens=teacher.train_tokens + student.train_tokens,
        train_steps=teacher.train_steps + student.train_steps,
        artifact_bytes=student.artifact_bytes,
        cached_seconds=teacher.cached_seconds + labelling,
    )


STUDENT = "student."  # the key prefix of the student's tensors in the artifact


class ServesStudent(Method):
    """A method that trains other models (a teacher, PET's pattern models) to teach an encoder
    classifier, the student, which alone serves: the run's labels and scores are the student's.
    Its artifact is therefore the student's weights, with the fit's cost, selection and
    `fit_extra_`; the other models are not kept. A restored model predicts as the fitted one
    did, without the measurements of the other models (they are diagnostics of the sweep)."""

    student_: EncoderClassifier
    fit_extra_: dict[str, Any]
    only_student_: bool = False  # restored from an artifact: no teacher or pattern models

    @classmethod
    def unsaveable(cls, params: dict) -> str | None:
        return None

    def state(self) -> SavedState:
        """The student's trained weights (its encoder-ft or encoder-head state) and the fit's
        record; not the teacher or pattern models, which only the sweep's measurements use."""
        self.check_fitted()
        student = self.student_.state()
        tensors = {STUDENT + name: value for name, value in student.tensors.items()}
        return self.saved(
            tensors, student.backbones, student=student.meta, fit_extra=self.fit_extra_
        )

    def restore(self, state: SavedState, context: RunContext) -> ServesStudent:
        c = self.config
        tensors = {name.removeprefix(STUDENT): value for name, value in state.tensors.items()}
        student = SavedState(tensors, state.meta["student"], state.backbones)
        self.student_ = make_method(c.student, **c.student_params).restore(student, context)
        self.fit_extra_, self.only_student_ = state.meta["fit_extra"], True
        self.restored(state)
        return self

    def for_serving(self) -> ServesStudent:
        """The student alone with the fit's record, as `restore` gives it: the teacher or
        pattern models, which the sweep's predictions also run for their diagnostics, are
        neither held nor run."""
        self.check_fitted()
        served = type(self)(**self.get_params())
        served.student_, served.fit_extra_, served.cost_ = (
            self.student_,
            self.fit_extra_,
            self.cost_,
        )
        served.only_student_ = True
        return served

    def served(self, texts: list[Example]) -> Prediction:
        """The student's prediction with the fit's record: what a restored model gives."""
        return replace(self.student_.predict(texts), extra=dict(self.fit_extra_))


class Distill(ServesStudent):
    name = "distill"
    family = "semi-supervised"
    test_params: ClassVar[dict[str, Any]] = {
        "teacher": "head",
        "n_unlabeled": 0,  # the contract suite's context has no pool; tests/test_distill.py does
        "student_params": {"max_steps": 3, "batch_size": 4},
    }

    @dataclass(frozen=True)
    class Config:
        teacher: str = "prompt-lora"  # a registered method, trained on the labelled subset
        teacher_params: dict = field(default_factory=dict)
        teacher_model: str = ""  # the teacher's causal LM ("" = the sweep's --model)
        student: str = "encoder-ft"  # encoder-ft (all layers) or encoder-head (output layer)
        student_params: dict = field(default_factory=dict)
        n_unlabeled: int = 500  # texts the teacher labels, sampled from the unlabelled pool
        temperature: float = 2.0

        def __post_init__(self) -> None:
            one_of(self, "teacher", [name for name in REGISTRY if name != Distill.name])
            one_of(self, "student", student_names())
            at_least(self, 0, "n_unlabeled")
            positive(self, "temperature")

    def __init__(self, **params: Any):
        super().__init__(**params)
        # The nested parameters fail here, not mid-sweep, and are kept resolved: every
        # parameter of the teacher and the student, defaults included and as their declared
        # types, so the run key changes when a nested default does (C=1 and C=1.0 are one key).
        teacher, student = self.teacher_and_student()
        self.config = replace(
            self.config, teacher_params=teacher.get_params(), student_params=student.get_params()
        )

    @classmethod
    def planned_params(cls, params: dict[str, Any], task: Task) -> dict[str, Any]:
        """The teacher's and the student's parameters as each plans them on `task` (a
        chain-of-thought teacher keys the task's answer trigger)."""
        nested = {
            f"{role}_params": method_class(params[role]).planned_params(
                params[f"{role}_params"], task
            )
            for role in ("teacher", "student")
        }
        return {**params, **nested}

    def teacher_and_student(self) -> tuple[Method, Method]:
        c = self.config
        return make_method(c.teacher, **c.teacher_params), make_method(
            c.student, **c.student_params
        )

    def backbone_specs(self) -> dict[str, str]:
        teacher, student = self.teacher_and_student()
        own = {f"{self.name}.teacher_model": self.config.teacher_model}
        return (
            {k: v for k, v in own.items() if v}
            | teacher.backbone_specs()
            | student.backbone_specs()
        )

    def incompatible(self, prompt: PromptOptions) -> str | None:
        return self.teacher_and_student()[0].incompatible(prompt)

    @classmethod
    def reads_prompt(cls, params: dict[str, Any]) -> tuple[str, ...]:
        """The student reads no prompt; the teacher may."""
        teacher = params.get("teacher", cls.Config.teacher)
        return method_class(teacher).reads_prompt(params.get("teacher_params") or {})

    @classmethod
    def reads_backbones(cls, params: dict[str, Any]) -> tuple[str, ...]:
        """What its teacher and its student read (both backbones for one this version does not
        register: a stored run's)."""
        read = set()
        for role in ("teacher", "student"):
            name = params.get(role, getattr(cls.Config, role))
            if name not in REGISTRY:
                return BACKBONE_KINDS
            read.update(method_class(name).reads_backbones(params.get(f"{role}_params") or {}))
        return tuple(kind for kind in BACKBONE_KINDS if kind in read)

    backbone_params: ClassVar[tuple[str, ...]] = ("teacher_model",)

    @classmethod
    def with_backbones(cls, params: dict[str, Any], canonical) -> tuple[dict[str, Any], list[str]]:
        """Its own teacher_model, and those the teacher's and student's parameters name."""
        params, named = super().with_backbones(params, canonical)
        for role in ("teacher", "student"):
            inner = method_class(params[role]).with_backbones(params[f"{role}_params"], canonical)
            params[f"{role}_params"] = inner[0]
            named += inner[1]
        return params, named

    def fit(self, train: Split, context: RunContext) -> Distill:
        c = self.config
        unlabeled = sample_pool(context, c.n_unlabeled, self.name, "n_unlabeled")
        start = time.perf_counter()
        teacher = make_method(c.teacher, **c.teacher_params)
        teacher.fit(train, replace(context, model=c.teacher_model or context.model))
        teacher_cost = teacher.training_cost()
        labelled_at = time.perf_counter()
        targets = self.teacher_targets(teacher, unlabeled, context.task.n_labels)
        label_seconds = time.perf_counter() - labelled_at + targets.cached_seconds
        student = train_student(
            make_method(c.student, **c.student_params), train, targets.soft, context
        )
        student_cost = student.training_cost()
        self.teacher_, self.student_ = teacher, student
        self.fit_extra_ = {
            "teacher": c.teacher,
            "n_unlabeled": len(unlabeled),
            "teacher_train_seconds": round(labelled_at - start + teacher_cost.cached_seconds, 3),
            "teacher_label_seconds": round(label_seconds, 3),
            "teacher_mean_confidence": targets.mean_confidence,
            "teacher_selection": teacher.selection(),
            "student_selection": student.selection(),
        }
        self.cost_ = distilled_cost(teacher_cost, student_cost, targets.cached_seconds)
        return self

    def teacher_targets(self, teacher: Method, unlabeled: Split, n_labels: int) -> SoftTargets:
        """The teacher's soft labels for the unlabelled texts (their gold labels stay unread)."""
        if not len(unlabeled):
            return SoftTargets(Targets([], np.zeros((0, n_labels)), np.zeros(0)), 0.0, None)
        prediction = teacher.predict(unlabeled.texts)
        if prediction.scores is None:
            raise ValueError(
                f"teacher {teacher.name!r} gave no label scores (generation gives none); "
                "distillation needs soft labels: use rank prediction (--predict rank)"
            )
        return SoftTargets(
            soft_targets(unlabeled.texts, prediction.scores, self.config.temperature),
            prediction.cached_seconds,
            round(float(soft_labels(prediction.scores, 1.0).max(axis=1).mean()), 4),
        )

    def predict(self, texts: list[Example]) -> Prediction:
        self.check_fitted()
        if self.only_student_:
            return self.served(texts)
        student, student_seconds = timed_predict(self.student_, texts)
        teacher, teacher_seconds = timed_predict(self.teacher_, texts)
        n = max(len(texts), 1)
        extra = {
            **self.fit_extra_,
            "teacher_predictions": teacher.labels.tolist(),
            "teacher_eval_ms_per_example": round(1000 * teacher_seconds / n, 3),
            "student_eval_ms_per_example": round(1000 * student_seconds / n, 3),
            "speedup": round(teacher_seconds / max(student_seconds, 1e-9), 2),
        }
        return replace(
            student,
            extra=extra,
            diagnostic_seconds=teacher_seconds - teacher.cached_seconds,  # its wall time
        )


@dataclass
class SoftTargets:
    soft: Targets
    cached_seconds: float  # teacher features taken from the shared cache (see FeatureCache)
    mean_confidence: float | None  # mean top probability of the teacher at T=1


def timed_predict(method: Method, texts: list[Example]) -> tuple[Prediction, float]:
    """A prediction and what it cost: wall time plus work taken from a cache."""
    start = time.perf_counter()
    prediction = method.predict(texts)
    return prediction, time.perf_counter() - start + prediction.cached_seconds
