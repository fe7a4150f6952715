"""prompt-lora (Setup 2 through PEFT LoRA): low-rank adapters learn the prompt-based objective."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from promptworth.methods.base import RunContext, at_least, require
from promptworth.methods.prompt_training import (
    PromptTrainedMethod,
    TrainingConfig,
    peft_on_copy,
    trained_tensors,
)


def lora_config(c):
    """PEFT's LoraConfig for a causal LM from a method config's r, alpha, dropout and target
    modules ("default": PEFT's choice for the architecture)."""
    from peft import LoraConfig

    return LoraConfig(
        r=c.r,
        lora_alpha=c.alpha,
        lora_dropout=c.dropout,
        task_type="CAUSAL_LM",
        target_modules=None if c.target_modules == "default" else c.target_modules,
    )


def lora_on_copy(backbone, c, seed: int):
    """A LoRA-wrapped copy of the causal LM (`lora_config(c)`).

    LoRA injects layers into the model it wraps, so wrap a copy; adapters stay fp32. The A
    matrices' random init follows the run's seed, not what the process ran before."""
    return peft_on_copy(backbone, lora_config(c), seed)


class PromptLoRA(PromptTrainedMethod):
    name = "prompt-lora"
    family = "parameter-efficient"
    # Hu et al. 2021 used 2e-4 (GPT-2) to 5e-4 (RoBERTa); QLoRA (Dettmers et al. 2023) 1e-4 to
    # 2e-4; 1e-3 is the default for few, short runs
    learning_rates = (1e-4, 3e-4, 1e-3)

    test_params: ClassVar[dict[str, Any]] = {"max_steps": 3, "batch_size": 4}

    @dataclass(frozen=True)
    class Config(TrainingConfig):
        r: int = 8  # LoRA rank
        alpha: int = 16  # LoRA scaling
        dropout: float = 0.05  # LoRA dropout
        target_modules: str = (
            "default"  # "default" = PEFT's choice for the architecture, or "all-linear"
        )
        merge: bool = True  # merge adapters into the base weights for prediction
        learning_rate: float = 1e-3

        def __post_init__(self) -> None:
            super().__post_init__()
            at_least(self, 1, "r", "alpha")
            require(self, "dropout", 0 <= self.dropout < 1, "a number in [0, 1)")
            require(self, "target_modules", bool(self.target_modules.strip()), "a module name")

    def trainable_model(self, backbone, context: RunContext):
        return lora_on_copy(backbone, self.config, context.seed)

    def for_inference(self, model):
        """Merged adapters cost nothing at inference: W + BA is one matrix again. Merging
        removes the adapter, so a copy of it is kept for `state` (a few MB at r=8)."""
        if not self.config.merge:
            return model
        self.adapter_ = trained_tensors(model)
        return model.merge_and_unload()

    def trained_state(self) -> dict:
        return self.adapter_ if self.config.merge else super().trained_state()
