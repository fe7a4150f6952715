"""Shared machinery of methods that put a classifier on frozen backbone features.

The L2 strength of the linear classifiers is chosen per training subset by cross-validation
(unless given): a fixed C suits one size only. scikit-learn's C multiplies the summed loss, so a
fixed C = 1 regularises 10 examples 100 times harder, relative to their loss, than 1,000; on
L2-normalised sentence vectors the weights then stay so small that the intercepts (the class
counts) decide, and an uneven 10-example subset predicted one class for 297 of 300 test rows.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from promptworth.backbones.embed import embed, tokenize_examples
from promptworth.methods.base import (
    Method,
    Prediction,
    RunContext,
    SavedState,
    TrainingCost,
    count_params,
)
from promptworth.tasks.base import Example, Split

# Inverse L2 strengths cross-validation chooses from: one per decade over six decades centred on
# scikit-learn's default C = 1; from near-constant predictions (the class prior) to almost no
# penalty on unit-length vectors. Decades, not finer: 7 values x at most 5 folds = 35 fits.
C_GRID = np.logspace(-3, 3, 7)
MAX_FOLDS = 5
# When no label has two examples nothing can be held out: scikit-learn's default. One example
# per label makes the intercepts equal, so no count-driven collapse either.
PRIOR_C = 1.0


class FrozenFeaturesMethod(Method):
    """Fit a scikit-learn classifier on cached features of a frozen backbone."""

    backbone_kind: str = "causal-lm"
    prompt_fields = ()  # raw texts are embedded: no template, no prompt option

    def backbone_spec(self, context: RunContext) -> str:
        return context.model if self.backbone_kind == "causal-lm" else context.encoder

    @classmethod
    def reads_backbones(cls, params: dict) -> tuple[str, ...]:
        return (cls.backbone_kind,)

    def make_classifier(self, seed: int, C: float | None):
        raise NotImplementedError

    @property
    def cv_scoring(self) -> str | None:
        """How cross-validation compares values of C; None: the classifier has no C."""
        return "neg_log_loss"

    def features(self, texts: list[Example]) -> tuple[np.ndarray, float]:
        """Cached vectors for `texts` and what computing them costs without the cache."""
        config = self.config
        namespace = (
            f"{self.backbone_.spec}@{self.backbone_.revision}/{self.backbone_.placement.dtype}"
            f"/{config.pooling}/{config.max_tokens}"
        )
        vectors = self.cache_.get(
            namespace,
            texts,
            lambda missing: embed(self.backbone_, missing, config.pooling, config.max_tokens),
        )
        return vectors, self.cache_.cost(namespace, len(texts))

    def fit(self, train: Split, context: RunContext) -> FrozenFeaturesMethod:
        from promptworth.backbones.features import FeatureCache

        self.backbone_ = context.backbones.get(self.backbone_spec(context), self.backbone_kind)
        self.cache_ = context.features if context.features is not None else FeatureCache()
        self.n_labels_, self.seed_ = context.task.n_labels, context.seed
        x, feature_seconds = self.features(train.texts)
        self.fit_extra_ = self.regularisation(x, train.labels, context.seed)
        C = self.fit_extra_.get("C")
        self.classifier_ = self.make_classifier(context.seed, C).fit(x, train.labels)
        head_bytes = sum(getattr(a, "nbytes", 0) for a in fitted_arrays(self.classifier_))
        self.cost_ = TrainingCost(
            trainable_params=sum(a.size for a in fitted_arrays(self.classifier_)),
            total_params=count_params(self.backbone_.model)[1],
            train_examples=len(train),
            artifact_bytes=int(head_bytes),
            cached_seconds=feature_seconds,
        )
        return self

    @classmethod
    def unsaveable(cls, params: dict) -> str | None:
        return None

    def state(self) -> SavedState:
        """The classifier's learned arrays and numbers; the backbone is referenced, not saved."""
        self.check_fitted()
        tensors, learned = estimator_state(self.classifier_)
        return self.saved(
            tensors,
            {self.backbone_kind: self.backbone_.spec},
            learned=learned,
            fit_extra=self.fit_extra_,
            n_labels=self.n_labels_,
            seed=self.seed_,
        )

    def use_backbone(self, context: RunContext) -> None:
        """The frozen backbone, and a cache of its vectors for the texts predicted."""
        from promptworth.backbones.features import FeatureCache

        self.backbone_ = context.backbones.get(self.backbone_spec(context), self.backbone_kind)
        self.cache_ = FeatureCache()

    def restore(self, state: SavedState, context: RunContext) -> FrozenFeaturesMethod:
        self.use_backbone(context)
        meta = state.meta
        self.n_labels_, self.fit_extra_ = meta["n_labels"], meta["fit_extra"]
        self.seed_ = meta["seed"]
        classifier = self.make_classifier(self.seed_, self.fit_extra_.get("C"))
        self.classifier_ = restore_estimator(classifier, state.tensors, meta["learned"])
        self.restored(state)
        return self

    def regularisation(self, x: np.ndarray, labels: np.ndarray, seed: int) -> dict:
        """The C to fit with and how it was chosen, for the run's `extra`: the config's C if
        given, else the best of C_GRID by cross-validation on the training subset."""
        if self.cv_scoring is None:
            return {}
        if self.config.C is not None:
            return {"C": float(self.config.C), "C_rule": "given"}
        return chosen_c(lambda C: self.make_classifier(seed, C), x, labels, seed, self.cv_scoring)

    def predict(self, texts: list[Example]) -> Prediction:
        self.check_fitted()
        x, feature_seconds = self.features(texts)
        tokenizer, max_tokens = self.backbone_.tokenizer, self.config.max_tokens
        tokens = tokenize_examples(tokenizer, texts, max_tokens).input_ids
        return Prediction(
            self.classifier_.predict(x).astype(int),
            prompt_tokens=sum(map(len, tokens)),  # what the backbone reads, as for prompts
            cached_seconds=feature_seconds,
            scores=label_scores(self.classifier_, x, self.n_labels_),
            extra=dict(self.fit_extra_),
        )


