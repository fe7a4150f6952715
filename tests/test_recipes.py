"""The training recipe through real methods on the tiny random-weight Llama: the untrained start
is returned exactly when training only hurts (dev and k-fold selection), T-Few's losses, the
learning-rate search, and the encoders' share of the same rule."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from promptworth.errors import PromptworthError
from promptworth.methods import make_method, method_class
from promptworth.methods.base import PromptOptions
from promptworth.methods.batching import right_padded
from promptworth.methods.prompt_training import (
    answer_logprobs,
    build_sequences,
    label_only_loss,
    tfew_loss,
)
from promptworth.methods.prompting import rank_scores
from promptworth.tasks.base import Split

FROM_PROMPT = ["prompt-lora", "prompt-ft", "ia3", "prompt-tuning", "prefix-tuning", "p-tuning"]


def tiny(name: str, **params):
    return make_method(name, **{**method_class(name).test_params, **params})


def collapsing(method, label: int = 2):
    """The method trained to answer `label` whatever the text, and scored against answers that
    are never `label` (rows of that label count as the next one): every held-out row it has
    collapsed on is wrong, so an untrained model that is right anywhere is strictly better -
    the start is kept only when it is strictly more accurate (an accuracy tie goes to training).
    The tiny model's start answers mostly label 0, so label 0 would leave it nothing to win on."""
    build = method.learner

    def learner(model, tokenizer, train_split, context):
        one = Split(train_split.texts, np.full(len(train_split), label))
        inner = build(model, tokenizer, one, context)
        truth = np.asarray(train_split.labels)
        never_label = np.where(truth == label, (label + 1) % context.task.n_labels, truth)
        return replace(inner, labels=never_label)

    method.learner = learner
    return method


def diverging(method):
    """The method whose every training step diverges (an infinite loss: its weights become NaN,
    and NaN scores count as wrong). On the tiny random model the soft prompts move no
    prediction at any rate, nor IA3's vectors at 10 times theirs: their trained accuracy ties
    the start's, which now goes to training, so only divergence makes them worse."""
    build = method.learner

    def learner(model, tokenizer, train_split, context):
        inner = build(model, tokenizer, train_split, context)

        def step_loss(rows):
            loss, n_tokens = inner.step_loss(rows)
            return loss * math.inf, n_tokens

        return replace(inner, step_loss=step_loss)

    method.learner = learner
    return method


HURT_BY = {"ia3": diverging, "prompt-tuning": diverging, "p-tuning": diverging}


def default_rate(name: str) -> float:
    return method_class(name).Config().learning_rate


@pytest.fixture(scope="module")
def zero_shot_scores(backbones, tiny_lm_dir, tiny_encoder_dir):
    from promptworth.methods.base import RunContext
    from promptworth.testing import tiny_task

    task = tiny_task()
    context = RunContext(task, 0, backbones, tiny_lm_dir, tiny_encoder_dir, PromptOptions())
    return make_method("zero-shot").fit(task.train, context).predict(task.test.texts).scores


@pytest.mark.parametrize("name", [*FROM_PROMPT, "dpo"])
def test_cv_returns_the_start_when_training_only_hurts(name, task, make_context, zero_shot_scores):
    """12 rows are too few for a dev split: four folds decide, and the untrained model wins,
    so the run predicts exactly what zero-shot predicts (the soft prompts start as the
    template's words, LoRA's B is zero, IA3's vectors one)."""
    hurt = HURT_BY.get(name, collapsing)
    method = hurt(tiny(name, max_steps=20, learning_rate=10 * default_rate(name))).fit(
        task.train.subset(range(12)), make_context()
    )
    prediction = method.predict(task.test.texts)
    assert prediction.extra["selection"] == "cv" and prediction.extra["selected_step"] == 0
    assert prediction.extra["start_accuracy"] > prediction.extra["trained_accuracy"]
    np.testing.assert_allclose(prediction.scores, zero_shot_scores, atol=1e-5)
    steps = 20  # each fold trains 9 rows for max_steps=20 steps, nothing trains after
    stage = method.config.dpo_max_steps if name == "dpo" else 0
    assert method.cost_.train_steps == 4 * (steps + stage)


