"""p-tuning (Liu et al. 2021, "GPT Understands, Too"): virtual-token embeddings produced by a
small trained prompt encoder (MLP or LSTM) and placed before the prompt; LM frozen.

The encoder only helps optimisation: the artifact is its output, the virtual-token embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass

from promptworth.methods.base import RunContext, at_least, one_of
from promptworth.methods.prompt_training import TrainingConfig, peft_on_copy
from promptworth.methods.prompt_tuning import PromptLearningMethod

ENCODERS = ("MLP", "LSTM")


class PTuning(PromptLearningMethod):
    name = "p-tuning"
    summary = "virtual tokens from a trained prompt encoder (PEFT p-tuning); LM frozen"

    @dataclass(frozen=True)
    class Config(TrainingConfig):
        num_virtual_tokens: int = 20
        encoder: str = "MLP"  # "MLP" or "LSTM"
        encoder_hidden_size: int = 128
        learning_rate: float = 1e-3

        def __post_init__(self) -> None:
            super().__post_init__()
            at_least(self, 1, "num_virtual_tokens", "encoder_hidden_size")
            one_of(self, "encoder", ENCODERS)

    def trainable_model(self, backbone, context: RunContext):
        from peft import PromptEncoderConfig

        c = self.config
        config = PromptEncoderConfig(
            task_type="CAUSAL_LM",
            num_virtual_tokens=c.num_virtual_tokens,
            encoder_reparameterization_type=c.encoder,
            encoder_hidden_size=c.encoder_hidden_size,
        )
        return peft_on_copy(backbone, config, context.seed)
