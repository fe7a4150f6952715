"""sft-lora (and sft-ft, sft-ia3): the answer tokens are the only targets, held-out rows are
scored by teacher forcing, and the untrained start is served as the backbone itself when training
does worse; trained weights serve merged."""

from __future__ import annotations

import numpy as np
import pytest

from promptworth.methods import make_method
from promptworth.methods.base import PromptOptions
from promptworth.methods.prompting import PromptFormat
from promptworth.methods.sft_lora import answer_sequences, reference_fit
from promptworth.testing import tiny_generation_task


def test_sequences_are_prompt_then_first_reference_then_end_of_text(backbones, tiny_lm_dir):
    task = tiny_generation_task()
    lm = backbones.get(tiny_lm_dir, "causal-lm")
    fmt = PromptFormat(task, lm.tokenizer, PromptOptions())
    seqs = answer_sequences(fmt, task.train.subset(range(3)))
    for i in range(3):
        prompt = fmt.prompt(task.train.texts[i])
        assert seqs.input_ids[i][: seqs.n_prompt[i]] == fmt.encode_prompt(prompt)
        answer = seqs.input_ids[i][seqs.n_prompt[i] :]
        assert answer[-1] == lm.tokenizer.eos_token_id
        decoded = lm.tokenizer.decode(answer[:-1])
        assert decoded.strip() == task.train.references[i][0]
    score = reference_fit(lm.model, lm.tokenizer, seqs, np.arange(3), batch_size=2)
    assert 0 <= score.accuracy <= 1 and score.loss > 0


def test_the_untrained_start_is_served_as_the_backbone_when_training_scores_worse(
    make_context, monkeypatch
):
    from promptworth.methods import sft_lora
    from promptworth.methods.training import DevScore

    scored = []

    def start_best(model, tokenizer, seqs, rows, batch_size):  # the start first, then trained
        scored.append(len(rows))
        return DevScore(1.0, 0.1) if len(scored) == 1 else DevScore(0.5, 0.2)

    monkeypatch.setattr(sft_lora, "reference_fit", start_best)
    task = tiny_generation_task(n_train=40)
    context = make_context(task=task)
    method = make_method("sft-lora", max_steps=4, batch_size=4).fit(task.train, context)
    selection = method.selection()
    assert selection["selection"] == "dev" and selection["selected_step"] == 0
    assert scored[0] == 8  # the dev split: 20 % of 40 rows
    assert method.model_ is context.backbones.get(context.model, "causal-lm").model
    prediction = method.predict(task.test.texts)
    zero_shot = make_method("zero-shot").fit(task.train, context).predict(task.test.texts)
    assert prediction.texts == zero_shot.texts
    assert prediction.extra["selected_step"] == 0


@pytest.mark.parametrize("name", ["sft-lora", "sft-ft", "sft-ia3"])
def test_trained_weights_serve_as_one_plain_model(name, make_context):
    """20 rows, cv_folds=0: no selection, the step budget is trained and served, adapters
    merged; LoRA and IA3 train a share of the weights (IA3 fewer), sft-ft all of them."""
    import torch

    task = tiny_generation_task(n_train=20)
    context = make_context(task=task)
    method = make_method(name, max_steps=2, batch_size=4, cv_folds=0, learning_rate=0.05)
    method.fit(task.train, context)
    assert method.selection()["selected_step"] == 2
    backbone = context.backbones.get(context.model, "causal-lm").model
    assert not hasattr(method.model_, "peft_config")  # merged: one plain model
    served, frozen = method.model_.state_dict(), backbone.state_dict()
    assert served.keys() == frozen.keys()
    assert any(not torch.equal(served[k].float(), frozen[k].float()) for k in frozen)
    cost = method.training_cost()
    share = {"sft-ft": (1.0, 1.0), "sft-lora": (0.001, 0.5), "sft-ia3": (0.0, 0.01)}[name]
    assert share[0] <= cost.trainable_params / cost.total_params <= share[1]
    assert len(method.predict(task.test.texts).texts) == len(task.test)


def test_refuses_classification_tasks(task, make_context):
    from promptworth.errors import PromptworthError
    from promptworth.run import runner

    context = make_context(model="no-such-model")
    with pytest.raises(PromptworthError, match="it learns generation tasks; task 'tiny' is a"):
        runner.execute(make_method("sft-lora"), task.train, task.test, context)


@pytest.mark.parametrize("name", ["sft-lora", "sft-ia3"])
def test_packed_training_takes_the_steps_of_padded_batches(name, make_context, monkeypatch):
    """Answers packed into one sequence (LoRA's dropout drawing the padded batch's masks) select
    the step padded batches select and generate the same texts on a fixed seed."""
    from promptworth.methods import prompt_training, sft_lora

    task = tiny_generation_task(n_train=40)
    params = {"max_steps": 8, "batch_size": 4, "learning_rate": 0.05}
    if name == "sft-lora":
        params["dropout"] = 0.3

    def fitted():
        return make_method(name, **params).fit(task.train, make_context(task=task))

    packed = fitted()
    loss = prompt_training.label_only_loss
    monkeypatch.setattr(sft_lora, "label_only_loss", lambda *args: loss(*args[:4], packed=False))
    padded = fitted()
    assert packed.selection()["selected_step"] == padded.selection()["selected_step"] > 0
    assert packed.predict(task.test.texts).texts == padded.predict(task.test.texts).texts
