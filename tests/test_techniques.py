"""Prompting techniques for generation tasks: self-critique's rounds, and the steps, calls and
generated tokens every multi-step technique records."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from promptworth.methods import make_method
from promptworth.methods.few_shot import demo_text
from promptworth.methods.self_critique import CRITIQUE_REQUEST, REVISION_REQUEST
from promptworth.testing import tiny_generation_task


@pytest.fixture
def generation_task():
    return tiny_generation_task()


def test_self_critique_answers_then_critiques_and_revises_each_round(generation_task, make_context):
    task = generation_task
    method = make_method("self-critique", rounds=2, critique_tokens=3)
    method.fit(task.train.subset(range(4)), make_context(task=task))
    prediction = method.predict(task.test.texts[:3])
    trace = prediction.extra["traces"][0]
    names = [step["step"] for step in trace["steps"]]
    assert names == ["answer", "critique 1", "revision 1", "critique 2", "revision 2"]
    answer, critique, revision, critique_2, revision_2 = trace["steps"]
    assert critique["prompt"].startswith(answer["prompt"])
    assert critique["prompt"].endswith(f"{answer['output']}\n\n{CRITIQUE_REQUEST}")
    assert revision["prompt"] == f"{critique['prompt']} {critique['output']}\n\n{REVISION_REQUEST}"
    assert f"{revision['output']}\n\n{CRITIQUE_REQUEST}" in critique_2["prompt"]
    assert trace["output"] == revision_2["output"] == prediction.texts[0]
    assert prediction.calls == 5 * 3
    assert prediction.prompt_tokens == sum(
        step["prompt_tokens"] for row in prediction.extra["traces"] for step in row["steps"]
    )


def test_with_a_chat_template_each_request_is_a_new_user_turn(
    generation_task, make_context, backbones
):
    """An instruction-tuned model reads the critique and revision requests as user turns after
    its own closed turn, exactly as its chat template renders that conversation."""
    from promptworth.methods.base import PromptOptions
    from promptworth.methods.prompting import PromptFormat

    context = make_context(task=generation_task, prompt=PromptOptions(batch_size=8, chat=True))
    method = make_method("self-critique", rounds=1, critique_tokens=3)
    method.fit(generation_task.train.subset(range(4)), context)
    text = generation_task.test.texts[0]
    answer, critique, revision = method.predict([text]).extra["traces"][0]["steps"]
    tokenizer = backbones.get(context.model, "causal-lm").tokenizer
    body = PromptFormat(generation_task, tokenizer, PromptOptions(chat=False)).prompt(text)
    turns = [
        {"role": "user", "content": body},
        {"role": "assistant", "content": answer["output"]},
        {"role": "user", "content": CRITIQUE_REQUEST},
    ]
    rendered = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    assert critique["prompt"] == rendered
    assert revision["prompt"].startswith(critique["prompt"] + critique["output"])
    assert revision["prompt"].endswith(
        tokenizer.apply_chat_template(
            [{"role": "user", "content": REVISION_REQUEST}],
            tokenize=False,
            add_generation_prompt=True,
        ).split(REVISION_REQUEST)[-1]
    )


def test_self_critique_rounds_must_be_positive():
    from promptworth.errors import PromptworthError

    with pytest.raises(PromptworthError, match="rounds"):
        make_method("self-critique", rounds=0)


def fitted_cot(task, make_context, **params):
    from promptworth.methods.few_shot_cot import FewShotCoT

    method = FewShotCoT(**{"k": 2, "reasoning_tokens": 3, "max_bootstrap": 6, **params})
    return method.fit(task.train.subset(range(8)), short_context(task, make_context))


def short_context(task, make_context, **fields):
    """Inputs cut to 24 tokens: room for two demonstrations in the tiny model's 256 positions."""
    from promptworth.methods.base import PromptOptions

    return make_context(task=task, prompt=PromptOptions(batch_size=8, max_text_tokens=24), **fields)


