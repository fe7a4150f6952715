"""prefix-tuning (Li & Liang 2021): trained key/value vectors prefixed to every attention layer.

The LM is frozen; each layer attends to learned keys and values before the prompt. PEFT passes
them as the KV cache, so prediction scores without one (`virtual_tokens`). By default
(init=template) the prefix replaces the template's leading words and starts as the keys and
values the frozen model computes for them (template_start.py): the untrained model scores
exactly as zero-shot does. init=random is PEFT's random prefix before the whole prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

from promptworth.methods.base import RunContext, at_least
from promptworth.methods.prompt_training import TrainingConfig
from promptworth.methods.prompt_tuning import (
    TEMPLATE,
    PromptLearningMethod,
    check_virtual_tokens,
)


class PrefixTuning(PromptLearningMethod):
    name = "prefix-tuning"
    family = "parameter-efficient"
    # P-tuning v2 (Liu et al. 2022) trains deep prompts at 5e-3 to 1e-2
    learning_rates = (1e-3, 3e-3, 1e-2)
    inits = (TEMPLATE, "random")
    other_init = "random"

    @dataclass(frozen=True)
    class Config(TrainingConfig):
        init: str = TEMPLATE  # "template": the leading words' keys and values; "random": PEFT's
        num_virtual_tokens: int = 0  # 0: the leading words' count (template), else 20
        projection: bool = False  # reparameterise the prefix through an MLP while training
        encoder_hidden_size: int = 256  # that MLP's width (with projection only)
        learning_rate: float = 1e-2

        def __post_init__(self):
            super().__post_init__()
            check_virtual_tokens(self, PrefixTuning.inits)
            at_least(self, 1, "encoder_hidden_size")

    def trainable_model(self, backbone, context: RunContext):
        from peft import PrefixTuningConfig

        from promptworth.methods.template_start import head_key_values, load_start

        c = self.config

        def start(model, head: list[int]) -> None:
            encoder = model.prompt_encoder[model.active_adapter]
            last = encoder.transform[-1] if c.projection else None
            load_start(model, head_key_values(model, head), last)

        return self.started_model(
            backbone,
            context,
            PrefixTuningConfig,
            start,
            prefix_projection=c.projection,
            encoder_hidden_size=c.encoder_hidden_size,
        )
