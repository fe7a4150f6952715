"""features-lr: backbone choice, named classifiers, L2 normalisation, learned-size accounting."""

from __future__ import annotations

import numpy as np
import pytest

from promptworth.errors import PromptworthError
from promptworth.methods import make_method
from promptworth.methods.base import count_params
from promptworth.methods.features_lr import CLASSIFIERS, learned_arrays
from promptworth.methods.frozen_features import label_scores


@pytest.fixture
def train(task):
    return task.train.subset(range(24))


@pytest.mark.parametrize("backbone", ["encoder", "causal-lm"])
def test_backbone_is_read_from_config(backbone, train, make_context, backbones):
    context = make_context()
    method = make_method("features-lr", backbone=backbone).fit(train, context)
    spec = context.encoder if backbone == "encoder" else context.model
    assert method.backbone_ is backbones.get(spec, backbone)
    assert method.training_cost().total_params == count_params(method.backbone_.model)[1]


def test_default_backbone_is_the_encoder():
    assert make_method("features-lr").backbone_kind == "encoder"


def test_head_keeps_its_causal_lm_backbone():
    assert make_method("head").backbone_kind == "causal-lm"


@pytest.mark.parametrize("classifier", sorted(CLASSIFIERS))
def test_every_classifier_fits_scores_and_reports_its_size(classifier, task, train, make_context):
    method = make_method("features-lr", classifier=classifier).fit(train, make_context())
    prediction = method.predict(task.test.texts)
    assert prediction.scores.shape == (len(task.test), task.n_labels)
    np.testing.assert_array_equal(prediction.scores.argmax(axis=1), prediction.labels)
    cost = method.training_cost()
    assert cost.trainable_params > 0 and cost.artifact_bytes > 0
    assert cost.train_examples == len(train)


def test_unknown_names_are_refused_with_the_known_ones():
    with pytest.raises(PromptworthError, match=r"logistic-regression.*knn"):
        make_method("features-lr", classifier="xgboost")
    with pytest.raises(PromptworthError, match="encoder, causal-lm"):
        make_method("features-lr", backbone="seq2seq")
    with pytest.raises(PromptworthError, match="mean, last"):
        make_method("features-lr", pooling="max")


def test_normalised_vectors_ignore_their_length(train, make_context):
    method = make_method("features-lr").fit(train, make_context())
    x, _ = method.features(train.texts)
    np.testing.assert_array_equal(method.classifier_.predict(x), method.classifier_.predict(7 * x))
    raw = make_method("features-lr", normalize=False).fit(train, make_context())
    assert "normalizer" not in raw.classifier_.named_steps


def test_learned_arrays_count_trees_and_memorised_vectors(train, make_context):
    knn = make_method("features-lr", classifier="knn").fit(train, make_context())
    x, _ = knn.features(train.texts)
    assert sum(a.size for a in learned_arrays(knn.classifier_)) == x.size
    lr = make_method("features-lr").fit(train, make_context())
    n_labels = len(set(train.labels.tolist()))
    assert sum(a.size for a in learned_arrays(lr.classifier_)) == (x.shape[1] + 1) * n_labels
    forest = make_method("features-lr", classifier="random-forest").fit(train, make_context())
    assert sum(a.size for a in learned_arrays(forest.classifier_)) > 100 * n_labels


def test_label_scores_put_unseen_labels_at_minus_infinity(task, make_context):
    two_labels = task.train.subset(np.flatnonzero(task.train.labels < 2))
    method = make_method("features-lr").fit(two_labels, make_context())
    scores = method.predict(task.test.texts).scores
    assert np.isneginf(scores[:, 2]).all() and np.isfinite(scores[:, :2]).all()
    x, _ = method.features(task.test.texts)
    probs = np.exp(scores[:, :2])
    np.testing.assert_allclose(probs, method.classifier_.predict_proba(x))


def test_margin_classifiers_score_two_classes_by_their_margin(task, make_context):
    two_labels = task.train.subset(np.flatnonzero(task.train.labels < 2))
    method = make_method("features-lr", classifier="linear-svc").fit(two_labels, make_context())
    x, _ = method.features(task.test.texts)
    scores = label_scores(method.classifier_, x, task.n_labels)
    np.testing.assert_allclose(scores[:, 1] - scores[:, 0], method.classifier_.decision_function(x))
    np.testing.assert_array_equal(scores[:, :2].argmax(axis=1), method.classifier_.predict(x))
