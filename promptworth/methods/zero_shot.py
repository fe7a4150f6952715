"""zero-shot: the task's template and verbaliser on the frozen causal LM; no training."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from promptworth.methods.base import (
    Method,
    Prediction,
    RunContext,
    SavedState,
    TrainingCost,
    count_params,
)
from promptworth.methods.prompting import PromptFormat, predict_with_lm
from promptworth.tasks.base import Example, Split


class ZeroShot(Method):
    name = "zero-shot"
    family = "prompting"
    trains = False
    task_types = ("classification", "generation")
    backbones_read = ("causal-lm",)

    @dataclass(frozen=True)
    class Config:
        pass

    def fit(self, train: Split, context: RunContext) -> ZeroShot:
        backbone = context.backbones.get(context.model, "causal-lm")
        self.model_ = backbone.model
        self.format_ = PromptFormat(context.task, backbone.tokenizer, context.prompt)
        self.backbone_spec_ = backbone.spec
        self.cost_ = TrainingCost(total_params=count_params(self.model_)[1])
        return self

    @classmethod
    def unsaveable(cls, params: dict) -> str | None:
        return None

    def state(self) -> SavedState:
        """Nothing but the prompt, which the artifact's task and prompt options hold."""
        self.check_fitted()
        return self.saved(backbones={"causal-lm": self.backbone_spec_})

    def restore(self, state: SavedState, context: RunContext) -> ZeroShot:
        self.fit(Split([], np.zeros(0, dtype=int)), context)
        self.restored(state)
        return self

    def predict(self, texts: list[Example]) -> Prediction:
        self.check_fitted()
        return predict_with_lm(self.model_, self.format_, texts)
