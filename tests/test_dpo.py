"""dpo: preference pairs from labels or a user's file, their validation, and what the DPO stage
adds on top of the prompt-lora supervised stage (cost, one adapter, a larger preference margin)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from promptworth.errors import PromptworthError
from promptworth.methods import method_class
from promptworth.methods.base import PromptOptions
from promptworth.methods.dpo import DPO, label_pairs, pairs_processed, read_preference_file
from promptworth.methods.prompt_lora import PromptLoRA
from promptworth.methods.prompting import PromptFormat, score_candidates
from promptworth.testing import tiny_tokenizer

ROWS = [
    {"prompt": "Text: the team won\nTopic:", "chosen": " sports", "rejected": " business"},
    {"prompt": "Text: shares rose\nTopic:", "chosen": " business", "rejected": " science"},
    {"prompt": "Text: a new chip\nTopic:", "chosen": " science", "rejected": " sports"},
]


@pytest.fixture(scope="module")
def fmt():
    from promptworth.testing import tiny_task

    return PromptFormat(tiny_task(), tiny_tokenizer("causal-lm"), PromptOptions())


def test_label_pairs_prefer_the_gold_word_in_context(fmt):
    split = fmt.task.train.subset(range(9))
    pairs = label_pairs(fmt, split, "one", seed=0)
    assert len(pairs) == len(split)
    for pair, text, label in zip(pairs, split.texts, split.labels):
        assert pair["prompt"] == fmt.prompt(text)
        assert pair["chosen"] == " " + fmt.task.verbalizers[label][0]  # after "Topic:"
        wrong = {" " + words[0] for y, words in enumerate(fmt.task.verbalizers) if y != label}
        assert pair["rejected"] in wrong
    assert pairs == label_pairs(fmt, split, "one", seed=0)  # seeded


def test_all_negatives_pair_every_wrong_label(fmt):
    split = fmt.task.train.subset(range(4))
    pairs = label_pairs(fmt, split, "all", seed=0)
    assert len(pairs) == len(split) * (fmt.task.n_labels - 1)
    assert all(p["chosen"] != p["rejected"] for p in pairs)


def test_preference_file_csv_and_jsonl(tmp_path):
    import pandas as pd

    csv = tmp_path / "prefs.csv"
    pd.DataFrame(ROWS).to_csv(csv, index=False)
    jsonl = tmp_path / "prefs.jsonl"
    jsonl.write_text("".join(json.dumps({**row, "extra": 1}) + "\n" for row in ROWS))
    assert read_preference_file(str(csv)) == ROWS  # leading spaces and newlines survive
    assert read_preference_file(str(jsonl)) == ROWS  # extra columns are ignored


def test_preference_file_missing_column_names_file_and_column(tmp_path):
    path = tmp_path / "prefs.csv"
    path.write_text("prompt,chosen\nText: x\nTopic:, sports\n")
    with pytest.raises(PromptworthError, match=r"prefs\.csv has no column rejected"):
        read_preference_file(str(path))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("prefs.txt", "prompt,chosen,rejected\n", "use a .csv or .jsonl"),
        ("prefs.csv", "prompt,chosen,rejected\n", "has no rows"),
        ("prefs.csv", "prompt,chosen,rejected\np,a,\n", "row 1: empty rejected"),
        ("prefs.csv", "", "could not read it"),
    ],
)
def test_preference_file_rejects_bad_files(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(PromptworthError, match=message):
        read_preference_file(str(path))
    with pytest.raises(PromptworthError, match="does not exist"):
        read_preference_file(str(tmp_path / "missing.csv"))


def test_bad_preference_file_fails_before_training(tmp_path):
    path = tmp_path / "prefs.jsonl"
    path.write_text(json.dumps({"prompt": "p", "chosen": "a"}) + "\n")
    with pytest.raises(PromptworthError, match="no column rejected"):
        DPO(**DPO.test_params, preference_file=str(path))  # refused when configured


def test_unknown_negatives_are_refused():
    with pytest.raises(PromptworthError, match=r"dpo\.negatives='some'"):
        DPO(negatives="some")


def test_pairs_processed_counts_short_epoch_ends():
    assert pairs_processed(10, 4, 3) == 10  # 4 + 4 + 2
    assert pairs_processed(10, 4, 4) == 14  # a second epoch starts
    assert pairs_processed(3, 8, 2) == 6


SFT = {"max_steps": 3, "batch_size": 4, "merge": False, "cv_folds": 0}  # the budget alone
STRONG_DPO = {"dpo_max_steps": 6, "dpo_batch_size": 4, "dpo_learning_rate": 2e-2, "beta": 0.5}


@pytest.fixture(scope="module")
def sft_and_dpo(backbones, tiny_lm_dir, tiny_encoder_dir):
    """The same supervised stage alone (prompt-lora) and followed by a strong DPO stage."""
    from promptworth.methods.base import RunContext
    from promptworth.testing import tiny_task

    task = tiny_task()
    context = RunContext(
        task=task,
        seed=0,
        backbones=backbones,
        model=tiny_lm_dir,
        encoder=tiny_encoder_dir,
        prompt=PromptOptions(batch_size=8),
    )
    train = task.train.subset(range(16))
    sft = PromptLoRA(**SFT).fit(train, context)
    dpo = DPO(**SFT, **STRONG_DPO).fit(train, context)
    return task, train, sft, dpo


def test_dpo_adds_its_stage_to_the_cost(sft_and_dpo):
    _, train, sft, dpo = sft_and_dpo
    stats = dpo.preference_stats_
    assert stats.pairs == len(train) and stats.steps == STRONG_DPO["dpo_max_steps"]
    assert dpo.cost_.train_steps == sft.cost_.train_steps + stats.steps
    assert dpo.cost_.train_examples == sft.cost_.train_examples + pairs_processed(
        len(train), STRONG_DPO["dpo_batch_size"], stats.steps
    )
    assert dpo.cost_.train_tokens > sft.cost_.train_tokens
    # One adapter, the same size as prompt-lora's: the frozen reference copy is dropped.
    assert dpo.cost_.trainable_params == sft.cost_.trainable_params
    assert dpo.cost_.artifact_bytes == sft.cost_.artifact_bytes
    assert list(dpo.model_.peft_config) == ["default"]


def test_dpo_widens_the_gold_label_margin(sft_and_dpo):
    task, train, sft, dpo = sft_and_dpo
    pairs = label_pairs(dpo.format_, train, "one", seed=0)  # the pairs DPO trained on
    words = [" " + w[0] for w in task.verbalizers]
    gold = [words.index(p["chosen"]) for p in pairs]
    wrong = [words.index(p["rejected"]) for p in pairs]
    rows = np.arange(len(pairs))

    def margin(method) -> float:
        fmt = method.format_
        prompts = [fmt.encode_prompt(p["prompt"]) for p in pairs]
        scores = score_candidates(
            method.model_, fmt.tokenizer, prompts, fmt.label_candidates(), 8, False
        )
        return float((scores[rows, gold] - scores[rows, wrong]).mean())

    assert margin(dpo) > margin(sft) + 0.05


def test_dpo_trains_on_a_preference_file(tmp_path, task, make_context):
    path = tmp_path / "prefs.csv"
    import pandas as pd

    pd.DataFrame(ROWS).to_csv(path, index=False)
    method = DPO(**DPO.test_params, preference_file=str(path))
    method.fit(task.train.subset(range(12)), make_context())
    assert method.preference_stats_.pairs == len(ROWS)
    assert method.predict(task.test.texts).labels.shape == (len(task.test),)


def test_dpo_is_registered_with_prompt_lora_parameters():
    params = method_class("dpo")().get_params()
    assert set(PromptLoRA().get_params()) < set(params)
    assert params["preference_file"] == "" and params["negatives"] == "one"


def test_a_harmful_preference_stage_is_dropped_on_dev(tmp_path, task, make_context):
    """With a dev split the DPO stage is a candidate like any checkpoint. Preferences for the
    label rarest on dev, whatever the text, can not make the model more accurate there and make
    it confidently wrong: the stage is dropped, leaving exactly the supervised stage."""
    import pandas as pd

    from promptworth.methods.training import split_dev

    context = make_context()
    sft = {"max_steps": 3, "batch_size": 4}
    dev = split_dev(len(task.train), PromptLoRA(**sft).schedule(), seed=0)[1]
    rarest = int(np.argmin(np.bincount(task.train.labels[dev], minlength=task.n_labels)))
    fmt = PromptFormat(task, tiny_tokenizer("causal-lm"), PromptOptions())
    words = [w[0] for w in task.verbalizers]
    prefs = [
        {
            "prompt": fmt.prompt(text),
            "chosen": " " + words[rarest],
            "rejected": " " + words[y],
        }
        for text in task.train.texts
        for y in range(task.n_labels)
        if y != rarest
    ]
    path = tmp_path / "collapse.csv"
    pd.DataFrame(prefs).to_csv(path, index=False)
    strong = {"dpo_max_steps": 10, "dpo_batch_size": 8, "dpo_learning_rate": 1e-2, "beta": 0.5}
    method = DPO(**sft, **strong, preference_file=str(path))
    prediction = method.fit(task.train, context).predict(task.test.texts)
    assert prediction.extra["selection"] == "dev" and prediction.extra["stage_kept"] is False
    assert method.preference_stats_.steps == strong["dpo_max_steps"]  # it ran, and is charged
    sft_alone = PromptLoRA(**sft).fit(task.train, context)
    np.testing.assert_allclose(
        prediction.scores, sft_alone.predict(task.test.texts).scores, atol=1e-6
    )
    assert method.cost_.train_steps == sft_alone.cost_.train_steps + strong["dpo_max_steps"]
