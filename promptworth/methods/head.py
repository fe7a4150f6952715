"""head (Setup 1): a linear softmax classifier on the frozen causal LM's features.

Features are the mean of the LM's last hidden layer over the input's tokens, computed once per
example. The classifier is multinomial logistic regression (a linear layer + softmax trained with
cross-entropy, L2-regularised) on standardised features; its L2 strength is chosen per training
subset by cross-validation (frozen_features.py) unless C is given.
"""

from __future__ import annotations

from dataclasses import dataclass

from promptworth.backbones.embed import POOLINGS
from promptworth.methods.base import at_least, one_of, positive
from promptworth.methods.frozen_features import FrozenFeaturesMethod


class Head(FrozenFeaturesMethod):
    name = "head"
    family = "feature-based"
    backbone_kind = "causal-lm"

    @dataclass(frozen=True)
    class Config:
        pooling: str = "mean"  # mean or last token of the last layer
        max_tokens: int = 128
        C: float | None = None  # inverse L2 strength; None: chosen by cross-validation

        def __post_init__(self) -> None:
            one_of(self, "pooling", POOLINGS)
            at_least(self, 1, "max_tokens")
            if self.C is not None:
                positive(self, "C")

    def make_classifier(self, seed: int, C: float | None):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(
            StandardScaler(), LogisticRegression(C=C, max_iter=2000, random_state=seed)
        )
