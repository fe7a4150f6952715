"""features-lr: a scikit-learn classifier on frozen sentence vectors (the feature-based approach).

The backbone is the sweep's encoder (MiniLM by default: a sentence encoder trained for mean
pooling and cosine similarity, so its vectors are L2-normalised by default) or the causal LM's
last hidden layer. Vectors come from the shared FeatureCache, so sizes and seeds reuse them.
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sklearn
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer, StandardScaler
from sklearn.svm import LinearSVC
from sklearn.tree._tree import Tree

from promptworth.backbones.embed import POOLINGS
from promptworth.errors import PromptworthError
from promptworth.methods.base import RunContext, SavedState, at_least, one_of, positive
from promptworth.methods.frozen_features import FrozenFeaturesMethod
from promptworth.tasks.base import Split

BACKBONES = ("encoder", "causal-lm")

# Each known classifier by name, built from C and the seed; C is the inverse L2 strength of the
# linear ones (ridge: alpha = 1/C) and is not used by the forest or nearest neighbours.
CLASSIFIERS: dict[str, Callable] = {
    "logistic-regression": lambda C, seed: LogisticRegression(
        C=C, max_iter=2000, random_state=seed
    ),
    "linear-svc": lambda C, seed: LinearSVC(C=C, random_state=seed),
    "ridge": lambda C, seed: RidgeClassifier(alpha=1.0 / C),
    "random-forest": lambda C, seed: RandomForestClassifier(random_state=seed, n_jobs=1),
    "knn": lambda C, seed: KNeighborsClassifier(n_neighbors=5),
}
# Classifiers whose fitted state is more than arrays (a forest's trees, a neighbour index): their
# artifact keeps what they were fit on and restore fits them again (FeaturesLR.state).
REFIT_AT_LOAD = ("random-forest", "knn")
# How cross-validation compares values of C for the classifiers that have one: log loss where
# there are probabilities (a proper score, smooth even on 2-example folds), else accuracy.
CV_SCORING = {"logistic-regression": "neg_log_loss", "linear-svc": "accuracy", "ridge": "accuracy"}


class FeaturesLR(FrozenFeaturesMethod):
    name = "features-lr"
    family = "feature-based"

    @dataclass(frozen=True)
    class Config:
        backbone: str = "encoder"  # "encoder" (--encoder) or "causal-lm" (--model hidden states)
        pooling: str = "mean"  # mean or last token of the last layer
        normalize: bool = True  # L2-normalise vectors (cosine geometry, as MiniLM was trained)
        standardize: bool = False  # zero-mean, unit-variance features before the classifier
        classifier: str = "logistic-regression"  # see CLASSIFIERS
        # Inverse L2 strength (logistic-regression, linear-svc; ridge: alpha=1/C); None: chosen
        # per training subset by cross-validation (frozen_features.chosen_c).
        C: float | None = None
        max_tokens: int = 128

        def __post_init__(self) -> None:
            one_of(self, "backbone", BACKBONES)
            one_of(self, "pooling", POOLINGS)
            one_of(self, "classifier", CLASSIFIERS)
            if self.C is not None:
                positive(self, "C")
            at_least(self, 1, "max_tokens")

    @property
    def backbone_kind(self) -> str:  # type: ignore[override]  # chosen per config, not per class
        return self.config.backbone

    @classmethod
    def reads_backbones(cls, params: dict) -> tuple[str, ...]:
        return (params.get("backbone", cls.Config.backbone),)

    @property
    def cv_scoring(self) -> str | None:
        return CV_SCORING.get(self.config.classifier)

    def make_classifier(self, seed: int, C: float | None):
        c = self.config
        steps = [Normalizer()] if c.normalize else []
        steps += [StandardScaler()] if c.standardize else []
        return make_pipeline(*steps, CLASSIFIERS[c.classifier](C, seed))

    def fit(self, train: Split, context: RunContext) -> FeaturesLR:
        super().fit(train, context)
        # Forests and neighbours keep what they learn outside coef_-style arrays: count it all.
        self.cost_ = dataclasses.replace(
            self.cost_,
            trainable_params=sum(a.size for a in learned_arrays(self.classifier_)),
            artifact_bytes=len(pickle.dumps(self.classifier_)),
        )
        if self.config.classifier in REFIT_AT_LOAD:  # the vectors come from the cache
            self.train_x_, self.train_y_ = self.features(train.texts)[0], np.asarray(train.labels)
        return self

    def state(self) -> SavedState:
        """A linear classifier's learned arrays; for random-forest and knn, the training rows'
        vectors and labels and the fitted classifier's probabilities on them: `predict` fits
        the classifier again and refuses it unless it gives those probabilities.

        The training vectors and labels, with the seed and the config, are all a forest's or
        nearest neighbours' fit reads: scikit-learn's forest draws its bootstraps and features
        from the seed (random_state, one job), so the same arrays grow the same trees, and a
        neighbour index is a function of the vectors. Writing the trees as arrays instead would
        mean writing scikit-learn's private Tree layout, which changes between its versions."""
        if self.config.classifier not in REFIT_AT_LOAD:
            return super().state()
        self.check_fitted()
        tensors = {
            "train_x": self.train_x_,
            "train_y": self.train_y_,
            "train_probs": self.classifier_.predict_proba(self.train_x_),
        }
        return self.saved(
            tensors,
            {self.backbone_kind: self.backbone_.spec},
            fit_extra=self.fit_extra_,
            n_labels=self.n_labels_,
            seed=self.seed_,
            sklearn=sklearn.__version__,
        )

    def restore(self, state: SavedState, context: RunContext) -> FeaturesLR:
        if self.config.classifier not in REFIT_AT_LOAD:
            return super().restore(state, context)  # type: ignore[return-value]
        self.use_backbone(context)
        meta, tensors = state.meta, state.tensors
        self.n_labels_, self.seed_ = meta["n_labels"], meta["seed"]
        self.fit_extra_ = meta["fit_extra"]
        self.train_x_, self.train_y_ = tensors["train_x"], tensors["train_y"]
        classifier = self.make_classifier(self.seed_, self.fit_extra_.get("C"))
        self.classifier_ = classifier.fit(self.train_x_, self.train_y_)
        probs = self.classifier_.predict_proba(self.train_x_)
        if not np.allclose(probs, tensors["train_probs"], rtol=0, atol=1e-9):
            raise PromptworthError(
                f"features-lr: {self.config.classifier} fit again from the artifact does not "
                f"give the saved model's probabilities on its training rows (scikit-learn "
                f"{meta['sklearn']} at fit, {sklearn.__version__} now); fit the model again"
            )
        self.restored(state)
        return self


def learned_arrays(estimator) -> list[np.ndarray]:
    """Float arrays a fitted estimator stores: coefficients, scaler statistics, tree thresholds
    and leaf values, or the memorised vectors of a nearest-neighbour classifier."""
    if isinstance(estimator, np.ndarray):
        return [estimator] if estimator.dtype.kind == "f" else []
    if isinstance(estimator, (list, tuple)):
        return [a for item in estimator for a in learned_arrays(item)]
    if isinstance(estimator, Tree):
        return [estimator.threshold, estimator.value]
    if hasattr(estimator, "steps"):
        return learned_arrays([step for _, step in estimator.steps])
    if not hasattr(estimator, "get_params"):
        return []
    return [
        array
        for name, value in vars(estimator).items()
        if (name.endswith("_") and not name.startswith("__")) or name == "_fit_X"
        for array in learned_arrays(value)
    ]
