"""few-shot-cot: chain-of-thought demonstrations bootstrapped from the model's own correct chains
(rationales as in STaR, Zelikman et al. 2022; demonstrations as in Wei et al. 2022); no weight
changes.

Training: the model writes a zero-shot chain of thought (zs-cot's two stages) for each of the
first `max_bootstrap` rows of the training subset; the chains whose answer scores at least
`min_score` by the task's headline metric (by default the better half of those scoring above 0:
on a 0/1 metric, the right ones) are kept, each as a demonstration (the task's prompt,
"Let's think step by step.", the reasoning, the task's answer trigger and the answer). That
generation is the method's training cost. Prediction: up to k of them (the first kept, or the k
nearest to the input by encoder cosine, as few-shot chooses) precede the test prompt, which is
then answered by the same two stages. When no chain scores high enough the run says so in its
notes and prompts with no demonstrations (zs-cot's prompt); the count kept is recorded either way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from promptworth.methods.base import (
    Method,
    Prediction,
    PromptOptions,
    RunContext,
    TrainingCost,
    at_least,
    count_params,
    one_of,
    require,
)
from promptworth.methods.few_shot import GENERATION_K, SELECTIONS, Demo, FewShot
from promptworth.methods.generation import (
    COT_TRIGGER,
    REASONING_STOP,
    Decoding,
    ReadsAnswerTrigger,
    chain_outputs,
    chains_of_thought,
    reason_then_answer,
    steps_prediction,
)
from promptworth.methods.zs_cot import GENERATION_PROMPT_FIELDS
from promptworth.tasks.base import Example, Split, Task


class FewShotCoT(ReadsAnswerTrigger, FewShot):
    name = "few-shot-cot"
    family = "prompting"
    task_types = ("generation",)
    prompt_fields = GENERATION_PROMPT_FIELDS
    test_params: ClassVar[dict[str, Any]] = {"k": 2, "reasoning_tokens": 4, "max_bootstrap": 6}
    generation_test_params = None

    @dataclass(frozen=True)
    class Config:
        k: int = GENERATION_K  # demonstrations per prompt, at most (fewer if fewer were kept)
        selection: str = "random"  # "random": the first kept chains; "knn": nearest per input
        reasoning_tokens: int = 128  # the longest reasoning, in tokens; it ends at a blank line
        max_bootstrap: int = 32  # training rows the model writes chains for (the subset's first)
        # a kept chain's least headline score; None: the better half of the chains that
        # score above 0 (on a 0/1 metric, such as exact match, the right ones)
        min_score: float | None = None
        answer_trigger: str = ""  # the cue the answer follows; empty: the task's

        def __post_init__(self) -> None:
            at_least(self, 1, "k", "reasoning_tokens", "max_bootstrap")
            one_of(self, "selection", SELECTIONS)
            given = self.min_score
            require(self, "min_score", given is None or 0 <= given <= 1, "a number from 0 to 1")

    def task_problem(self, task: Task) -> str | None:
        return Method.task_problem(self, task)

    def incompatible(self, prompt: PromptOptions) -> str | None:
        return None

    @classmethod
    def unsaveable(cls, params: dict) -> str | None:
        return "a generation task's fitted prompt has no saved form yet"

    def fit(self, train: Split, context: RunContext) -> FewShotCoT:
        if not len(train):
            raise ValueError("few-shot-cot bootstraps demonstrations from examples; n_train is 0")
        if context.score_rows is None:
            raise ValueError(
                "few-shot-cot scores its chains by the task's metric: the run context has no "
                "score_rows (runner.execute supplies it)"
            )
        self.use_backbone(context)
        fmt, c = self.format_, self.config
        rows = train.subset(range(min(c.max_bootstrap, len(train))))
        chains = chains_of_thought(
            self.model_, fmt, rows.texts, self.reasoning(), trigger=self.trigger()
        )
        scores = context.score_rows(chains.outputs, rows.references)
        bar = c.min_score if c.min_score is not None else better_half(scores)
        kept = [row for row, score in enumerate(scores) if score >= bar]
        self.bootstrap_ = {"rows": len(rows), "kept": len(kept), "min_score": bar}
        self.notes_ = [] if kept else [no_chain_kept(len(rows), bar)]
        for note in self.notes_:
            context.say(f"few-shot-cot: {note}")
        tokens = sum(sum(s.prompt_tokens) + sum(s.new_tokens) for s in chains.steps)
        # as written: each demonstration shows the cue a test prompt is continued with
        written = chain_outputs(*(step.outputs for step in chains.steps), self.trigger())
        demos = [self.demo(rows.texts[row], written[row]) for row in kept]
        cost = self.choose_demos(rows.subset(kept), demos, context) if kept else self.no_demos()
        self.cost_ = replace(cost, train_examples=len(rows), train_tokens=tokens)
        return self

    def reasoning(self) -> Decoding:
        return Decoding(self.config.reasoning_tokens, stop=REASONING_STOP)

    def demo(self, example: Example, chain: str) -> Demo:
        """A demonstration: the task's prompt of `example`; its answer the trigger and the chain
        (reasoning, the answer trigger, answer), as a test prompt is continued."""
        body = self.format_.task.fill(self.template_, self.format_.truncate(example))
        return body, f"{COT_TRIGGER} {chain}"

    def no_demos(self) -> TrainingCost:
        """No chain was kept: test prompts have no demonstrations."""
        self.demos_, self.k_ = [], 0
        return TrainingCost(total_params=count_params(self.model_)[1])

    def answer_tokens(self) -> int:
        """After a test prompt: the trigger, the reasoning, the answer trigger and the answer."""
        tokenizer = self.format_.tokenizer
        triggers = f" {COT_TRIGGER} \n{self.trigger()} "
        trigger_tokens = len(tokenizer(triggers, add_special_tokens=False).input_ids)
        return trigger_tokens + self.config.reasoning_tokens + self.format_.task.max_new_tokens

    def predict(self, texts: list[Example]) -> Prediction:
        self.check_fitted()
        if self.demos_:
            demos, embed_seconds = self.demonstrations(texts)
        else:
            demos, embed_seconds = [np.zeros(0, dtype=int)] * len(texts), 0.0
        prompts = [self.prompt(chosen, text) for chosen, text in zip(demos, texts)]
        chains = reason_then_answer(
            self.model_, self.format_, prompts, self.reasoning(), trigger=self.trigger()
        )
        prediction = steps_prediction(chains.outputs, chains.steps)
        extra = {
            "selection": self.config.selection,
            "bootstrap": dict(self.bootstrap_),
            "k_used_mean": float(np.mean([len(chosen) for chosen in demos])),
            "notes": list(self.notes_),
        }
        extra |= prediction.extra
        return replace(prediction, cached_seconds=embed_seconds, extra=extra)


def better_half(scores: list[float]) -> float:
    """The least score a chain needs when none is given: the median of the chains' scores, and
    at least the smallest score above 0, so a 0/1 metric keeps exactly the right chains and a
    graded one (ROUGE) keeps the better half; 1.0 when no chain scores above 0."""
    positive = [score for score in scores if score > 0]
    return max(float(np.median(scores)), min(positive)) if positive else 1.0


def no_chain_kept(rows: int, min_score: float) -> str:
    return (
        f"none of the {rows} bootstrapped chains scored {min_score:g} or more by the task's "
        "headline metric: prompting with no demonstrations"
    )
