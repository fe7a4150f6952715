"""features-lr (and head): backbone choice, named classifiers, L2 normalisation, learned-size
accounting, and the L2 strength chosen per training subset by cross-validation."""

from __future__ import annotations

import numpy as np
import pytest

from promptworth.errors import PromptworthError
from promptworth.methods import make_method
from promptworth.methods.base import count_params
from promptworth.methods.features_lr import CLASSIFIERS, CV_SCORING, learned_arrays
from promptworth.methods.frozen_features import C_GRID, PRIOR_C, cv_splits, label_scores
from promptworth.run import runner


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
    np.testing.assert_allclose(probs, method.classifier_.predict_proba(x), rtol=1e-6)


def test_margin_classifiers_score_two_classes_by_their_margin(task, make_context):
    two_labels = task.train.subset(np.flatnonzero(task.train.labels < 2))
    method = make_method("features-lr", classifier="linear-svc").fit(two_labels, make_context())
    x, _ = method.features(task.test.texts)
    scores = label_scores(method.classifier_, x, task.n_labels)
    np.testing.assert_allclose(scores[:, 1] - scores[:, 0], method.classifier_.decision_function(x))
    np.testing.assert_array_equal(scores[:, :2].argmax(axis=1), method.classifier_.predict(x))


def clusters(seed: int, counts: list[int], noise: float, dim: int = 32):
    """Vectors around one random centre per class: separable when the noise is small."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(counts), dim))
    labels = np.repeat(np.arange(len(counts)), counts)
    return centres[labels] + noise * rng.normal(size=(len(labels), dim)), labels, centres


def test_cross_validation_regularises_a_tiny_noisy_set_more_than_a_large_clean_one():
    method = make_method("features-lr")
    noisy = np.random.default_rng(0).normal(size=(10, 32))  # labels unrelated to the vectors
    tiny = method.regularisation(noisy, np.repeat(np.arange(5), 2), seed=0)
    x, labels, _ = clusters(0, [40] * 5, noise=0.5)
    large = method.regularisation(x, labels, seed=0)
    assert tiny["C"] <= 1 and large["C"] >= 100
    assert tiny["C_rule"].startswith("2-fold") and large["C_rule"].startswith("5-fold")
    assert set(CV_SCORING) == {"logistic-regression", "linear-svc", "ridge"}
    for classifier in ("linear-svc", "ridge"):  # no probabilities: compared by accuracy
        chosen = make_method("features-lr", classifier=classifier).regularisation(x, labels, 0)
        assert chosen["C"] in C_GRID and "accuracy" in chosen["C_rule"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_five_classes_from_ten_uneven_examples_no_longer_collapse(seed):
    """The collapse a fixed C causes: 5 classes, 10 examples, fixed C = 1 on unit vectors predicts
    the largest class almost everywhere; the cross-validated C separates the classes."""
    x, labels, centres = clusters(seed, [4, 2, 2, 1, 1], noise=1.0)
    test_labels = np.repeat(np.arange(5), 20)
    test = centres[test_labels] + np.random.default_rng(99).normal(size=(100, 32))
    method = make_method("features-lr")
    fixed = method.make_classifier(seed, 1.0).fit(x, labels).predict(test)
    assert len(set(fixed.tolist())) <= 3  # two classes never predicted
    chosen = method.regularisation(x, labels, seed)
    cv = method.make_classifier(seed, chosen["C"]).fit(x, labels).predict(test)
    assert set(cv.tolist()) == set(range(5)) and (cv == test_labels).mean() > 0.75


def test_cv_splits_keep_single_example_labels_in_every_training_fold():
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 2])
    splits = cv_splits(labels, seed=0)
    assert len(splits) == 3  # min(5, the smallest count among labels with two examples)
    held = np.concatenate([test for _, test in splits])
    assert sorted(held) == list(range(7))  # every row but the single label-2 row, once
    assert all(7 in train and not set(train) & set(test) for train, test in splits)
    assert cv_splits(np.arange(4), seed=0) == []
    assert make_method("head").regularisation(np.eye(4), np.arange(4), seed=0) == {
        "C": PRIOR_C,
        "C_rule": "prior: no label has two examples to hold out",
    }


@pytest.mark.parametrize("name", ["features-lr", "head"])
def test_chosen_c_is_recorded_in_the_run_result(name, task, train, make_context):
    result = runner.execute(make_method(name), train, task.test, make_context())
    assert result["extra"]["C"] in C_GRID
    assert result["extra"]["C_rule"] == "5-fold cross-validation, neg_log_loss"
    given = runner.execute(make_method(name, C=0.5), train, task.test, make_context())
    assert given["extra"] == {"C": 0.5, "C_rule": "given"}
    knn = make_method("features-lr", classifier="knn").fit(train, make_context())
    assert knn.predict(task.test.texts).extra == {}  # no C to choose


def test_a_forest_fit_again_on_the_same_arrays_is_the_same_forest():
    """What features-lr's saved forest rests on: scikit-learn's forest with one seed and one job
    grows the same trees from the same arrays."""
    rng = np.random.default_rng(0)
    x, y, test = rng.normal(size=(40, 8)), np.arange(40) % 4, rng.normal(size=(20, 8))
    first, second = (CLASSIFIERS["random-forest"](None, 3).fit(x, y) for _ in range(2))
    np.testing.assert_array_equal(first.predict_proba(test), second.predict_proba(test))
    other = CLASSIFIERS["random-forest"](None, 4).fit(x, y)
    assert not np.array_equal(first.predict_proba(test), other.predict_proba(test))


def test_a_forest_that_fits_again_differently_is_refused(task, make_context):
    """The saved probabilities on the training rows are the check that the refit is the model
    that was fit: here they are another model's."""
    train = task.train.subset(range(24))
    forest = make_method("features-lr", classifier="random-forest").fit(train, make_context())
    state = forest.state()
    state.tensors["train_probs"] = state.tensors["train_probs"][::-1]
    fresh = make_method("features-lr", classifier="random-forest")
    with pytest.raises(PromptworthError, match=r"training rows .* fit the model again"):
        fresh.restore(state, make_context())
