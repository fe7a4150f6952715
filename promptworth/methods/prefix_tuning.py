"""prefix-tuning (Li & Liang 2021): trained key/value vectors prefixed to every attention layer.

The LM is frozen; each layer attends to `num_virtual_tokens` learned keys and values before the
prompt. PEFT passes them as the KV cache, so prediction scores without one (`virtual_tokens`).
"""

from __future__ import annotations

from dataclasses import dataclass

from promptworth.methods.base import RunContext, at_least
from promptworth.methods.prompt_training import TrainingConfig, peft_on_copy
from promptworth.methods.prompt_tuning import PromptLearningMethod


class PrefixTuning(PromptLearningMethod):
    name = "prefix-tuning"
    summary = "trained key/value prefixes in every attention layer (PEFT prefix tuning)"

    @dataclass(frozen=True)
    class Config(TrainingConfig):
        num_virtual_tokens: int = 20
        projection: bool = False  # reparameterise the prefix through an MLP while training
        encoder_hidden_size: int = 256  # that MLP's width (with projection only)
        learning_rate: float = 1e-2

        def __post_init__(self) -> None:
            super().__post_init__()
            at_least(self, 1, "num_virtual_tokens", "encoder_hidden_size")

    def trainable_model(self, backbone, context: RunContext):
        from peft import PrefixTuningConfig

        c = self.config
        config = PrefixTuningConfig(
            task_type="CAUSAL_LM",
            num_virtual_tokens=c.num_virtual_tokens,
            prefix_projection=c.projection,
            encoder_hidden_size=c.encoder_hidden_size,
        )
        return peft_on_copy(backbone, config, context.seed)
