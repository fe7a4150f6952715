"""prompt-tuning (Lester et al. 2021): trained soft-prompt embeddings; LM frozen.

By default (init=template) the soft prompt *is* the template's leading words at first: it
replaces them, one virtual token per token, starting from their embeddings (template_start.py),
so the untrained model scores exactly as zero-shot does. init=text/vocab keep the older soft
prompt placed before the whole prompt, from the instruction words or random vocabulary.

Also home of what every PEFT prompt-learning method shares (prefix-tuning, p-tuning): virtual
tokens that PEFT rebuilds on each forward call, so prediction scores without a KV cache
(`virtual_tokens`), and the template start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from promptworth.methods.base import RunContext, one_of, require
from promptworth.methods.prompt_training import (
    PromptTrainedMethod,
    TrainingConfig,
    peft_on_copy,
)
from promptworth.methods.prompting import PromptFormat

TEMPLATE = "template"  # the init that starts from the template's leading words
FREE_VIRTUAL_TOKENS = 20  # virtual tokens by default where they do not replace the template's


def check_virtual_tokens(config: Any, inits: tuple[str, ...]) -> None:
    """For a Config's `__post_init__`: the init is known; only the other inits take a count
    (the template's is one virtual token per token of its leading words)."""
    one_of(config, "init", inits)
    count = config.num_virtual_tokens
    require(
        config,
        "num_virtual_tokens",
        count >= 0 and not (config.init == TEMPLATE and count),
        "0 with init=template (one virtual token per token of the template's leading words), "
        "or choose another init",
    )


class PromptLearningMethod(PromptTrainedMethod):
    """A PEFT prompt-learning method: its artifact is the virtual tokens PEFT would save."""

    virtual_tokens = True
    test_params: ClassVar[dict[str, Any]] = {"max_steps": 3, "batch_size": 4}
    inits: ClassVar[tuple[str, ...]]  # the first is the default
    # the init that starts elsewhere than the template's words (named in the error for a
    # template without any)
    other_init: ClassVar[str]

    def prompt_format(self, backbone, context: RunContext) -> PromptFormat:
        """The prompt without its leading words when the virtual tokens replace them."""
        from promptworth.methods.template_start import headless_format

        plain = super().prompt_format(backbone, context)
        if self.config.init != TEMPLATE:
            return plain
        return headless_format(plain, self.name, self.other_init)

    def head(self, backbone, context: RunContext) -> list[int]:
        """The tokens the virtual tokens replace (init=template)."""
        return self.prompt_format(backbone, context).head

    def start_is_the_prompt(self) -> bool:
        return self.config.init == TEMPLATE

    def free_virtual_tokens(self) -> int:
        return self.config.num_virtual_tokens or FREE_VIRTUAL_TOKENS

    def started_model(self, backbone, context: RunContext, peft_config, start, **options):
        """A PEFT copy of the backbone under `peft_config(**options)`. With init=template its
        virtual tokens replace the template's leading words and `start(model, head)` makes
        them score as those words do; otherwise it has `free_virtual_tokens`."""
        head = self.head(backbone, context) if self.config.init == TEMPLATE else None
        config = peft_config(
            task_type="CAUSAL_LM",
            num_virtual_tokens=len(head) if head else self.free_virtual_tokens(),
            **options,
        )
        model = peft_on_copy(backbone, config, context.seed)
        if head:
            start(model, head)
        return model

    def produced_tensors(self, model) -> list:
        # What save_pretrained writes: the encoder's output, not the encoder (p-tuning's MLP).
        return [model.get_prompt_embedding_to_save(model.active_adapter)]


def instruction_words(context: RunContext) -> str:
    """The template without its input slots: the words that initialise the soft prompt."""
    task = context.task
    return " ".join(task.fill(task.templates[context.prompt.template], task.blank(" ")).split())


class PromptTuning(PromptLearningMethod):
    name = "prompt-tuning"
    family = "parameter-efficient"
    # Lester et al. 2021 train soft prompts at 0.3 (Adafactor); AdamW setups use ~3e-2
    learning_rates = (3e-2, 1e-1, 3e-1)
    inits = (TEMPLATE, "text", "vocab")
    other_init = "text"

    @dataclass(frozen=True)
    class Config(TrainingConfig):
        # "template": replace the template's leading words, starting as their embeddings;
        # "text": before the whole prompt, from its instruction words; "vocab": random tokens
        init: str = TEMPLATE
        num_virtual_tokens: int = 0  # 0: the leading words' count (template), else 20
        learning_rate: float = 3e-2

        def __post_init__(self):
            super().__post_init__()
            check_virtual_tokens(self, PromptTuning.inits)

    def trainable_model(self, backbone, context: RunContext):
        from peft import PromptTuningConfig, PromptTuningInit

        from promptworth.methods.template_start import head_embeddings, load_start

        if self.config.init == TEMPLATE:
            # PEFT's TEXT init would re-tokenize the words on their own; the tokens the prompt
            # really has (in context, with BOS or chat header) are loaded instead.
            options = {"prompt_tuning_init": PromptTuningInit.RANDOM}
        elif self.config.init == "vocab":
            options = {"prompt_tuning_init": PromptTuningInit.SAMPLE_VOCAB}
        else:  # "text"
            source = context.backbones.source(context.model)
            options = {
                "prompt_tuning_init": PromptTuningInit.TEXT,
                "prompt_tuning_init_text": instruction_words(context),
                # peft loads the tokenizer again (and never trusts remote code): same commit
                "tokenizer_name_or_path": source.path,
                "tokenizer_kwargs": {"revision": source.commit},
            }
        return self.started_model(
            backbone,
            context,
            PromptTuningConfig,
            lambda model, head: load_start(model, head_embeddings(model, head)),
            **options,
        )
