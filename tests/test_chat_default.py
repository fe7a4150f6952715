"""The chat template when none is chosen: the model's own for a generation task (an instruction-
tuned model given a plain "Answer:" prompt often stops at once), never for classification, and
a choice given on the command line is kept; the run key records what was resolved."""

import shutil

import pytest

from promptworth.backbones.preflight import model_has_chat_template
from promptworth.methods.base import PromptOptions
from promptworth.run.sweep import resolved_chat
from promptworth.store.config import CHAT_DEMONSTRATIONS, RunConfig
from promptworth.testing import tiny_generation_task


@pytest.fixture(scope="module")
def lm_without_template(tiny_lm_dir, tmp_path_factory):
    copy = tmp_path_factory.mktemp("plain") / "lm"
    shutil.copytree(tiny_lm_dir, copy)
    (copy / "chat_template.jinja").unlink()
    return copy


def test_a_generation_task_takes_the_models_chat_template(tiny_lm_dir, lm_without_template):
    task = tiny_generation_task()
    assert resolved_chat(PromptOptions(), task, str(tiny_lm_dir)).chat is True
    assert resolved_chat(PromptOptions(), task, str(lm_without_template)).chat is False


def test_classification_and_a_given_choice_are_kept(task, tiny_lm_dir):
    assert resolved_chat(PromptOptions(), task, str(tiny_lm_dir)).chat is False
    generation = tiny_generation_task()
    assert resolved_chat(PromptOptions(chat=False), generation, str(tiny_lm_dir)).chat is False
    assert resolved_chat(PromptOptions(chat=True), task, str(tiny_lm_dir)).chat is True


def test_packaged_models_declare_their_template():
    assert model_has_chat_template("smollm2-135m-instruct") is True
    assert model_has_chat_template("all-minilm-l6-v2") is False


def test_an_unchosen_chat_keys_as_off():
    """Configs built before the choice could be left open said chat=false: their keys stay."""
    fields = dict(
        task="t", task_version="v", model="m", model_revision="r", encoder="e",
        encoder_revision="r", method="head", method_params={}, n_train=1, seed=0,
        test_size=1, sampling="balanced", dtype="float32",
    )  # fmt: skip
    unchosen = RunConfig(**fields, prompt=PromptOptions(chat=None))
    assert unchosen.key() == RunConfig(**fields, prompt=PromptOptions(chat=False)).key()
    assert unchosen.key() != RunConfig(**fields, prompt=PromptOptions(chat=True)).key()


def test_chat_demonstrations_key_apart_from_those_pasted_into_one_message():
    """Runs of a method that shows demonstrations under a chat template carry how it lays them
    out (as turns); other methods' keys and plain runs' keys stay as they were."""
    fields = dict(
        task="t", task_version="v", model="m", model_revision="r", encoder="e",
        encoder_revision="r", method_params={}, n_train=1, seed=0, test_size=1,
        sampling="balanced", dtype="float32",
    )  # fmt: skip
    chat, plain = PromptOptions(chat=True), PromptOptions(chat=False)
    described = RunConfig(**fields, method="few-shot", prompt=chat).to_dict()
    assert described["prompt"]["demonstrations"] == CHAT_DEMONSTRATIONS == "turns"
    for method, prompt in (("few-shot", plain), ("zero-shot", chat), ("few-shot-cot", plain)):
        assert (
            "demonstrations"
            not in RunConfig(**fields, method=method, prompt=prompt).to_dict()["prompt"]
        )
    assert (
        "demonstrations"
        in RunConfig(**fields, method="few-shot-cot", prompt=chat).to_dict()["prompt"]
    )
