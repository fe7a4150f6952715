"""multitask: instruction tuning on other tasks, then the run's task zero-shot.

One LoRA adapter learns the pooled training subsets of several tasks, each example shown through
its own task's template and scored on its own task's label words (the instruction), with the
same recipe and training rule as prompt-lora. The run's own task is always left out of the pool
(leave-one-task-out), so the run measures what instruction tuning on the other tasks is worth on
a task it never saw: it uses no labelled example of it (`trains = False`) and draws one point at
0 labels, which the advantage estimators read against the trained curves as "instruction tuning
on k tasks is worth N labelled examples". How the adapter scores on the tasks it saw is recorded
beside the run (`seen_tasks` in its extra). (docs/reference/methods/multitask.md)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from promptworth.errors import PromptworthError
from promptworth.methods.base import Prediction, RunContext, at_least, require
from promptworth.methods.prompt_lora import PromptLoRA
from promptworth.methods.prompt_training import (
    Sequences,
    adapter_config,
    build_sequences,
    label_only_loss,
    packs,
    select_from_start,
    trained_cost,
)
from promptworth.methods.prompting import PromptFormat, label_scores, predict_with_lm
from promptworth.methods.training import Learner, autocast_for
from promptworth.tasks.base import Example, Split, Task

SEEN_TEST_ROWS = 64  # test rows of each pooled task its adapter is scored on (`seen_tasks`)


def builtin_classification_tasks() -> list[str]:
    """The pool by default: every built-in classification task."""
    from promptworth.tasks import BUILTIN_TASKS, GENERATIVE

    return [name for name, (module, _) in BUILTIN_TASKS.items() if module != GENERATIVE]


def pool_problem(spec: str) -> str | None:
    """Why `spec` cannot be pooled, judged without loading its data, else None."""
    from promptworth.tasks import BUILTIN_TASKS, GENERATIVE

    if spec in BUILTIN_TASKS:
        generative = BUILTIN_TASKS[spec][0] == GENERATIVE
        return f"{spec} is a generation task; pool classification tasks" if generative else None
    if not Path(spec).expanduser().exists():
        return f"{spec!r} is neither a built-in task nor an existing task file"
    return None


def load_pooled(spec: str) -> Task:
    """A pooled task, loaded as --task loads one. Its test texts may repeat training texts: only
    its training rows are learnt from, and its test rows only give the `seen_tasks` diagnostic,
    never a score of the run."""
    from promptworth.tasks import load_task

    return load_task(spec, allow_overlap=True)


@dataclass
class PooledTask:
    """One task of the pool: how its prompts read, and the rows drawn from it."""

    task: Task
    fmt: PromptFormat
    train: Split


class Multitask(PromptLoRA):
    name = "multitask"
    family = "parameter-efficient"
    trains = False  # no labelled example of the run's task: it is held out of the pool

    # the tests' tiny pool: two small tasks tests/conftest.py resolves these names to
    test_params: ClassVar[dict[str, Any]] = {
        "max_steps": 3,
        "batch_size": 4,
        "per_task": 8,
        "tasks": "tiny-pool-a,tiny-pool-b",
    }

    @dataclass(frozen=True)
    class Config(PromptLoRA.Config):
        # comma-separated tasks to pool (built-in names or task files); "" = every built-in
        # classification task. The run's own task is always left out.
        tasks: str = ""
        per_task: int = 64  # training examples drawn from each pooled task (class-balanced)
        # each pooled task's data version (Task.fingerprint), filled in by the sweep
        # (planned_params): a pooled task whose data or templates change is another experiment
        pool_versions: dict = field(default_factory=dict)

        def __post_init__(self) -> None:
            super().__post_init__()
            at_least(self, 1, "per_task")
            require(self, "loss", self.loss == "ce", "ce (each task has its own label words)")

    @classmethod
    def planned_params(cls, params: dict[str, Any], task: Task) -> dict[str, Any]:
        """The pooled tasks' data versions beside their names, so the run's key changes with
        them (a task file edited under the same path is another pool)."""
        pool = cls(**{**params, "pool_versions": {}}).pool_specs(task)
        problems = [p for p in map(pool_problem, pool) if p]
        if problems:  # refused with its reason by task_problem before anything runs
            return params
        return {**params, "pool_versions": {spec: load_pooled(spec).fingerprint for spec in pool}}

    def task_problem(self, task: Task) -> str | None:
        """Also each pooled task: a built-in classification task or an existing file, and at
        least one besides the held-out `task`."""
        problem = super().task_problem(task)
        if problem:
            return problem
        specs = self.pool_specs(task)
        if not specs:
            return (
                f"no task to pool besides the held-out {task.name!r}; give others with "
                "--param multitask.tasks=TASK,TASK"
            )
        problems = [p for p in map(pool_problem, specs) if p]
        return f"multitask.tasks: {problems[0]}" if problems else None

    def pool_specs(self, held_out: Task) -> list[str]:
        given = [t.strip() for t in self.config.tasks.split(",") if t.strip()]
        return [spec for spec in given or builtin_classification_tasks() if spec != held_out.name]

    def pooled(self, tokenizer, context: RunContext) -> list[PooledTask]:
        """Each pooled task (the run's own left out, by name), its first template, and
        `per_task` training rows drawn class-balanced by the run's seed."""
        from promptworth.tasks.subsets import nested_subsets

        pool = []
        for spec in self.pool_specs(context.task):
            task = load_pooled(spec)
            if task.name == context.task.name:  # a file of the held-out task under another path
                continue
            if task.type != "classification":
                raise PromptworthError(
                    f"multitask.tasks: {spec} is a {task.type} task; pool classification tasks"
                )
            n = min(self.config.per_task, len(task.train))
            rows = nested_subsets(task.train.labels, [n], context.seed, "balanced")[n]
            options = replace(context.prompt, template=0, verbalizer=())
            pool.append(
                PooledTask(task, PromptFormat(task, tokenizer, options), task.train.subset(rows))
            )
        if not pool:
            raise PromptworthError(
                f"multitask: no task to pool besides the held-out {context.task.name!r}; give "
                "others with --param multitask.tasks=TASK,TASK"
            )
        return pool

    def pooled_learner(self, model, tokenizer, pool: list[PooledTask], context) -> Learner:
        """The training rule's view of the pool: the label-token loss on any rows, and each
        row's scores over its own task's labels (padded with -inf to the widest task)."""
        parts = [build_sequences(p.fmt, p.train) for p in pool]
        seqs = Sequences(
            [ids for s in parts for ids in s.input_ids], [n for s in parts for n in s.n_prompt]
        )
        owner = np.concatenate([np.full(len(p.train), i) for i, p in enumerate(pool)])
        gold = np.concatenate([np.asarray(p.train.labels) for p in pool])
        width = max(p.task.n_labels for p in pool)
        packed = packs(model, False)

        def scores(rows: np.ndarray) -> np.ndarray:
            model.eval()
            out = np.full((len(rows), width), -np.inf)
            for i, part in enumerate(pool):
                mine = np.flatnonzero(owner[rows] == i)
                if len(mine):
                    prompts = seqs.prompts(rows[mine])
                    out[mine, : part.task.n_labels] = label_scores(model, part.fmt, prompts, 0)
            model.train()
            return out

        return Learner(
            [p for p in model.parameters() if p.requires_grad],
            lambda rows: label_only_loss(model, tokenizer, seqs, rows, packed),
            scores,
            gold,
            context.backbones.placement,
        )

    def fit(self, train_split: Split, context: RunContext) -> Multitask:
        backbone = context.backbones.get(context.model, "causal-lm")
        pool = self.pooled(backbone.tokenizer, context)
        model = self.trainable_model(backbone, context)
        learner = self.pooled_learner(model, backbone.tokenizer, pool, context)
        n_rows = len(learner.labels)
        selection = select_from_start(model, learner, n_rows, self.schedule(), self, context)
        self.placement_, self.backbone_spec_ = backbone.placement, backbone.spec
        self.cost_ = trained_cost(model, selection, self.produced_tensors(model))
        self.selection_, self.pool_ = selection, pool
        self.format_ = self.prompt_format(backbone, context)  # the held-out task's own prompt
        self.n_virtual_, self.trained_ = 0, selection.step > 0
        if self.trained_:
            self.adapter_config_ = adapter_config(model)
            self.model_ = self.for_inference(model)
        else:  # the untrained start won: the backbone reading the prompt, as zero-shot
            self.model_ = backbone.model
        return self

    def seen_tasks(self) -> list[dict]:
        """The adapter's accuracy on the first SEEN_TEST_ROWS test rows of each pooled task."""
        seen = []
        for part in self.pool_:
            test = part.task.test.subset(range(min(SEEN_TEST_ROWS, len(part.task.test))))
            with autocast_for(self.placement_):
                predicted = predict_with_lm(self.model_, part.fmt, test.texts).labels
            accuracy = float(np.mean(predicted == np.asarray(test.labels)))
            entry = {"task": part.task.name, "train_rows": len(part.train), "n_test": len(test)}
            seen.append({**entry, "accuracy": accuracy})
        return seen

    def predict(self, texts: list[Example]) -> Prediction:
        """The held-out task's labels; the first call also scores the tasks it saw, a
        diagnostic the runner leaves out of the serving cost."""
        prediction = super().predict(texts)
        if hasattr(self, "seen_") or not hasattr(self, "pool_"):  # scored, or restored
            return prediction
        start = time.perf_counter()
        self.seen_ = self.seen_tasks()
        extra = {**prediction.extra, "seen_tasks": self.seen_}
        diagnostic = prediction.diagnostic_seconds + time.perf_counter() - start
        return replace(prediction, extra=extra, diagnostic_seconds=diagnostic)