def test_dev_selection_returns_the_start_when_training_only_hurts(
    task, make_context, zero_shot_scores
):
    """48 rows: a 9-row dev split decides. Trained towards a label no dev row has, the model is
    wrong on every dev row it has collapsed on, and the start is more accurate."""
    method = collapsing(tiny("prompt-lora", learning_rate=1e-2, max_steps=20))
    prediction = method.fit(task.train, make_context()).predict(task.test.texts)
    assert prediction.extra["selection"] == "dev" and prediction.extra["selected_step"] == 0
    np.testing.assert_allclose(prediction.scores, zero_shot_scores, atol=1e-5)


@pytest.mark.parametrize("name", ["prefix-tuning", "p-tuning", "prompt-ft", "prompt-lora"])
def test_a_kept_start_is_served_as_the_prompt_itself(name, task, make_context):
    """Selection kept the untrained model, which is the backbone reading the prompt held
    another way (virtual tokens holding the template's words, a fp32 copy, a zero LoRA update):
    the run serves the backbone with the plain prompt, so it predicts what zero-shot predicts
    to the bit (the other ways agree only up to rounding, which flips near-ties in bf16)."""
    context = make_context()
    method = diverging(tiny(name, learning_rate=1e-2, max_steps=20))
    prediction = method.fit(task.train, context).predict(task.test.texts)
    assert prediction.extra["selected_step"] == 0
    assert method.model_ is context.backbones.get(context.model, "causal-lm").model
    zero_shot = make_method("zero-shot").fit(task.train, context).predict(task.test.texts)
    np.testing.assert_array_equal(prediction.scores, zero_shot.scores)
    assert prediction.prompt_tokens == zero_shot.prompt_tokens


def test_tfew_loss_by_hand():
    """Two examples, three labels; the answers' token probabilities are chosen, the three terms
    are computed here from them as eqs. 1-3 of Liu et al. 2022 write them."""
    p = {  # label -> per-example probabilities of the label answer's tokens
        0: [[0.5, 0.8], [0.1, 0.9]],
        1: [[0.25], [0.6]],
        2: [[0.1, 0.2], [0.05, 0.5]],
    }
    gold = [0, 1]
    logprobs = [torch.log(torch.tensor(p[c], dtype=torch.float64)) for c in range(3)]
    total, (lm, unlikelihood, ln) = tfew_loss(logprobs, torch.tensor(gold))
    gold_tokens = [*p[0][0], *p[1][1]]
    assert lm.item() == pytest.approx(-sum(map(math.log, gold_tokens)) / 3)
    wrong = [*p[1][0], *p[2][0], *p[0][1], *p[2][1]]
    assert unlikelihood.item() == pytest.approx(-sum(math.log(1 - q) for q in wrong) / 7)

    def beta(tokens):
        return sum(map(math.log, tokens)) / len(tokens)

    expected_ln = 0.0
    for row, y in enumerate(gold):
        betas = [beta(p[c][row]) for c in range(3)]
        expected_ln -= betas[y] - math.log(sum(math.exp(b) for b in betas))
    assert ln.item() == pytest.approx(expected_ln / 2)
    assert total.item() == pytest.approx(lm.item() + unlikelihood.item() + ln.item())


@pytest.mark.parametrize("name", ["prompt-lora", "prompt-tuning", "prefix-tuning"])
def test_training_with_virtual_tokens_or_a_plain_dropout_is_not_packed(
    name, backbones, tiny_lm_dir, make_context
):
    """Virtual tokens are prepended per row, and an nn.Dropout draws its masks over the batch's
    shape: packing either would change the steps taken, so they train on padded rows. LoRA's
    own dropout draws the padded batch's masks, so LoRA packs."""
    from promptworth.backbones.layout_dropout import LayoutDropout
    from promptworth.methods.prompt_training import packs

    method = tiny(name)
    model = method.trainable_model(backbones.get(tiny_lm_dir, "causal-lm"), make_context())
    assert packs(model, method.virtual_tokens) is (name == "prompt-lora")
    assert packs(model, False)
    layout_dropouts = [m for m in model.modules() if isinstance(m, LayoutDropout)]
    assert bool(layout_dropouts) is (name == "prompt-lora")
    model.add_module("plain_dropout", torch.nn.Dropout(0.1))
    assert not packs(model, False)


