"""encoder-head and encoder-ft: what trains, the shared encoder untouched, the loss, the rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from promptworth.methods import make_method
from promptworth.methods.base import count_params
from promptworth.methods.encoder_classifier import Targets, soft_cross_entropy

FAST = {"max_steps": 4, "batch_size": 4}


@pytest.fixture
def train(task):
    return task.train.subset(range(24))


def shared_encoder_state(context) -> dict[str, torch.Tensor]:
    model = context.backbones.get(context.encoder, "encoder").model
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_encoder_head_trains_the_output_layer_only(train, make_context):
    context = make_context()
    before = shared_encoder_state(context)
    method = make_method("encoder-head", **FAST).fit(train, context)
    model = method.model_
    hidden, n_labels = model.config.hidden_size, context.task.n_labels
    assert method.training_cost().trainable_params == hidden * n_labels + n_labels
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [
        "classifier.weight",
        "classifier.bias",
    ]
    # the frozen encoder inside the trained model is the shared encoder's weights, unchanged
    for name, value in model.base_model.state_dict().items():
        torch.testing.assert_close(value, before[name].float())
    assert method.training_cost().artifact_bytes == 4 * (hidden * n_labels + n_labels)


def test_encoder_ft_trains_every_layer_and_leaves_the_shared_encoder(train, make_context):
    context = make_context()
    before = shared_encoder_state(context)
    method = make_method("encoder-ft", **FAST).fit(train, context)
    trainable, total = count_params(method.model_)
    assert method.training_cost().trainable_params == trainable == total
    changed = [
        name
        for name, value in method.model_.base_model.state_dict().items()
        if not torch.equal(value, before[name].float())
    ]
    assert any(name.startswith("encoder.layer.0.") for name in changed)
    after = shared_encoder_state(context)
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("name", ["encoder-head", "encoder-ft"])
def test_predict_gives_logits_as_scores(name, task, train, make_context):
    method = make_method(name, **FAST).fit(train, make_context())
    prediction = method.predict(task.test.texts)
    assert prediction.scores.shape == (len(task.test), task.n_labels)
    np.testing.assert_array_equal(prediction.scores.argmax(axis=1), prediction.labels)
    assert prediction.prompt_tokens > len(task.test)


def test_the_dev_split_and_early_stopping_rule_applies(task, make_context):
    small = make_method("encoder-head", **FAST).fit(task.train.subset(range(24)), make_context())
    assert small.selection_.rule == "budget"  # 20% of 24 is under min_dev: no dev split
    large = make_method("encoder-head", **FAST).fit(task.train, make_context())
    assert large.selection_.rule == "dev" and large.selection_.trained is not None
    # the dev examples are held out: training counts only the other 80%
    assert large.training_cost().train_examples <= 4 * FAST["batch_size"]


def test_an_explicit_encoder_overrides_the_context(train, make_context, tiny_encoder_dir):
    context = make_context(encoder="no-such-encoder")
    method = make_method("encoder-head", encoder=tiny_encoder_dir, **FAST).fit(train, context)
    assert method.training_cost().total_params > 0


def test_soft_cross_entropy_is_cross_entropy_for_gold_labels():
    logits = torch.randn(5, 3)
    labels = torch.tensor([0, 2, 1, 1, 0])
    gold = torch.eye(3)[labels]
    torch.testing.assert_close(
        soft_cross_entropy(logits, gold, torch.ones(5)),
        torch.nn.functional.cross_entropy(logits, labels),
    )
    # at temperature T the loss is T^2 times the cross-entropy of the softened distributions
    soft = torch.softmax(torch.randn(5, 3), dim=-1)
    expected = 4 * -(soft * torch.log_softmax(logits / 2, dim=-1)).sum(-1).mean()
    torch.testing.assert_close(soft_cross_entropy(logits, soft, torch.full((5,), 2.0)), expected)


def test_fit_targets_learns_the_given_distributions(task, make_context):
    """Soft targets that all favour one label teach the classifier to predict it."""
    texts = task.train.texts[:24]
    probs = np.tile([0.1, 0.8, 0.1], (24, 1))
    targets = Targets(texts, probs, np.ones(24))
    method = make_method("encoder-head", max_steps=10, batch_size=8, learning_rate=0.1)
    method.fit_targets(targets, task.train.subset([]), make_context())
    assert (method.predict(task.test.texts).labels == 1).all()


def test_targets_concatenate_gold_and_soft(task):
    gold = Targets.gold(task.train.subset(range(3)), task.n_labels)
    np.testing.assert_array_equal(gold.probs.argmax(axis=1), task.train.labels[:3])
    both = gold + Targets(["x"], np.array([[0.2, 0.3, 0.5]]), np.array([2.0]))
    assert len(both) == 4 and both.temperature.tolist() == [1, 1, 1, 2]


def pooled_by_hand(context, texts) -> np.ndarray:
    encoder = context.backbones.get(context.encoder, "encoder")
    encoded = encoder.tokenizer(list(texts), padding=True, return_tensors="pt")
    with torch.no_grad():
        states = encoder.model(**encoded).last_hidden_state.float()
        mask = encoded["attention_mask"].unsqueeze(-1).float()
        return ((states * mask).sum(1) / mask.sum(1)).numpy()


def test_mean_pooling_reads_the_average_of_the_encoders_token_states(task, train, make_context):
    """The default head reads the masked mean of the last layer (how sentence encoders are read),
    computed here by hand from the shared encoder for texts of different lengths."""
    context = make_context()
    method = make_method("encoder-head", **FAST).fit(train, context)
    texts = list(task.test.texts[:3])
    head = method.model_.classifier
    weight, bias = head.weight.detach().numpy(), head.bias.detach().numpy()
    expected = pooled_by_hand(context, texts) @ weight.T + bias
    np.testing.assert_allclose(method.predict(texts).scores, expected, rtol=1e-3, atol=1e-3)


def test_cls_pooling_is_the_transformers_sequence_classifier(train, make_context):
    from transformers import PreTrainedModel

    method = make_method("encoder-head", pooling="cls", **FAST).fit(train, make_context())
    assert isinstance(method.model_, PreTrainedModel)
    assert method.model_.base_model.pooler is not None  # BERT's head reads the [CLS] pooler
    assert method.training_cost().trainable_params == method.model_.classifier.weight.numel() + (
        method.model_.classifier.bias.numel()
    )


def test_a_probe_start_is_the_logistic_regression_on_the_frozen_vectors(task, make_context):
    """LP-FT: before fine-tuning, the head is features-lr's logistic regression (C chosen by its
    cross-validation, stored) on the mean-pooled vectors of the training rows. The regression is
    refit here on the very vectors the probe read (checked against a by-hand masked mean): lbfgs
    stops at its tolerance, so vectors equal only to float32 rounding could move its solution."""
    from sklearn.linear_model import LogisticRegression

    from promptworth.methods.encoder_classifier import Tokenized

    context = make_context()
    train = task.train.subset(range(24))
    method = make_method("encoder-ft", head_init="probe", **FAST)
    backbone = context.backbones.get(context.encoder, "encoder")
    method.placement_ = backbone.placement
    model = method.load_model(context.backbones.source(backbone.spec), task.n_labels, seed=0)
    data = Tokenized(backbone.tokenizer, list(train.texts), max_tokens=128)
    rows = np.arange(len(train))
    chosen = method.probe_start(model, data, rows, np.eye(task.n_labels)[train.labels], context)
    assert chosen["probe_C_rule"].endswith("neg_log_loss")
    model.eval()
    vectors = method.over_rows(model.pooled, data, rows, model.config.hidden_size)
    np.testing.assert_allclose(vectors, pooled_by_hand(context, train.texts), atol=1e-5)
    probe = LogisticRegression(C=chosen["probe_C"], max_iter=2000, random_state=0)
    probe.fit(vectors, train.labels)
    head = model.classifier
    np.testing.assert_allclose(head.weight.detach().numpy(), probe.coef_, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(head.bias.detach().numpy(), probe.intercept_, rtol=1e-6, atol=1e-6)


def test_a_probe_start_is_kept_when_fine_tuning_only_hurts(task, make_context):
    """With a dev split the probe is the untrained candidate: training at an absurd learning
    rate scores worse on dev, so selection returns the probe itself (step 0)."""
    context = make_context()
    kept = make_method("encoder-ft", head_init="probe", learning_rate=50.0, **FAST)
    kept.fit(task.train, context)
    assert kept.selection_.rule == "dev" and kept.selection_.step == 0
    assert kept.start_["head_init"] == "probe" and kept.start_["probe_C"] > 0
    start = make_method("encoder-ft", head_init="probe", learning_rate=1e-12, **FAST)
    start.fit(task.train, context)
    np.testing.assert_allclose(
        kept.predict(task.test.texts).scores, start.predict(task.test.texts).scores, atol=1e-4
    )


def test_a_probe_needs_mean_pooling_and_two_labels(task, make_context):
    from promptworth.errors import PromptworthError
    from promptworth.methods.base import ParameterError

    with pytest.raises(ParameterError, match="head_init"):
        make_method("encoder-ft", head_init="probe", pooling="cls")
    one_label = task.train.subset(np.flatnonzero(task.train.labels == 0)[:6])
    with pytest.raises(PromptworthError, match="one label only"):
        make_method("encoder-ft", head_init="probe", **FAST).fit(one_label, make_context())
