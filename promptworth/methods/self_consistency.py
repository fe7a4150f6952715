"""self-consistency (Wang et al. 2023): sample several chains of thought, keep the answer most
of them reach.

Each of `samples` chains (zs-cot's two stages, generation.chains_of_thought) samples its
reasoning at `temperature` from its own seed, then answers greedily. The answers vote: on a task
scored by numbers, each chain's last number; by exact match or token F1, its normalised final
answer; the output kept is the first chain that gives the winning answer (ties: the answer
reached first). Free text (a task scored by ROUGE only) has no answers to count: the chain whose
final answer is closest to the others' by ROUGE-L (the medoid) is kept.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from promptworth.methods.base import Prediction, RunContext, at_least, positive
from promptworth.methods.generation import (
    REASONING_STOP,
    Decoding,
    chains_of_thought,
    steps_prediction,
)
from promptworth.methods.zs_cot import ZeroShotCoT
from promptworth.tasks.answers import final_answer, flexible_number, normalise_answer
from promptworth.tasks.base import Example, Task


def vote_key(task: Task) -> Callable[[str], str | None] | None:
    """What a chain's vote is on this task (None: an answer that casts none); None for free
    text, which is chosen by medoid instead."""
    if "numeric" in task.metrics:
        return lambda output: None if (n := flexible_number(output)) is None else repr(n)
    if {"exact_match", "token_f1"} & set(task.metrics):
        return lambda output: normalise_answer(final_answer(output)) or None
    return None


def majority(outputs: list[str], key: Callable[[str], str | None]) -> tuple[int, dict]:
    """Index of the first output giving the most frequent answer, and the votes; the first
    output when none casts a vote."""
    keys = [key(output) for output in outputs]
    votes = Counter(k for k in keys if k is not None)
    if not votes:
        return 0, {}
    winner = max(votes, key=lambda k: (votes[k], -keys.index(k)))
    return keys.index(winner), dict(votes)


def medoid(outputs: list[str]) -> int:
    """Index of the output with the highest summed ROUGE-L F-measure to the others."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    totals = [
        sum(
            scorer.score(other, output)["rougeL"].fmeasure
            for j, other in enumerate(outputs)
            if j != i
        )
        for i, output in enumerate(outputs)
    ]
    return max(range(len(outputs)), key=lambda i: (totals[i], -i))


class SelfConsistency(ZeroShotCoT):
    name = "self-consistency"
    family = "prompting"
    test_params: ClassVar[dict[str, Any]] = {"samples": 3, "reasoning_tokens": 4}

    @dataclass(frozen=True)
    class Config:
        samples: int = 5  # chains per input
        temperature: float = 0.7  # of the sampled reasoning (Wang et al.: 0.5-0.7)
        reasoning_tokens: int = 128
        answer_trigger: str = ""  # the cue the answer follows; empty: the task's

        def __post_init__(self) -> None:
            at_least(self, 1, "samples", "reasoning_tokens")
            positive(self, "temperature")

    def fit(self, train, context: RunContext) -> SelfConsistency:
        super().fit(train, context)
        self.seed_ = context.seed
        return self

    def predict(self, texts: list[Example]) -> Prediction:
        self.check_fitted()
        c, samples, steps = self.config, [], []
        for index in range(c.samples):
            seed = self.seed_ * 1_000 + index
            reasoning = Decoding(c.reasoning_tokens, REASONING_STOP, c.temperature, seed)
            chains = chains_of_thought(
                self.model_, self.format_, texts, reasoning, f" {index + 1}", self.trigger()
            )
            samples.append(chains.outputs)
            steps += chains.steps
        chosen, votes, samples_kept = [], [], []
        for outputs in zip(*samples):
            index, counted = self.chosen(list(outputs))
            chosen.append(outputs[index])
            votes.append(counted)
            samples_kept.append(list(outputs))
        return steps_prediction(chosen, steps, votes=votes, samples=samples_kept)

    def chosen(self, outputs: list[str]) -> tuple[int, dict]:
        """Which of one row's sampled chains is kept, and the votes cast (none for free text,
        kept by the medoid of the chains' conclusions)."""
        key = vote_key(self.format_.task)
        if key is None:
            return medoid([final_answer(output) for output in outputs]), {}
        return majority(outputs, key)