def test_few_shot_cot_shows_the_chains_that_scored_as_demonstrations(generation_task, make_context):
    from promptworth.methods.generation import ANSWER_TRIGGER, COT_TRIGGER

    method = fitted_cot(generation_task, make_context, min_score=0.0)  # every chain kept
    assert method.bootstrap_ == {"rows": 6, "kept": 6, "min_score": 0.0}
    assert method.notes_ == []
    prompt, answer = method.demos_[0]
    assert prompt == generation_task.fill(method.template_, generation_task.train.texts[0])
    assert answer.startswith(f"{COT_TRIGGER} ") and f"\n{ANSWER_TRIGGER} " in answer
    prediction = method.predict(generation_task.test.texts[:3])
    trace = prediction.extra["traces"][0]
    shown = [demo_text(method.format_, demo) for demo in method.demos_[:2]]
    assert trace["prompt"].startswith(shown[0] + "\n\n" + shown[1] + "\n\n")
    assert [step["step"] for step in trace["steps"]] == ["reasoning", "answer"]
    assert prediction.extra["k_used_mean"] == 2
    cost = method.training_cost()
    assert cost.train_examples == 6 and cost.train_tokens > 0 and cost.trainable_params == 0


def test_few_shot_cot_keeps_only_chains_the_headline_metric_scores_correct(
    generation_task, make_context, monkeypatch
):
    """The kept chains are the rows the metric scores >= min_score, in the subset's order."""
    calls = []

    def score_rows(outputs, references):
        calls.append(references)
        return [1.0 if row in (1, 4) else 0.5 for row in range(len(outputs))]

    context = short_context(generation_task, make_context, score_rows=score_rows)
    from promptworth.methods.few_shot_cot import FewShotCoT

    method = FewShotCoT(k=4, reasoning_tokens=3, max_bootstrap=6, min_score=1.0)
    method.fit(generation_task.train.subset(range(8)), context)
    assert calls == [generation_task.train.references[:6]]
    assert method.bootstrap_["kept"] == 2 and len(method.demos_) == 2
    texts = generation_task.train.texts
    assert method.demos_[0][0] == generation_task.fill(method.template_, texts[1])
    assert method.demos_[1][0] == generation_task.fill(method.template_, texts[4])


def test_few_shot_cot_without_a_correct_chain_says_so_and_prompts_without_demos(
    generation_task, make_context
):
    from promptworth.run import runner

    method = fitted_cot(generation_task, make_context, min_score=1.0)
    if method.bootstrap_["kept"]:
        pytest.skip("the tiny model answered a training row right")
    assert method.demos_ == []
    assert "none of the 6 bootstrapped chains scored 1 or more" in method.notes_[0]
    prediction = method.predict(generation_task.test.texts[:2])
    assert prediction.extra["k_used_mean"] == 0
    assert prediction.extra["notes"] == method.notes_
    zs_cot = make_method("zs-cot", reasoning_tokens=3).fit(None, make_context(task=generation_task))
    assert prediction.texts == zs_cot.predict(generation_task.test.texts[:2]).texts
    result = runner.execute(
        make_method("few-shot-cot", k=2, reasoning_tokens=3, max_bootstrap=6),
        generation_task.train.subset(range(8)),
        generation_task.test,
        make_context(task=generation_task),
    )
    assert result["extra"]["bootstrap"]["kept"] == 0 and result["extra"]["notes"]


def test_chain_fills_each_step_with_the_inputs_and_earlier_outputs(generation_task, make_context):
    task = generation_task
    method = make_method("chain").fit(task.train.subset(range(2)), make_context(task=task))
    prediction = method.predict(task.test.texts[:3])
    trace = prediction.extra["traces"][0]
    words, topic = trace["steps"]
    assert [words["step"], topic["step"]] == ["words", "topic"]
    assert words["prompt"] == f"Text: {task.test.texts[0]}\nKey words:"
    assert topic["prompt"] == f"Key words: {words['output']}\nText: {task.test.texts[0]}\nTopic:"
    assert words["output_tokens"] <= 4  # the step's own max_new_tokens
    assert trace["output"] == topic["output"] == prediction.texts[0]
    assert prediction.calls == 2 * 3


def test_chain_steps_given_as_a_parameter_replace_the_tasks(generation_task, make_context):
    steps = [{"name": "answer", "template": "Say the topic of {text}:"}]
    method = make_method("chain", steps=json.dumps(steps))
    method.fit(generation_task.train.subset(range(2)), make_context(task=generation_task))
    trace = method.predict(generation_task.test.texts[:1]).extra["traces"][0]
    assert [step["step"] for step in trace["steps"]] == ["answer"]
    assert trace["prompt"] == f"Say the topic of {generation_task.test.texts[0]}:"


def test_the_sweep_keys_a_chain_run_by_the_steps_it_used(generation_task):
    from promptworth.methods.chain import Chain

    planned = Chain.planned_params(Chain().get_params(), generation_task)
    assert planned["steps"] == generation_task.chain
    given = [{"name": "a", "template": "{text}"}]
    assert Chain.planned_params({"steps": given}, generation_task)["steps"] == given


