"""zero-shot: the task's template and verbaliser on the frozen causal LM; no training."""

from __future__ import annotations

from dataclasses import dataclass

from promptworth.methods.base import Method, Prediction, RunContext, TrainingCost, count_params
from promptworth.methods.prompting import PromptFormat, predict_with_lm
from promptworth.tasks.base import Example, Split


class ZeroShot(Method):
    name = "zero-shot"
    family = "prompting"
    trains = False
    task_types = ("classification", "generation")

    @dataclass(frozen=True)
    class Config:
        pass

    def fit(self, train: Split, context: RunContext) -> ZeroShot:
        backbone = context.backbones.get(context.model, "causal-lm")
        self.model_ = backbone.model
        self.format_ = PromptFormat(context.task, backbone.tokenizer, context.prompt)
        self.cost_ = TrainingCost(total_params=count_params(self.model_)[1])
        return self

    def predict(self, texts: list[Example]) -> Prediction:
        self.check_fitted()
        return predict_with_lm(self.model_, self.format_, texts)
