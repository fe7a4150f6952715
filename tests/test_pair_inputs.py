"""Tasks with several inputs: rendering, truncation, pair tokenization, cache keys, overlap;
and the prompt given on the command line (--template literal, --verbalizer)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from promptworth.backbones import BackboneCache
from promptworth.backbones.device import Placement
from promptworth.backbones.embed import tokenize_examples
from promptworth.backbones.features import text_key
from promptworth.cli import main
from promptworth.cli.arguments import template_choice
from promptworth.errors import PromptworthError
from promptworth.methods.base import PromptOptions
from promptworth.methods.few_shot import demo_text, render_demo
from promptworth.methods.prompt_search import as_template, pet_patterns
from promptworth.methods.prompting import PromptFormat, longest_first
from promptworth.run.sweep import Sweep, SweepSpec
from promptworth.store.database import RunStore
from promptworth.tasks.base import Split, Task
from promptworth.tasks.files import check_overlap
from promptworth.testing import tiny_pair_task, tiny_task, tiny_tokenizer, write_task_files

LONG = " ".join(["the team won the match"] * 40)


def test_longest_first_cuts_the_longest_input_first():
    assert longest_first([500, 10], 128) == [118, 10]
    assert longest_first([100, 100], 50) in ([25, 25],)
    assert longest_first([30, 10], 128) == [30, 10]
    assert longest_first([300], 128) == [128]


def test_a_pair_prompt_renders_every_slot_and_keeps_the_short_question():
    task = tiny_pair_task()
    tokenizer = tiny_tokenizer("causal-lm")
    fmt = PromptFormat(task, tokenizer, PromptOptions(max_text_tokens=24))
    question = "is it about sports"
    prompt = fmt.prompt((LONG, question))
    assert prompt.startswith("Passage: the team won") and f"Question: {question}?" in prompt
    passage, kept_question = fmt.truncate((LONG, question))
    assert kept_question == question
    n = len(tokenizer(passage, add_special_tokens=False).input_ids)
    assert n + len(tokenizer(question, add_special_tokens=False).input_ids) <= 24 + 1
    assert fmt.truncate(("short", question)) == ("short", question)  # within budget: as is


def test_a_task_refuses_templates_and_examples_that_do_not_fit_its_inputs():
    task = tiny_pair_task()
    with pytest.raises(ValueError, match=r"slot\(s\) \{text\}"):
        dataclasses.replace(task, templates=["{text}\nAnswer:"])
    with pytest.raises(ValueError, match="has no slot"):
        dataclasses.replace(task, templates=["Answer:"])
    with pytest.raises(ValueError, match="does not match inputs"):
        dataclasses.replace(task, train=Split(["one text"], np.array([0])))
    assert task.template_problem("Q: {question} P: {passage}") is None  # any order


def test_encoders_read_a_pair_as_two_segments_and_truncate_the_longer():
    tokenizer = tiny_tokenizer("encoder")
    encoded = tokenize_examples(tokenizer, [(LONG, "is it about sports")], max_tokens=20)
    ids = encoded["input_ids"][0]
    assert len(ids) == 20 and ids.count(tokenizer.sep_token_id) == 2
    question = tokenizer("is it about sports", add_special_tokens=False).input_ids
    assert ids[-len(question) - 1 : -1] == question  # whole, before the final [SEP]


def test_a_causal_lm_reads_a_pair_with_a_newline_between():
    tokenizer = tiny_tokenizer("causal-lm")
    pair = tokenize_examples(tokenizer, [("the team won", "is it about sports")], 64)
    joined = tokenizer(["the team won\nis it about sports"], truncation=True, max_length=64)
    assert pair["input_ids"] == joined["input_ids"]
    single = tokenize_examples(tokenizer, ["the team won"], 64)
    assert single["input_ids"] == tokenizer(["the team won"])["input_ids"]


def test_cache_keys_cover_every_input_and_keep_single_text_keys():
    assert text_key("a text") == hashlib.sha1(b"a text").hexdigest()  # stores stay valid
    keys = {text_key(("a b", "c")), text_key(("a", "b c")), text_key("a b c"), text_key("a b\nc")}
    assert len(keys) == 4


def test_overlap_counts_identical_pairs_only(caplog):
    train = [("passage one", "question one"), ("passage two", "question two")]
    check_overlap(train, [("passage one", "another question")], "test.csv", allow=False)
    with pytest.raises(PromptworthError, match="1 of 1 test texts"):
        check_overlap(train, [(" passage one", "question one ")], "test.csv", allow=False)


def test_demonstrations_and_generated_patterns_show_every_input():
    task = tiny_pair_task()
    fmt = PromptFormat(task, tiny_tokenizer("causal-lm"), PromptOptions())
    demo = render_demo(fmt, task.templates[0], ("the team won", "is it about sports"), "yes")
    assert (
        demo_text(fmt, demo) == "Passage: the team won\nQuestion: is it about sports?\nAnswer: yes"
    )
    assert pet_patterns(task.inputs)[0] == "{passage}\n{question}\nCategory:"
    inputs = task.inputs
    assert as_template("Q: {question} P: {passage} A:", inputs) == "Q: {question} P: {passage} A:"
    assert (
        as_template("The answer is: {passage}", inputs) == "{passage}\n{question}\nThe answer is:"
    )


# -- the prompt on the command line -------------------------------------------------------


@pytest.fixture
def spec(tmp_path, tiny_lm_dir, tiny_encoder_dir) -> dict:
    train, test = write_task_files(tiny_task(), tmp_path)
    return dict(
        task=train,
        test_file=test,
        models=[tiny_lm_dir],
        encoders=[tiny_encoder_dir],
        methods=["zero-shot", "head"],
        sizes=[4],
        seeds=[0],
        dtype="float32",
        out=tmp_path / "out",
    )


def keys(**spec) -> dict[str, str]:
    return {r.config.method: r.config.key() for r in Sweep(SweepSpec(**spec), quiet=True).plan()}


def test_template_flag_reads_an_index_or_a_literal_with_escapes():
    assert template_choice("2") == 2 and template_choice("-1") == -1
    assert template_choice(r"Article: {text}\nTopic:") == "Article: {text}\nTopic:"
    assert template_choice(r"a\\n{text}") == "a\\n{text}"


def test_a_literal_template_and_verbalizer_enter_only_prompt_method_keys(spec):
    default = keys(**spec)
    literal = PromptOptions(template="Story: {text}\nTopic:")
    words = PromptOptions(verbalizer=(("sports", ("football",)),))
    for prompt in (literal, words):
        changed = keys(**spec, prompt=prompt)
        assert changed["head"] == default["head"] and changed["zero-shot"] != default["zero-shot"]
    # the task's own template spelt out, or its own words, is the same experiment
    same = PromptOptions(template="Text: {text}\nLabel:", verbalizer=(("sports", ("sports",)),))
    assert keys(**spec, prompt=same) == default


@pytest.mark.parametrize(
    "prompt, expected",
    [
        (PromptOptions(template="Story: {txt}"), "--template 'Story: {txt}': has slot(s) {txt}"),
        (PromptOptions(template="no slot"), "--template 'no slot': has no slot"),
        (PromptOptions(template=" "), "--template: empty"),
        (PromptOptions(verbalizer=(("sprots", ("x",)),)), "did you mean 'sports'?"),
        (PromptOptions(verbalizer=(("sports", ("",)),)), "give one or more non-empty words"),
        (
            PromptOptions(verbalizer=(("sports", ("a",)), ("sports", ("b",)))),
            "label 'sports' given more than once",
        ),
        (
            PromptOptions(verbalizer=(("sports", ("business",)),)),
            "--verbalizer: verbaliser word 'business' is given to labels",
        ),
    ],
)
def test_bad_prompt_flags_are_refused_before_models_load(spec, prompt, expected):
    with pytest.raises(PromptworthError) as error:
        Sweep(SweepSpec(**{**spec, "models": ["no-such-model"]}, prompt=prompt), quiet=True)
    assert expected in str(error.value)


def test_with_prompt_adds_the_literal_and_overrides_words():
    task = tiny_task()
    shown, index = task.with_prompt("Story: {text}\nTopic:", (("sports", ("football",)),))
    assert shown.templates[index] == "Story: {text}\nTopic:" and index == len(task.templates)
    assert shown.verbalizers[0] == ["football"] and shown.verbalizers[1:] == task.verbalizers[1:]
    assert task.with_prompt(1) == (task, 1)


def test_a_pair_task_file_runs_end_to_end_with_cli_prompt_flags(
    tmp_path, tiny_lm_dir, tiny_encoder_dir
):
    pair = tiny_pair_task(n_train=40, n_test=20)
    frames = [
        pd.DataFrame(
            {
                "p": [p for p, _ in split.texts],
                "q": [q for _, q in split.texts],
                "answer": [pair.label_names[y] for y in split.labels],
            }
        ).drop_duplicates(["p", "q"])
        for split in (pair.train, pair.test)
    ]
    known = set(zip(frames[0]["p"], frames[0]["q"]))
    frames[1] = frames[1][[pq not in known for pq in zip(frames[1]["p"], frames[1]["q"])]]
    frames[0].to_csv(tmp_path / "train.csv", index=False)
    frames[1].to_csv(tmp_path / "test.csv", index=False)
    (tmp_path / "pair.yaml").write_text(
        "name: pairs\ntrain: train.csv\ntest: test.csv\n"
        "inputs: {passage: p, question: q}\nlabel_column: answer\n"
        "labels: {no: [no], yes: [yes]}\n"
        'templates: ["{passage}\\nQuestion: {question}?\\nAnswer:"]\n'
    )
    out = tmp_path / "out"
    argv = ["run", "--task", str(tmp_path / "pair.yaml"), "--model", tiny_lm_dir]
    argv += ["--encoder", tiny_encoder_dir, "--methods", "zero-shot,head,features-lr"]
    argv += ["--sizes", "8", "--seeds", "1", "--dtype", "float32", "--quiet", "--out", str(out)]
    argv += ["--template", r"Passage: {passage}\nQ: {question}\nA:", "--verbalizer", "yes=yes,true"]
    assert main(argv) == 0
    results = pd.read_csv(out / "results.csv")
    assert sorted(results["method"]) == ["features-lr", "head", "zero-shot"]
    assert (results["task"] == "pairs").all()
    configs = {config["method"]: config for _, config, _ in RunStore(out / "runs.sqlite").load()}
    assert configs["zero-shot"]["prompt"]["template"] == "Passage: {passage}\nQ: {question}\nA:"
    assert configs["zero-shot"]["prompt"]["verbalizer"] == [["yes", ["yes", "true"]]]
    assert configs["head"]["prompt"]["template"] == 0  # head shows no prompt
    assert Path(out / "report.md").exists()


def test_every_example_of_a_task_built_in_code_is_checked():
    with pytest.raises(ValueError, match="does not match inputs"):
        Task(
            "t",
            "v",
            ["a", "b"],
            [["a"], ["b"]],
            ["{x} {y}"],
            Split([("1", "2")], np.array([0])),
            Split(["3"], np.array([1])),
            inputs=("x", "y"),
        )


def test_backbone_cache_is_unaffected_by_pairs(tiny_encoder_dir):
    """Embedding a pair through the shared frozen encoder gives one vector per example."""
    from promptworth.backbones.embed import embed

    backbone = BackboneCache(Placement("cpu", "float32")).get(tiny_encoder_dir, "encoder")
    vectors = embed(backbone, [("the team won", "is it about sports"), ("a", "b")], max_tokens=16)
    assert vectors.shape == (2, backbone.model.config.hidden_size)
    assert not np.allclose(vectors[0], vectors[1])


def test_runs_without_a_verbalizer_keep_the_config_and_key_they_had():
    """70bdc… is this config's key before PromptOptions.verbalizer existed:
    stores written then resume, and their reports do not split one experiment in two."""
    from promptworth.store.config import RunConfig

    config = RunConfig(
        "t", "v", "m", "r", "e", "er", "zero-shot", {}, 0, 0, 10, "balanced", "float32"
    )
    assert "verbalizer" not in config.to_dict()["prompt"]
    assert config.key() == "70bdc2010563bcd2ea9e"
    words = dataclasses.replace(config, prompt=PromptOptions(verbalizer=(("a", ("b",)),)))
    assert words.to_dict()["prompt"]["verbalizer"] == (("a", ("b",)),)
    assert words.key() != config.key()