@pytest.mark.parametrize(
    "steps, message",
    [
        ([], "expected a list of steps"),
        ([{"name": "a", "template": "{text} {b}"}], r"step 1 \(a\): slot \{b\} is neither"),
        (
            [{"name": "a", "template": "{b}"}, {"name": "b", "template": "{text}"}],
            r"step 1 \(a\): slot \{b\} is neither an input nor an earlier step",
        ),
        ([{"name": "text", "template": "{text}"}], "already an input or an earlier step"),
        ([{"name": "a", "template": "no slot"}], "has no slot"),
        ([{"name": "a", "template": "{text}", "tokens": 3}], "unknown field 'tokens'"),
        ([{"name": "a", "template": "{text}", "max_new_tokens": 0}], "whole number >= 1"),
        (["x"], "expected a mapping"),
    ],
)
def test_bad_chains_are_refused_in_one_line(steps, message):
    from promptworth.tasks.base import chain_problem

    problem = chain_problem(steps, ("text",))
    assert problem is not None and "\n" not in problem
    assert re.search(message, problem), problem


def test_a_task_without_a_chain_is_refused_before_any_model_loads(generation_task, make_context):
    from dataclasses import replace

    from promptworth.errors import PromptworthError
    from promptworth.run import runner

    task = replace(generation_task, chain=[])
    context = make_context(task=task, model="no-such-model")
    with pytest.raises(PromptworthError, match="declares no chain: give its task file `chain:`"):
        runner.execute(make_method("chain"), task.train.subset(range(2)), task.test, context)


def test_task_files_declare_chains_and_bad_ones_are_refused(tmp_path):
    from promptworth.errors import PromptworthError
    from promptworth.tasks import load_task

    pd.DataFrame({"text": ["a b", "c d", "e f"], "reference": ["x", "y", "z"]}).to_csv(
        tmp_path / "d.csv", index=False
    )
    head = "name: t\ntype: generation\ntrain: d.csv\nmetrics: [token_f1]\n"
    chain = (
        "chain:\n  - {name: facts, template: 'Facts of {text}:'}\n"
        "  - {name: answer, template: '{facts} so {text} is', max_new_tokens: 5}\n"
    )
    (tmp_path / "t.yaml").write_text(head + chain)
    task = load_task(str(tmp_path / "t.yaml"))
    assert [step["name"] for step in task.chain] == ["facts", "answer"]
    assert task.chain[1]["max_new_tokens"] == 5
    (tmp_path / "t.yaml").write_text(head + chain.replace("{facts} so", "{fact} so"))
    with pytest.raises(PromptworthError) as error:
        load_task(str(tmp_path / "t.yaml"))
    assert str(error.value) == (
        f"{tmp_path / 't.yaml'}: chain: step 2 (answer): slot {{fact}} is neither an input nor "
        "an earlier step (known here: {text}, {facts})"
    )
    (tmp_path / "d.csv").write_text("text,label\na,x\nb,y\n")
    (tmp_path / "c.yaml").write_text("name: c\ntrain: d.csv\n" + chain)
    with pytest.raises(PromptworthError, match="chain: not a field of a classification task"):
        load_task(str(tmp_path / "c.yaml"))


def test_builtin_generation_tasks_declare_valid_chains():
    from promptworth.tasks.base import chain_problem
    from promptworth.tasks.generative import TABLE

    for name, entry in TABLE.items():
        assert entry.chain, name
        assert chain_problem([dict(step) for step in entry.chain], entry.inputs) is None, name


def test_generation_few_shot_shows_each_input_its_nearest_answered_rows(
    generation_task, make_context
):
    """selection=knn on a generation task: per input, the nearest training rows by encoder
    cosine, most similar last, each ending in its first reference."""
    task = generation_task
    method = make_method("few-shot", selection="knn", k=2, calibrate=False)
    method.fit(task.train.subset(range(12)), short_context(task, make_context))
    asked = task.train.texts[:3]  # a training input's nearest row is itself
    prediction = method.predict(asked)
    for row, trace in enumerate(prediction.extra["traces"]):
        own = f"{task.fill(method.template_, asked[row])} {task.train.references[row][0]}"
        assert trace["prompt"].endswith(f"{own}\n\n{task.fill(method.template_, asked[row])}")
        assert trace["prompt"].count("\n\n") == 2  # k = 2 demonstrations
    assert prediction.extra["selection"] == "knn" and prediction.extra["k_used_mean"] == 2
    assert prediction.cached_seconds >= 0 and method.training_cost().train_examples == 12


