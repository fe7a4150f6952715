"""prompt-tuning (Lester et al. 2021): trained soft-prompt embeddings before the prompt; LM frozen.

The soft prompt starts from the template's own instruction words (PEFT's PromptTuningInit.TEXT),
so training begins from a prompt the model already reads. Also home of what every PEFT
prompt-learning method shares (prefix-tuning, p-tuning): virtual tokens that PEFT rebuilds on
each forward call, so prediction scores without a KV cache (`virtual_tokens`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from promptworth.methods.base import RunContext, at_least, one_of
from promptworth.methods.prompt_training import (
    PromptTrainedMethod,
    TrainingConfig,
    peft_on_copy,
)
from promptworth.tasks.base import TEXT_SLOT

INITS = ("text", "vocab")


class PromptLearningMethod(PromptTrainedMethod):
    """A PEFT prompt-learning method: its artifact is the virtual tokens PEFT would save."""

    virtual_tokens = True
    test_params: ClassVar[dict[str, Any]] = {
        "max_steps": 3,
        "batch_size": 4,
        "num_virtual_tokens": 4,
    }

    def produced_tensors(self, model) -> list:
        # What save_pretrained writes: the encoder's output, not the encoder (p-tuning's MLP).
        return [model.get_prompt_embedding_to_save(model.active_adapter)]


def instruction_words(context: RunContext) -> str:
    """The template without its text slot: the words that initialise the soft prompt."""
    template = context.task.templates[context.prompt.template]
    return " ".join(template.replace(TEXT_SLOT, " ").split())


class PromptTuning(PromptLearningMethod):
    name = "prompt-tuning"
    summary = "soft-prompt embeddings (PEFT prompt tuning) initialised from the template's words"

    @dataclass(frozen=True)
    class Config(TrainingConfig):
        num_virtual_tokens: int = 20
        init: str = "text"  # "text": the template's instruction words; "vocab": random tokens
        learning_rate: float = 3e-2

        def __post_init__(self) -> None:
            super().__post_init__()
            at_least(self, 1, "num_virtual_tokens")
            one_of(self, "init", INITS)

    def trainable_model(self, backbone, context: RunContext):
        from peft import PromptTuningConfig, PromptTuningInit

        c = self.config
        if c.init == "vocab":
            config = PromptTuningConfig(
                task_type="CAUSAL_LM",
                num_virtual_tokens=c.num_virtual_tokens,
                prompt_tuning_init=PromptTuningInit.SAMPLE_VOCAB,
            )
        else:
            config = PromptTuningConfig(
                task_type="CAUSAL_LM",
                num_virtual_tokens=c.num_virtual_tokens,
                prompt_tuning_init=PromptTuningInit.TEXT,
                prompt_tuning_init_text=instruction_words(context),
                # peft loads the tokenizer again (and never trusts remote code): same commit
                tokenizer_name_or_path=context.backbones.source(context.model).path,
                tokenizer_kwargs={"revision": context.backbones.source(context.model).commit},
            )
        return peft_on_copy(backbone, config, context.seed)
