"""multitask: one LoRA adapter on other tasks' pooled examples, the run's task held out."""

from __future__ import annotations

import numpy as np
import pytest

from promptworth.errors import PromptworthError
from promptworth.methods import make_method, method_class
from promptworth.methods.multitask import builtin_classification_tasks
from promptworth.run import runner
from promptworth.tasks.base import Split

PARAMS = method_class("multitask").test_params
NO_ROWS = Split([], np.zeros(0, dtype=int))


def test_the_adapter_learns_the_pooled_tasks_and_never_the_held_out_one(task, make_context):
    method = make_method("multitask", **{**PARAMS, "tasks": "tiny,tiny-pool-a,tiny-pool-b"})
    result = runner.execute(method, NO_ROWS, task.test, make_context())
    assert [p.task.name for p in method.pool_] == ["tiny-pool-a", "tiny-pool-b"]  # tiny held out
    assert [len(p.train) for p in method.pool_] == [8, 8]
    assert result["train_examples"] > 0 and result["trainable_params"] > 0
    assert len(result["predictions"]) == len(task.test)
    seen = result["extra"]["seen_tasks"]
    assert [s["task"] for s in seen] == ["tiny-pool-a", "tiny-pool-b"]
    assert all(s["train_rows"] == 8 and s["n_test"] == 12 for s in seen)
    assert all(0 <= s["accuracy"] <= 1 for s in seen)


def test_each_pooled_example_is_shown_through_its_own_tasks_template(make_context, backbones):
    method = make_method("multitask", **PARAMS)
    tokenizer = backbones.get(make_context().model, "causal-lm").tokenizer
    pool = method.pooled(tokenizer, make_context())
    prompts = [p.fmt.prompt(p.train.texts[0]) for p in pool]
    assert prompts[0].startswith("Headline: ") and prompts[0].endswith("\nSubject:")
    assert prompts[1].endswith("\nAbout sports?")
    assert [p.fmt.label_candidates()[1][0] for p in pool][1] == tokenizer(
        " yes", add_special_tokens=False
    ).input_ids


def test_a_pool_of_only_the_held_out_task_is_refused(task, make_context):
    method = make_method("multitask", **{**PARAMS, "tasks": "tiny"})
    assert method.task_problem(task).startswith("no task to pool besides the held-out 'tiny'")
    with pytest.raises(PromptworthError, match="no task to pool besides the held-out 'tiny'"):
        runner.execute(method, NO_ROWS, task.test, make_context())


@pytest.mark.parametrize(
    ("tasks", "problem"),
    [
        ("tiny-pool-a,xsum", "multitask.tasks: xsum is a generation task; pool classification"),
        ("tiny-pool-a,no/such.yaml", "multitask.tasks: 'no/such.yaml' is neither a built-in"),
    ],
)
def test_a_pool_task_that_cannot_be_pooled_is_refused_before_any_model_loads(tasks, problem, task):
    method = make_method("multitask", **{**PARAMS, "tasks": tasks})
    assert method.task_problem(task).startswith(problem)


def test_the_default_pool_is_every_builtin_classification_task():
    pool = builtin_classification_tasks()
    assert "ag_news" in pool and "boolq" in pool
    assert not {"xsum", "nq_open", "asdiv"} & set(pool)


def test_a_sweep_plans_one_held_out_run_that_the_trained_curves_value(tiny_sweep_spec, monkeypatch):
    """multitask uses no label of the run's task: one run at 0 labels, which the advantage
    estimators read against the trained curves ("worth N labelled examples")."""
    import dataclasses
    import json

    from promptworth.cli import main
    from promptworth.run.sweep import Sweep

    spec = dataclasses.replace(
        tiny_sweep_spec,
        methods=["multitask", "prompt-lora"],
        method_params={"multitask": PARAMS, "prompt-lora": {"max_steps": 2, "batch_size": 4}},
        seeds=[0],
    )
    sweep = Sweep(spec, quiet=True)
    plan, failed = sweep.execute()
    assert failed == []
    assert [(r.config.method, r.config.n_train) for r in plan] == [
        ("multitask", 0),
        ("prompt-lora", 4),
        ("prompt-lora", 8),
    ]
    assert main(["report", str(spec.out)]) == 0
    pairs = json.loads((spec.out / "advantage.json").read_text())["pairs"]
    assert {(p["baseline"], p["method"]) for p in pairs} >= {("multitask", "prompt-lora")}


def test_the_pooled_tasks_data_versions_are_in_the_runs_parameters(task, monkeypatch):
    """A pooled task whose data changes under the same name is another experiment: the sweep
    plans the run with each pooled task's fingerprint, so its key changes too."""
    from dataclasses import replace

    from promptworth.methods import multitask

    cls = method_class("multitask")
    params = make_method("multitask", **PARAMS).get_params()
    planned = cls.planned_params(params, task)
    assert set(planned["pool_versions"]) == {"tiny-pool-a", "tiny-pool-b"}
    load = multitask.load_pooled
    monkeypatch.setattr(multitask, "load_pooled", lambda s: replace(load(s), version="edited"))
    assert cls.planned_params(params, task)["pool_versions"] != planned["pool_versions"]
