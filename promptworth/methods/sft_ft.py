"""sft-ft: supervised fine-tuning of every weight of the causal LM on a generation task's
reference answers (the loss, rule and selection of sft_lora.py), at prompt-ft's learning rates."""

from __future__ import annotations

from dataclasses import dataclass

from promptworth.methods.base import RunContext
from promptworth.methods.generation import serving_copy
from promptworth.methods.prompt_ft import PromptFT
from promptworth.methods.sft_lora import SFTConfig, SupervisedFineTuning


class SFTFT(SupervisedFineTuning):
    name = "sft-ft"
    family = "prompt-based training"
    learning_rates = PromptFT.learning_rates

    @dataclass(frozen=True)
    class Config(SFTConfig):
        learning_rate: float = PromptFT.Config.learning_rate

    def trainable_model(self, backbone, context: RunContext):
        return PromptFT().trainable_model(backbone, context)

    def served(self, model, placement):
        return serving_copy(model, placement)
