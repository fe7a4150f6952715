"""Generation: batched equals one at a time, stop strings, seeded sampling, weights cast rather
than autocast; classification by generation lists the options and reads the first label word."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from promptworth.backbones.device import Placement
from promptworth.methods import make_method
from promptworth.methods.base import NO_LABEL, PromptOptions
from promptworth.methods.generation import (
    Decoding,
    answer_budget,
    answer_start,
    cut_at_stop,
    generate,
    generate_texts,
    map_answer,
    serving_copy,
    unmapped_outputs,
)
from promptworth.methods.prompting import PromptFormat


@pytest.fixture
def lm(backbones, tiny_lm_dir):
    return backbones.get(tiny_lm_dir, "causal-lm")


def prompts_of(task, tokenizer, n=10):
    fmt = PromptFormat(task, tokenizer, PromptOptions())
    # prompts of different lengths, so batches need left padding
    texts = [t + " extra words" * (i % 3) for i, t in enumerate(task.test.texts[:n])]
    return [fmt.encode_prompt(fmt.prompt(t)) for t in texts]


def test_batched_greedy_equals_one_at_a_time(task, lm):
    prompt_ids = prompts_of(task, lm.tokenizer)
    assert len({len(p) for p in prompt_ids}) > 1
    decoding = Decoding(max_new_tokens=6)
    together = generate(lm.model, lm.tokenizer, prompt_ids, decoding, batch_size=8)
    alone = [generate(lm.model, lm.tokenizer, [p], decoding, 1) for p in prompt_ids]
    assert together.texts == [one.texts[0] for one in alone]
    assert together.new_tokens == [one.new_tokens[0] for one in alone]
    assert sum(together.new_tokens) > 0


def test_greedy_equals_argmax_by_full_forward_passes(task, lm):
    prompt = prompts_of(task, lm.tokenizer, 1)[0]
    sequence = list(prompt)
    with torch.inference_mode():
        for _ in range(4):
            logits = lm.model(input_ids=torch.tensor([sequence])).logits[0, -1]
            sequence.append(int(logits.argmax()))
    expected = lm.tokenizer.decode(sequence[len(prompt) :], skip_special_tokens=True)
    found = generate(lm.model, lm.tokenizer, [prompt], Decoding(4), 1)
    assert found.texts == [answer_start(expected)] and found.new_tokens == [4]


def test_text_is_cut_at_the_first_stop_string(task, lm):
    prompt_ids = prompts_of(task, lm.tokenizer, 6)
    full = generate_texts(lm.model, lm.tokenizer, prompt_ids, Decoding(8), 4)
    stop = next(ch for ch in "".join(full) if not ch.isspace())
    cut = generate_texts(lm.model, lm.tokenizer, prompt_ids, Decoding(8, stop=(stop,)), 4)
    assert cut == [cut_at_stop(text, (stop,)) for text in full]  # full: from its answer_start
    # a leading newline does not end an answer: generation goes on to the text after it
    lines = generate_texts(lm.model, lm.tokenizer, prompt_ids, Decoding(8, stop=("\n",)), 4)
    assert lines == [cut_at_stop(text, ("\n",)) for text in full]
    assert cut_at_stop("a. b\nc", (".", "\n")) == "a"
    assert cut_at_stop("abc", ("\n",)) == "abc"
    # nor does a colon completing the cue ("Therefore, the answer is" + " :\n" + the answer)
    assert cut_at_stop(answer_start(" :\nHeavy rain hit.\nMore"), ("\n",)) == "Heavy rain hit."


def test_sampling_is_seeded_and_leaves_the_global_generator_alone(task, lm):
    prompt_ids = prompts_of(task, lm.tokenizer, 4)

    def sample(seed):
        decoding = Decoding(8, temperature=1.5, seed=seed)
        return generate_texts(lm.model, lm.tokenizer, prompt_ids, decoding, 4)

    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    first = sample(0)
    assert torch.rand(1) == before  # the global generator was not advanced
    assert sample(0) == first
    assert sample(1) != first


def test_serving_copy_casts_trained_weights_and_keeps_frozen_ones(lm):
    assert serving_copy(lm.model, Placement("cpu", "float32")) is lm.model
    cast = serving_copy(lm.model, Placement("cpu", "bfloat16"))
    assert cast is not lm.model
    assert {p.dtype for p in cast.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in lm.model.parameters()} == {torch.float32}


def test_generation_runs_outside_autocast(task, lm, monkeypatch):
    seen = []
    original = lm.model.generate

    def spy(*args, **kwargs):
        seen.append(torch.is_autocast_enabled("cpu"))
        return original(*args, **kwargs)

    monkeypatch.setattr(lm.model, "generate", spy)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        generate_texts(lm.model, lm.tokenizer, prompts_of(task, lm.tokenizer, 2), Decoding(2), 2)
    assert seen == [False]


def test_generate_prompts_list_the_options(task, lm):
    fmt = PromptFormat(task, lm.tokenizer, PromptOptions(predict="generate"))
    prompt = fmt.prompt("the team won")
    assert prompt == "Text: the team won\nOptions: sports, business, science\nTopic:"
    one_line = fmt.prompt("the team won", "{text} is about")
    assert one_line == "Options: sports, business, science\nthe team won is about"
    slotted = fmt.prompt("x", "Pick one of {options}.\n{text}\nAnswer:")
    assert slotted == "Pick one of sports, business, science.\nx\nAnswer:"
    rank = PromptFormat(task, lm.tokenizer, PromptOptions())
    assert rank.prompt("the team won") == "Text: the team won\nTopic:"  # rank: as written


def test_answer_budget_follows_the_longest_verbaliser(task, lm):
    fmt = PromptFormat(task, lm.tokenizer, PromptOptions(predict="generate"))
    longest = max(len(ids) for words in fmt.label_candidates() for ids in words)
    assert answer_budget(fmt) == longest + 2


def test_map_answer_reads_whole_words_first_and_longest():
    verbalizers = [["World"], ["Sports", "sport"], ["Business"], ["Science", "Science news"]]
    assert map_answer(" esports and Business", verbalizers) == 2
    assert map_answer("SPORTS.", verbalizers) == 1
    assert map_answer("Science news", verbalizers) == 3
    assert map_answer(" Worldwide", verbalizers) == NO_LABEL


def test_unmapped_outputs_are_counted_most_frequent_first():
    answers = [" foo", "bar ", "foo", " sports", "foo\n"]
    labels = np.array([NO_LABEL, NO_LABEL, NO_LABEL, 0, NO_LABEL])
    assert unmapped_outputs(answers, labels) == [["foo", 3], ["bar", 1]]


@pytest.mark.parametrize("method", ["zero-shot", "few-shot"])
def test_classification_by_generation_records_unmapped_outputs(method, task, make_context):
    params = {"k": 3, "calibrate": False} if method == "few-shot" else {}
    context = make_context(prompt=PromptOptions(batch_size=8, predict="generate"))
    model = make_method(method, **params).fit(task.train.subset(range(12)), context)
    prediction = model.predict(task.test.texts)
    unmapped = prediction.extra["unmapped_outputs"]
    assert prediction.n_unmapped == int((prediction.labels == NO_LABEL).sum())
    assert sum(count for _, count in unmapped) <= prediction.n_unmapped
    if prediction.n_unmapped:
        assert unmapped


def test_generating_runs_are_keyed_apart_from_runs_before_options_were_listed():
    from dataclasses import replace

    from promptworth.store.config import GENERATION_PROTOCOL, RunConfig

    rank = RunConfig("t", "v", "m", "r", "e", "r", "zero-shot", {}, 0, 0, 10, "random", "float32")
    generate = replace(rank, prompt=PromptOptions(predict="generate"))
    assert "generation" not in rank.to_dict()["prompt"]  # rank keys stay what they were
    assert generate.to_dict()["prompt"]["generation"] == GENERATION_PROTOCOL


def test_report_lists_unmapped_answers_per_method():
    from promptworth.report.details import detail_lines

    def run(seed, kept, unmapped):
        config = {"method": "zero-shot", "method_params": {}, "n_train": 0, "seed": seed}
        result = {"unmapped": unmapped, "n_test": 10, "extra": {"unmapped_outputs": kept}}
        return ("key", config, result)

    lines = detail_lines([run(0, [["foo", 3], ["a|b", 1]], 4), run(1, [["foo", 2]], 2)])
    text = "\n".join(lines)
    assert "### zero-shot: generated answers that name no label" in text
    assert "6 of 20 answers (30.0%)" in text
    assert "| 'foo' | 5 |" in text and "| 'a\\|b' | 1 |" in text
    assert text.index("'foo'") < text.index("'a\\|b'")


def test_self_consistency_votes_on_the_task_answer():
    from promptworth.methods.self_consistency import majority, medoid, vote_key
    from promptworth.testing import tiny_generation_task

    numbers = vote_key(replace_metrics(("numeric",)))
    outputs = ["so 3. Therefore, the answer is 4", "the answer is 5", "it is 4.0", "none"]
    assert majority(outputs, numbers) == (0, {"4.0": 2, "5.0": 1})
    words = vote_key(tiny_generation_task())
    assert majority(["x. The answer is Paris", "the answer is London", "Paris."], words)[0] == 0
    assert majority(["no", "yes", "yes"], words) == (1, {"no": 1, "yes": 2})
    assert majority(["", " "], words) == (0, {})
    assert vote_key(replace_metrics(("rouge",))) is None
    assert medoid(["the cat sat", "a cat sat down", "stocks fell"]) in (0, 1)
    assert medoid(["stocks fell", "the cat sat", "the cat sat"]) == 1


def test_self_consistency_picks_free_text_by_its_conclusions_not_its_reasoning(make_context):
    from promptworth.methods.generation import chain_outputs

    # the first chain's reasoning is closest to the others' answers; its own answer is not
    reasons = ["the dog ran the dog ran fast", "p q r", "s t u"]
    outputs = chain_outputs(reasons, ["a cat sat", "the dog ran", "the dog ran fast"])
    method = make_method("self-consistency", samples=3, reasoning_tokens=2)
    task = replace_metrics(("rouge",))
    method.fit(task.train, make_context(task=task))
    assert method.chosen(outputs) == (1, {})


def replace_metrics(metrics):
    from dataclasses import replace

    from promptworth.testing import tiny_generation_task

    return replace(tiny_generation_task(), metrics=metrics)


def test_chains_of_thought_end_with_the_answer_trigger(make_context):
    from promptworth.methods.generation import ANSWER_TRIGGER, COT_TRIGGER
    from promptworth.testing import tiny_generation_task

    task = tiny_generation_task()
    method = make_method("zs-cot", reasoning_tokens=3).fit(task.train, make_context(task=task))
    prediction = method.predict(task.test.texts[:3])
    assert all(f"\n{ANSWER_TRIGGER}" in text for text in prediction.texts)
    kept = prediction.extra["traces"]
    assert len(kept) == len(prediction.texts)  # every test row, browsable in report.html
    assert kept[0]["prompt"].endswith(COT_TRIGGER) and kept[0]["output"] == prediction.texts[0]


def test_a_tasks_answer_trigger_cues_the_answer_and_keys_the_runs_that_read_it(make_context):
    from dataclasses import replace

    from promptworth.methods import method_class
    from promptworth.methods.generation import ANSWER_TRIGGER
    from promptworth.testing import tiny_generation_task

    plain = tiny_generation_task()
    task = replace(plain, answer_trigger="Therefore, the summary is")
    method = make_method("zs-cot", reasoning_tokens=3).fit(task.train, make_context(task=task))
    prediction = method.predict(task.test.texts[:3])
    steps = prediction.extra["traces"][0]["steps"]
    assert steps[1]["prompt"].endswith("\nTherefore, the summary is")
    # kept with its conclusion where every metric reads one
    assert all(f"\n{ANSWER_TRIGGER} " in text for text in prediction.texts)
    for name in ("zs-cot", "self-consistency", "few-shot-cot"):
        params = method_class(name)().get_params()
        planned = method_class(name).planned_params(params, task)
        assert planned["answer_trigger"] == "Therefore, the summary is"
        # on the default cue the parameter stays out of the key
        assert "answer_trigger" not in method_class(name).planned_params(params, plain)
        given = {**params, "answer_trigger": "So, finally,"}
        assert method_class(name).planned_params(given, task)["answer_trigger"] == "So, finally,"
    teacher = method_class("distill-gen")(teacher="zs-cot").get_params()
    nested = method_class("distill-gen").planned_params(teacher, task)["teacher_params"]
    assert nested["answer_trigger"] == "Therefore, the summary is"


def test_self_consistency_keeps_every_rows_samples_and_votes(make_context):
    from promptworth.testing import tiny_generation_task

    task = tiny_generation_task()
    method = make_method("self-consistency", samples=2, reasoning_tokens=2)
    prediction = method.fit(task.train, make_context(task=task)).predict(task.test.texts[:7])
    kept = prediction.extra["traces"]
    assert len(kept) == 7 and all(len(row["samples"]) == 2 for row in kept)
    assert [row["output"] for row in kept] == prediction.texts
    assert all(sum(row["votes"].values()) <= 2 for row in kept)


def test_report_shows_traces_of_the_first_rows():
    from promptworth.report.details import detail_lines

    trace = {
        "prompt": "x" * 400 + "Q: who?\nA:",
        "output": "So. The answer is Bob",
        "answer": "Bob",
    }
    step = {"step": "critique 1", "output": "too short", "prompt_tokens": 9, "output_tokens": 3}
    voted = {**trace, "votes": {"bob": 2}, "steps": [{**step, "step": "answer"}, step]}

    def run(seed, n_train, kept):
        config = {"method": "self-consistency", "method_params": {}, "n_train": n_train}
        extra = {"traces": kept, "notes": [f"seed {seed}'s note"]}
        return ("key", {**config, "seed": seed}, {"extra": extra})

    text = "\n".join(detail_lines([run(1, 0, [trace]), run(0, 0, [voted, trace, trace])]))
    assert "### self-consistency: the first test rows (n_train=0, seed 0)" in text
    assert "report.html's Traces section" in text
    assert text.count("Row ") == 2  # two rows shown of the three kept
    assert "- answer read: 'Bob'" in text and "- votes: {'bob': 2}" in text
    assert "Q: who?\nA:" in text and "x" * 301 not in text  # the prompt's end only
    assert "- step critique 1 (9 tokens in, 3 out): 'too short'" in text
    assert "Note: seed 0's note" in text and "seed 1's note" not in text