def test_layout_dropout_draws_the_padded_batchs_masks():
    """Unpacked, LayoutDropout draws nn.Dropout's masks (CPU, same generator state); on rows
    packed end to end it gives each token the entry the padded batch gives it."""
    from promptworth.backbones.layout_dropout import LayoutDropout, packed_rows

    lengths, features = [5, 2, 4], 3
    padded = torch.randn(len(lengths), max(lengths), features)
    layer, plain = LayoutDropout(0.4).train(), torch.nn.Dropout(0.4).train()
    torch.manual_seed(7)
    expected = plain(padded)
    torch.manual_seed(7)
    torch.testing.assert_close(layer(padded), expected, rtol=0, atol=0)
    packed = torch.cat([padded[row, :n] for row, n in enumerate(lengths)])[None]
    holder = torch.nn.Sequential(torch.nn.Linear(1, 1), layer)
    torch.manual_seed(7)
    with packed_rows(holder, lengths):
        got = layer(packed)
    assert layer.layout is None  # only inside packed_rows
    kept = torch.cat([expected[row, :n] for row, n in enumerate(lengths)])[None]
    torch.testing.assert_close(got, kept, rtol=0, atol=0)
    assert 0 < (got == 0).float().mean() < 1  # the masks drop some entries, not all


def masked_label_loss(model, tokenizer, seqs, batch):
    """The loss as transformers computes it from labels: every position's logits, the prompt's
    and the padding's labels masked with -100."""
    ids, mask = right_padded(tokenizer, [seqs.input_ids[i] for i in batch], "cpu")
    labels = torch.where(mask.bool(), ids, -100)
    for row, index in enumerate(batch):
        labels[row, : seqs.n_prompt[index]] = -100
    return model(input_ids=ids, attention_mask=mask, labels=labels).loss


@pytest.mark.parametrize("name", FROM_PROMPT)
def test_label_only_loss_is_the_masked_full_loss(name, task, backbones, tiny_lm_dir, make_context):
    """Running the LM head only at the label positions (with virtual tokens and without), padded
    or packed into one sequence, gives the loss and gradients of the full-vocabulary loss over
    every position with the rest masked."""
    backbone = backbones.get(tiny_lm_dir, "causal-lm")
    context = make_context()
    method = tiny(name)
    model = method.trainable_model(backbone, context).eval()
    seqs = build_sequences(method.prompt_format(backbone, context), task.train.subset(range(8)))
    assert len({len(s) for s in seqs.input_ids}) > 1  # the batch is padded
    batch = np.array([5, 0, 3, 7, 1])
    trained = [p for p in model.parameters() if p.requires_grad]
    expected = masked_label_loss(model, backbone.tokenizer, seqs, batch)
    expected_grads = torch.autograd.grad(expected, trained)
    for packed in (False, not method.virtual_tokens):
        loss, tokens = label_only_loss(model, backbone.tokenizer, seqs, batch, packed)
        assert tokens == sum(len(seqs.input_ids[i]) for i in batch)
        assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
        for got, grad in zip(torch.autograd.grad(loss, trained), expected_grads):
            torch.testing.assert_close(got, grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("prompt-lora", {"dropout": 0.0, "learning_rate": 3e-2}),
        ("prompt-lora", {"dropout": 0.3, "learning_rate": 3e-2}),
        ("prompt-ft", {}),
        ("ia3", {}),
    ],
)
def test_packed_training_selects_the_same_step_and_predicts_the_same(
    name, params, task, backbones, tiny_lm_dir, make_context, monkeypatch
):
    """Packing changes no step of the recipe (LoRA's dropout included): on a fixed seed the
    dev-selected step and the test predictions are those of padded batches, the scores equal to
    float rounding."""
    from promptworth.methods import prompt_training

    def fitted():
        return tiny(name, max_steps=12, **params).fit(task.train, make_context())

    backbone, context = backbones.get(tiny_lm_dir, "causal-lm"), make_context()
    assert prompt_training.packs(tiny(name, **params).trainable_model(backbone, context), False)

    packed = fitted()
    loss = prompt_training.label_only_loss
    monkeypatch.setattr(
        prompt_training, "label_only_loss", lambda *args: loss(*args[:4], packed=False)
    )
    padded = fitted()
    assert packed.selection_.step == padded.selection_.step > 0
    assert packed.selection_.rule == "dev"
    got, expected = packed.predict(task.test.texts), padded.predict(task.test.texts)
    np.testing.assert_array_equal(got.labels, expected.labels)
    np.testing.assert_allclose(got.scores, expected.scores, atol=1e-4)


