"""ia3 (Liu et al. 2022, (IA)³): learned vectors that rescale keys, values and feed-forward
activations (PEFT's choice of layers for the architecture; for Llama k_proj, v_proj, down_proj);
LM frozen. The fewest trainable parameters of the adapter methods, and no virtual tokens, so
prediction keeps the KV-cache scorer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from promptworth.methods.base import RunContext
from promptworth.methods.prompt_training import (
    PromptTrainedMethod,
    TrainingConfig,
    peft_on_copy,
)


class IA3(PromptTrainedMethod):
    name = "ia3"
    family = "parameter-efficient"
    # T-Few (Liu et al. 2022) trains the vectors at 3e-3 (Adafactor, 1,000 steps)
    learning_rates = (1e-3, 3e-3, 1e-2)

    test_params: ClassVar[dict[str, Any]] = {"max_steps": 3, "batch_size": 4}

    @dataclass(frozen=True)
    class Config(TrainingConfig):
        learning_rate: float = 1e-2

    def trainable_model(self, backbone, context: RunContext):
        from peft import IA3Config

        return peft_on_copy(backbone, IA3Config(task_type="CAUSAL_LM"), context.seed)
