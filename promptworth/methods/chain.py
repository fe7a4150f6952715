"""chain: a multi-step prompt declared with the task (its `chain` steps), on the frozen causal
LM; no training.

Each step's template is filled with the row's inputs and the outputs of the steps before it
(`{facts}` is the output of the step named facts), and the model continues it: an intermediate
step until a blank line, the last step (the answer) on one line, each at most its own
`max_new_tokens` (default: the task's). The steps come from the task (a task file's `chain:`,
the built-in tasks' own) unless the `steps` parameter gives them; the sweep writes the steps a
run used into its parameters, so a changed chain is a different run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from promptworth.errors import PromptworthError
from promptworth.methods.base import Prediction, RunContext
from promptworth.methods.generation import (
    ANSWER_STOP,
    REASONING_STOP,
    Decoding,
    run_step,
    steps_prediction,
)
from promptworth.methods.zero_shot import ZeroShot
from promptworth.tasks.base import SLOT, Example, Split, Task, chain_problem, example_slots

# what the chain reads of the prompt options: its templates are its own, not --template's
CHAIN_PROMPT_FIELDS = ("chat", "max_text_tokens", "batch_size")


class Chain(ZeroShot):
    name = "chain"
    family = "prompting"
    task_types = ("generation",)
    prompt_fields = CHAIN_PROMPT_FIELDS
    test_params: ClassVar[dict[str, Any]] = {}

    @dataclass(frozen=True)
    class Config:
        # the steps, [{"name", "template", "max_new_tokens"}]; empty: the task's own chain
        steps: list = field(default_factory=list)

    @classmethod
    def planned_params(cls, params: dict[str, Any], task: Task) -> dict[str, Any]:
        return params if params["steps"] else {**params, "steps": list(task.chain)}

    def task_problem(self, task: Task) -> str | None:
        problem = super().task_problem(task)
        if problem:
            return problem
        if not (self.config.steps or task.chain):
            return (
                f"task {task.name!r} declares no chain: give its task file `chain:` steps "
                "(docs/reference/tasks.md#chains) or --param chain.steps='[...]'"
            )
        problem = chain_problem(self.config.steps or task.chain, task.inputs)
        return f"steps: {problem}" if problem else None

    def fit(self, train: Split, context: RunContext) -> Chain:
        problem = self.task_problem(context.task)
        if problem:
            raise PromptworthError(f"{self.name}: {problem}")
        super().fit(train, context)
        self.steps_ = list(self.config.steps or context.task.chain)
        return self

    def predict(self, texts: list[Example]) -> Prediction:
        self.check_fitted()
        fmt, task = self.format_, self.format_.task
        values = [dict(zip(task.inputs, example_slots(fmt.truncate(text)))) for text in texts]
        steps = []
        for number, step in enumerate(self.steps_, start=1):
            last = number == len(self.steps_)
            decoding = Decoding(
                step.get("max_new_tokens") or task.max_new_tokens,
                stop=ANSWER_STOP if last else REASONING_STOP,
            )
            prompts = [fmt.as_sent(filled(step["template"], row)) for row in values]
            steps.append(run_step(self.model_, fmt, step["name"], prompts, decoding))
            for row, output in zip(values, steps[-1].outputs):
                row[step["name"]] = output
        return steps_prediction(steps[-1].outputs, steps)


def filled(template: str, values: dict[str, str]) -> str:
    """`template` with each `{slot}` replaced by its value in one pass (an output that holds
    "{text}" stays as written)."""
    return SLOT.sub(lambda found: values.get(found.group(1), found.group(0)), template)