@pytest.mark.parametrize("name", ["ia3", "prompt-tuning", "prefix-tuning"])
def test_answer_logprobs_are_the_rank_scores_with_gradients(
    name, task, backbones, tiny_lm_dir, make_context
):
    """The T-Few loss reads the same log-probabilities rank classification scores (here, with
    virtual tokens and without), and they carry gradients to what trains."""
    backbone = backbones.get(tiny_lm_dir, "causal-lm")
    context = make_context()
    method = tiny(name)
    fmt = method.prompt_format(backbone, context)
    model = method.trainable_model(backbone, context).eval()
    prompts = build_sequences(fmt, task.test.subset(range(6))).prompts(range(6))
    answers = [words[0] for words in fmt.label_candidates()]
    logprobs, tokens = answer_logprobs(model, backbone.tokenizer, prompts, answers)
    assert tokens >= sum(map(len, prompts))  # every one-token answer shares one pass
    candidates = [[answer] for answer in answers]
    # the scores prediction computes (test_peft_methods checks those against a reference)
    n_virtual = method.n_virtual(model)
    expected = rank_scores(model, backbone.tokenizer, prompts, candidates, 4, False, n_virtual)
    got = torch.stack([lp.sum(-1) for lp in logprobs], dim=1).detach().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4)
    sum(lp.sum() for lp in logprobs).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_tfew_training_runs_and_lowers_its_loss(task, backbones, tiny_lm_dir, make_context):
    method = tiny("ia3", loss="tfew", learning_rate=3e-2, max_steps=12, cv_folds=0)
    train = task.train.subset(range(16))
    context = make_context()
    backbone = backbones.get(tiny_lm_dir, "causal-lm")
    method.format_ = method.prompt_format(backbone, context)
    model = method.trainable_model(backbone, context)
    learner = method.learner(model, backbone.tokenizer, train, context)
    rows = np.arange(16)
    before = learner.step_loss(rows)[0].item()
    method.fit(train, context)  # the same recipe through fit: 12 steps, no selection
    learner = method.learner(method.model_, backbone.tokenizer, train, context)
    assert method.cost_.train_steps == 12
    assert learner.step_loss(rows)[0].item() < before


def test_unknown_loss_and_tune_are_refused():
    with pytest.raises(PromptworthError, match=r"prompt-lora\.loss=.dpo.: expected one of"):
        make_method("prompt-lora", loss="dpo")
    with pytest.raises(PromptworthError, match=r"ia3\.tune=.fast.: expected one of none, quick"):
        make_method("ia3", tune="fast")
    with pytest.raises(PromptworthError, match=r"encoder-ft\.cv_folds=1"):
        make_method("encoder-ft", cv_folds=1)


def test_tune_records_the_chosen_rate_and_the_grid(task, make_context):
    method = tiny("prompt-lora", tune="quick")
    prediction = method.fit(task.train.subset(range(12)), make_context()).predict(task.test.texts)
    tuned = prediction.extra["tuned"]
    grid = method_class("prompt-lora").learning_rates
    assert [row["learning_rate"] for row in tuned["grid"]] == list(grid)
    best = max(tuned["grid"], key=lambda row: (row["accuracy"], -row["loss"]))
    assert tuned["learning_rate"] == best["learning_rate"]
    # every rate on every fold (4 x 3 steps each), then the final run unless the start won
    final = 0 if prediction.extra["selected_step"] == 0 else 3
    assert method.cost_.train_steps == len(grid) * 4 * 3 + final


def test_encoders_select_on_dev_accuracy_and_tune_by_folds(task, make_context):
    small = tiny("encoder-head", tune="quick").fit(task.train.subset(range(12)), make_context())
    extra = small.predict(task.test.texts).extra
    assert extra["selection"] == "cv" and extra["selected_step"] == 3  # a random head: no start
    assert [r["learning_rate"] for r in extra["tuned"]["grid"]] == list(
        method_class("encoder-head").learning_rates
    )
    large = tiny("encoder-head").fit(task.train, make_context())
    assert large.selection_.rule == "dev" and large.selection_.step > 0
