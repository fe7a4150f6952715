"""zs-cot: zero-shot chain of thought (Kojima et al. 2022) on the frozen causal LM.

The task's prompt is followed by "Let's think step by step." and the model's reasoning, then
by the task's answer trigger ("Therefore, the answer is" unless the task names what its answer
is, as "Therefore, the summary is") and its answer (generation.chains_of_thought). The output
kept is the reasoning and "Therefore, the answer is" with the answer, whatever the cue; the metrics
read that conclusion (exact match and token F1: what follows the last "the answer is"; numbers:
strictly after it, or the last number).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from promptworth.methods.base import (
    Prediction,
    at_least,
)
from promptworth.methods.generation import (
    REASONING_STOP,
    Decoding,
    ReadsAnswerTrigger,
    chains_of_thought,
    steps_prediction,
)
from promptworth.methods.zero_shot import ZeroShot
from promptworth.tasks.base import Example

# what a prompt-only method reads of the prompt options (not the rank-classification ones)
GENERATION_PROMPT_FIELDS = ("template", "chat", "max_text_tokens", "batch_size")


class ZeroShotCoT(ReadsAnswerTrigger, ZeroShot):
    name = "zs-cot"
    family = "prompting"
    task_types = ("generation",)
    prompt_fields = GENERATION_PROMPT_FIELDS
    test_params: ClassVar[dict[str, Any]] = {"reasoning_tokens": 4}

    @dataclass(frozen=True)
    class Config:
        reasoning_tokens: int = 128  # the longest reasoning, in tokens; it ends at a blank line
        answer_trigger: str = ""  # the cue the answer follows; empty: the task's

        def __post_init__(self) -> None:
            at_least(self, 1, "reasoning_tokens")

    def predict(self, texts: list[Example]) -> Prediction:
        self.check_fitted()
        reasoning = Decoding(self.config.reasoning_tokens, stop=REASONING_STOP)
        chains = chains_of_thought(
            self.model_, self.format_, texts, reasoning, trigger=self.trigger()
        )
        return steps_prediction(chains.outputs, chains.steps)