def test_few_shot_cot_chooses_the_nearest_kept_chains_with_knn(generation_task, make_context):
    from promptworth.methods.generation import COT_TRIGGER

    method = fitted_cot(generation_task, make_context, min_score=0.0, selection="knn")
    asked = generation_task.train.texts[:2]
    prediction = method.predict(asked)
    for row, trace in enumerate(prediction.extra["traces"]):
        own = demo_text(method.format_, method.demos_[row])  # this row's own chain: last
        test_prompt = f"{generation_task.fill(method.template_, asked[row])} {COT_TRIGGER}"
        assert trace["prompt"].endswith(f"{own}\n\n{test_prompt}")


def test_prompt_search_on_generation_picks_the_best_dev_score_by_the_headline_metric(
    generation_task, make_context
):
    from promptworth.methods.prompt_search import INSTRUCTIONS

    task, scored = generation_task, []

    def score_rows(outputs, references):  # the third candidate scores best
        scored.append(len(outputs))
        return [0.9 if len(scored) == 3 else 0.1] * len(outputs)

    context = make_context(task=task, score_rows=score_rows)
    method = make_method("prompt-search", n_paraphrases=0, max_dev=5, score_all_on_test=False)
    method.fit(task.train.subset(range(8)), context)
    sources = [c.source for c in method.candidates_]
    assert sources == ["task", "task", "instruction", "instruction"]
    assert method.candidates_[2].template == f"{INSTRUCTIONS[0]}\n{task.templates[0]}"
    assert scored == [5] * 4 and method.best_ == 2
    prediction = method.predict(task.test.texts[:2])
    assert prediction.extra["chosen_template"] == method.candidates_[2].template
    assert prediction.extra["candidates"][2]["dev_score"] == pytest.approx(0.9)
    assert prediction.extra["traces"][0]["prompt"] == task.fill(
        method.candidates_[2].template, task.test.texts[0]
    )
    assert len(prediction.texts) == 2


def test_prompt_search_on_generation_scores_every_candidate_on_test(generation_task, make_context):
    from promptworth.run import runner

    task = generation_task
    method = make_method("prompt-search", n_paraphrases=0, max_dev=4)
    result = runner.execute(method, task.train.subset(range(8)), task.test, make_context(task=task))
    chosen = result["extra"]["candidates"][result["extra"]["chosen"]]
    assert chosen["test_score"] == pytest.approx(result["exact_match"])  # the headline metric
    assert all(0 <= c["test_score"] <= 1 for c in result["extra"]["candidates"])


TECHNIQUES = ["zero-shot", "self-critique", "few-shot-cot", "chain", "prompt-search", "few-shot"]
TINY_PARAMS = [
    "self-critique.critique_tokens=3",
    "few-shot-cot.reasoning_tokens=3",
    "few-shot-cot.k=1",
    "prompt-search.n_paraphrases=0",
    "prompt-search.max_dev=4",
    "few-shot.calibrate=false",
    "few-shot.selection=knn",
    "few-shot.k=1",
]


@pytest.fixture(scope="module")
def technique_sweep(tmp_path_factory, tiny_lm_dir, tiny_encoder_dir):
    """Every technique through the CLI on a user's task file: a CSV of input and reference
    columns with a two-step chain."""
    from promptworth.cli import main

    folder = tmp_path_factory.mktemp("techniques")
    task = tiny_generation_task(12, 6)
    for name, split in (("train", task.train), ("test", task.test)):
        frame = {"input": split.texts, "reference": [refs[0] for refs in split.references]}
        pd.DataFrame(frame).to_csv(folder / f"{name}.csv", index=False)
    (folder / "task.yaml").write_text(
        "name: topics\ntype: generation\ntrain: train.csv\ntest: test.csv\n"
        "text_column: input\nmetrics: [token_f1, exact_match]\nmax_new_tokens: 4\n"
        "templates: ['Text: {text}\\nTopic:']\n"
        "chain:\n  - {name: words, template: 'Key words of {text}:', max_new_tokens: 3}\n"
        "  - {name: topic, template: '{words} so {text} is about'}\n"
    )
    out = folder / "out"
    args = ["run", "--task", str(folder / "task.yaml"), "--model", tiny_lm_dir, "--quiet"]
    args += ["--encoder", tiny_encoder_dir, "--methods", ",".join(TECHNIQUES)]
    args += ["--max-text-tokens", "24", "--sizes", "4", "--seeds", "1", "--dtype", "float32"]
    for param in TINY_PARAMS:
        args += ["--param", param]
    assert main([*args, "--out", str(out)]) == 0
    return out


