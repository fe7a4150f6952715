"""self-critique: answer, then critique the answer and revise it, `rounds` times (Madaan et al.
2023, Self-Refine), on the frozen causal LM; no training.

Each round starts from the task's prompt and the current answer: the model is asked what is
wrong with the answer (CRITIQUE_REQUEST; the critique ends at a blank line), then, after its
critique, for a corrected answer on one line (REVISION_REQUEST). With a chat template each
request is a new user turn after the model's closed turn (PromptFormat.follow_up), the format
an instruction-tuned model was tuned on. The last revision is the answer
scored, as written: an empty revision counts as an empty answer, never the earlier one. Every
step of the first test rows is in the run's traces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from promptworth.methods.base import Prediction, at_least
from promptworth.methods.generation import (
    ANSWER_STOP,
    REASONING_STOP,
    Decoding,
    run_step,
    steps_prediction,
)
from promptworth.methods.zero_shot import ZeroShot
from promptworth.methods.zs_cot import GENERATION_PROMPT_FIELDS
from promptworth.tasks.base import Example

CRITIQUE_REQUEST = "Review the answer above. List any mistakes or missing points.\nCritique:"
REVISION_REQUEST = "Write the answer again, fixing what the critique found.\nRevised answer:"


class SelfCritique(ZeroShot):
    name = "self-critique"
    family = "prompting"
    task_types = ("generation",)
    prompt_fields = GENERATION_PROMPT_FIELDS
    test_params: ClassVar[dict[str, Any]] = {"rounds": 2, "critique_tokens": 4}

    @dataclass(frozen=True)
    class Config:
        rounds: int = 1  # critique-and-revise rounds after the first answer
        critique_tokens: int = 96  # the longest critique, in tokens; it ends at a blank line

        def __post_init__(self) -> None:
            at_least(self, 1, "rounds", "critique_tokens")

    def predict(self, texts: list[Example]) -> Prediction:
        self.check_fitted()
        fmt = self.format_
        answer = Decoding(fmt.task.max_new_tokens, stop=ANSWER_STOP)
        critique = Decoding(self.config.critique_tokens, stop=REASONING_STOP)
        prompts = [fmt.prompt(text) for text in texts]
        steps = [run_step(self.model_, fmt, "answer", prompts, answer)]
        for round_ in range(1, self.config.rounds + 1):
            answered = [
                fmt.follow_up(prompt, out, CRITIQUE_REQUEST)
                for prompt, out in zip(prompts, steps[-1].outputs)
            ]
            steps.append(run_step(self.model_, fmt, f"critique {round_}", answered, critique))
            revise = [
                fmt.follow_up(asked, said, REVISION_REQUEST)
                for asked, said in zip(answered, steps[-1].outputs)
            ]
            steps.append(run_step(self.model_, fmt, f"revision {round_}", revise, answer))
        return steps_prediction(steps[-1].outputs, steps)
