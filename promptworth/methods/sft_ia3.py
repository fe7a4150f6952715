"""sft-ia3: IA3 vectors (Liu et al. 2022) trained on a generation task's reference answers (the
loss, rule and selection of sft_lora.py), at ia3's learning rates; merged into the weights for
serving."""

from __future__ import annotations

from dataclasses import dataclass

from promptworth.methods.base import RunContext
from promptworth.methods.ia3 import IA3
from promptworth.methods.sft_lora import SFTConfig, SupervisedFineTuning


class SFTIA3(SupervisedFineTuning):
    name = "sft-ia3"
    family = "parameter-efficient"
    learning_rates = IA3.learning_rates

    @dataclass(frozen=True)
    class Config(SFTConfig):
        learning_rate: float = IA3.Config.learning_rate

    def trainable_model(self, backbone, context: RunContext):
        return IA3().trainable_model(backbone, context)
