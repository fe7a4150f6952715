"""Shared machinery of methods that put a classifier on frozen backbone features."""

from __future__ import annotations

import numpy as np

from promptworth.backbones.embed import embed
from promptworth.methods.base import Method, Prediction, RunContext, TrainingCost, count_params
from promptworth.tasks.base import Split


class FrozenFeaturesMethod(Method):
    """Fit a scikit-learn classifier on cached features of a frozen backbone."""

    backbone_kind: str = "causal-lm"
    prompt_fields = ()  # raw texts are embedded: no template, no prompt option

    def backbone_spec(self, context: RunContext) -> str:
        return context.model if self.backbone_kind == "causal-lm" else context.encoder

    def make_classifier(self, seed: int):
        raise NotImplementedError

    def features(self, texts: list[str]) -> tuple[np.ndarray, float]:
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
        from promptworth.features import FeatureCache

        self.backbone_ = context.backbones.get(self.backbone_spec(context), self.backbone_kind)
        self.cache_ = context.features if context.features is not None else FeatureCache()
        self.n_labels_ = context.task.n_labels
        x, feature_seconds = self.features(train.texts)
        self.classifier_ = self.make_classifier(context.seed).fit(x, train.labels)
        head_bytes = sum(getattr(a, "nbytes", 0) for a in fitted_arrays(self.classifier_))
        self.cost_ = TrainingCost(
            trainable_params=sum(a.size for a in fitted_arrays(self.classifier_)),
            total_params=count_params(self.backbone_.model)[1],
            train_examples=len(train),
            artifact_bytes=int(head_bytes),
            cached_seconds=feature_seconds,
        )
        return self

    def predict(self, texts: list[str]) -> Prediction:
        self.check_fitted()
        x, feature_seconds = self.features(texts)
        tokens = self.backbone_.tokenizer(
            texts, truncation=True, max_length=self.config.max_tokens
        ).input_ids
        return Prediction(
            self.classifier_.predict(x).astype(int),
            prompt_tokens=sum(map(len, tokens)),  # what the backbone reads, as for prompts
            cached_seconds=feature_seconds,
            scores=label_scores(self.classifier_, x, self.n_labels_),
        )


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