def cv_splits(labels: np.ndarray, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold over the labels with at least two examples, k = min(5, the smallest
    such count). Rows of single-example labels stay in every training fold and are never held
    out, so each fold's classifier knows every label. Empty when no label has two examples."""
    from sklearn.model_selection import StratifiedKFold

    classes, counts = np.unique(labels, return_counts=True)
    held_out = np.flatnonzero(np.isin(labels, classes[counts >= 2]))
    if not len(held_out):
        return []
    always = np.flatnonzero(np.isin(labels, classes[counts < 2]))
    folds = StratifiedKFold(
        n_splits=int(min(MAX_FOLDS, counts[counts >= 2].min())), shuffle=True, random_state=seed
    )
    return [
        (np.sort(np.concatenate([held_out[train], always])), held_out[test])
        for train, test in folds.split(held_out, labels[held_out])
    ]


def chosen_c(
    make: Callable[[float], object], x: np.ndarray, labels: np.ndarray, seed: int, scoring: str
) -> dict:
    """The C of C_GRID with the best mean cross-validated score (ties: the smaller C, i.e. the
    stronger regularisation), or PRIOR_C when no fold can be held out."""
    from sklearn.metrics import get_scorer, log_loss, make_scorer
    from sklearn.model_selection import cross_val_score

    splits = cv_splits(labels, seed)
    if not splits:
        return {"C": PRIOR_C, "C_rule": "prior: no label has two examples to hold out"}
    scorer = (  # a held-out fold may lack a label: log loss is over all the subset's labels
        make_scorer(
            log_loss,
            greater_is_better=False,
            response_method="predict_proba",
            labels=np.unique(labels),
        )
        if scoring == "neg_log_loss"
        else get_scorer(scoring)
    )
    means = [cross_val_score(make(C), x, labels, cv=splits, scoring=scorer).mean() for C in C_GRID]
    best = int(np.argmax(means))
    return {
        "C": float(C_GRID[best]),
        "C_rule": f"{len(splits)}-fold cross-validation, {scoring}",
        "cv_score": float(means[best]),
    }


def label_scores(classifier, x: np.ndarray, n_labels: int) -> np.ndarray:
    """[n, n_labels] scores whose softmax is the classifier's label distribution: log-probs, or
    decision values for margin classifiers; -inf for labels absent from the training subset."""
    if hasattr(classifier, "predict_proba"):
        with np.errstate(divide="ignore"):
            raw = np.log(classifier.predict_proba(x))
    else:
        raw = classifier.decision_function(x)
        if raw.ndim == 1:  # two classes: one margin, positive for the second
            raw = np.stack([np.zeros_like(raw), raw], axis=1)
    scores = np.full((len(x), n_labels), -np.inf)
    scores[:, classifier.classes_] = raw
    return scores


def fitted_arrays(estimator) -> list[np.ndarray]:
    """The learned arrays of a fitted scikit-learn estimator or pipeline (names ending in `_`)."""
    steps = [s for _, s in estimator.steps] if hasattr(estimator, "steps") else [estimator]
    arrays = []
    for step in steps:
        for name, value in vars(step).items():
            if (
                name.endswith("_")
                and not name.startswith("_")
                and isinstance(value, np.ndarray)
                and value.dtype.kind == "f"
            ):
                arrays.append(value)
    return arrays


def pipeline_steps(estimator) -> list:
    return [s for _, s in estimator.steps] if hasattr(estimator, "steps") else [estimator]


def estimator_state(estimator) -> tuple[dict[str, np.ndarray], dict]:
    """A fitted scikit-learn estimator or pipeline as what it learned: numeric arrays (by
    "STEP.attribute_") and plain numbers or strings. Anything else (trees, fitted
    sub-estimators) is refused: it could only be saved by pickling."""
    arrays, values = {}, {}
    for index, step in enumerate(pipeline_steps(estimator)):
        for name, value in vars(step).items():
            if not name.endswith("_") or name.startswith("_"):
                continue
            key = f"{index}.{name}"
            if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
                arrays[key] = value
            elif isinstance(value, np.generic):
                values[key] = value.item()
            elif value is None or isinstance(value, (bool, int, float, str)):
                values[key] = value
            else:
                raise ValueError(f"{type(step).__name__}.{name} cannot be saved without pickle")
    return arrays, values


def restore_estimator(estimator, arrays: dict[str, np.ndarray], values: dict):
    """`estimator` (unfitted, built as the saved one was) given what `estimator_state` saved."""
    from sklearn.linear_model import RidgeClassifier
    from sklearn.preprocessing import LabelBinarizer

    steps = pipeline_steps(estimator)
    for key, value in [*arrays.items(), *values.items()]:
        index, name = key.split(".", 1)
        setattr(steps[int(index)], name, np.asarray(value) if key in arrays else value)
    for step in steps:
        if isinstance(step, RidgeClassifier):  # its labels' binarizer, as its fit made it
            step._label_binarizer = LabelBinarizer(pos_label=1, neg_label=-1).fit(step.classes_)
    return estimator