def test_every_technique_runs_through_the_cli_on_a_task_file(technique_sweep):
    results = pd.read_csv(technique_sweep / "results.csv")
    assert set(results["method"]) == set(TECHNIQUES)
    by_method = results.groupby("method")
    calls = by_method["calls_per_row"].median()
    assert calls["zero-shot"] == 1 and calls["self-critique"] == 3 and calls["chain"] == 2
    assert calls["few-shot-cot"] == 2 and calls["prompt-search"] == 1
    assert (results["generated_tokens_per_row"] >= 0).all()
    assert by_method["n_train"].max()["self-critique"] == 0  # a point, not a curve
    assert by_method["n_train"].max()["few-shot-cot"] == 4
    chain_params = json.loads(results.set_index("method").loc["chain", "method_params"])
    assert [step["name"] for step in chain_params["steps"]] == ["words", "topic"]


def test_the_cost_table_gives_each_technique_its_multiplier_over_the_direct_prompt(
    technique_sweep,
):
    from promptworth.analysis.results import results_frame
    from promptworth.report.markdown import cost_table
    from promptworth.store.database import RunStore

    rows = RunStore(technique_sweep / "runs.sqlite").load()
    table = cost_table(results_frame(rows))
    assert table.loc["zero-shot", "vs_zero_shot"] == 1
    served = table["serving_ms_per_example"]  # the batched time the recommender prices
    assert table["vs_zero_shot"].to_numpy() == pytest.approx(
        (served / served["zero-shot"]).to_numpy()
    )
    assert {"calls_per_row", "generated_tokens_per_row"} <= set(table.columns)
    report = (technique_sweep / "report.md").read_text()
    assert "vs_zero_shot" in report and "calls_per_row" in report
    assert "vs_zero_shot: each method's batched serving time per example over the direct" in report
    assert "- step critique 1 (" in report and "- step words (" in report


def test_the_recommendation_prices_a_technique_at_its_measured_per_query_time(
    technique_sweep, capsys
):
    from promptworth.cli import main

    args = ["recommend", str(technique_sweep), "--labels", "4", "--json"]
    assert main([*args, "--metric", "token_f1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    results = pd.read_csv(technique_sweep / "results.csv")
    measured = results.groupby("method")["serving_ms_per_example"].median()
    for entry in doc["candidates"]:
        assert entry["ms_per_example_batched"] == pytest.approx(measured[entry["method"]])
    priced = {entry["method"] for entry in doc["candidates"]}
    assert {"self-critique", "chain"} <= priced
    direct = measured["zero-shot"]
    for entry in doc["candidates"]:
        assert entry["vs_zero_shot"] == pytest.approx(measured[entry["method"]] / direct)
    assert main(["recommend", str(technique_sweep), "--labels", "4", "--metric", "token_f1"]) == 0
    text = capsys.readouterr().out
    ratio = doc["recommended"]["vs_zero_shot"]
    assert f"ms per example batched, {ratio:.1f}× zero-shot's)" in text


def test_a_generation_task_file_without_its_reference_column_is_refused_in_one_line(tmp_path):
    from promptworth.errors import PromptworthError
    from promptworth.tasks import load_task

    pd.DataFrame({"input": ["who wrote hamlet", "2+2"], "answer": ["Shakespeare", "4"]}).to_csv(
        tmp_path / "d.csv", index=False
    )
    (tmp_path / "t.yaml").write_text(
        "name: t\ntype: generation\ntrain: d.csv\nmetrics: [exact_match]\ntext_column: input\n"
    )
    with pytest.raises(PromptworthError) as error:
        load_task(str(tmp_path / "t.yaml"))
    assert str(error.value) == (
        f"{tmp_path / 'd.csv'}: no column 'reference' (columns: input, answer); name the right "
        "one with text_column (or inputs) and reference_column in the task file"
    )


@pytest.mark.parametrize(
    "scores, bar",
    [
        ([0, 0, 0, 1], 1.0),  # a 0/1 metric: the right chains, even when most are wrong
        ([1, 0, 1, 1], 1.0),
        ([0.1, 0.4, 0.2, 0.0], 0.15),  # a graded metric: the better half
        ([0.0, 0.0], 1.0),  # nothing above 0: no chain is kept
    ],
)
def test_few_shot_cots_default_bar_keeps_the_better_half_of_the_chains(scores, bar):
    from promptworth.methods.few_shot_cot import better_half

    assert better_half(scores) == pytest.approx(bar)
