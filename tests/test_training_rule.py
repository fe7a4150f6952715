"""The shared training rule (methods/training.py): dev split, learning-rate schedule, and how the
returned weights are chosen (dev checkpoints, k-fold selection, the untrained start, the grid).

A toy learner (a linear classifier on fixed features, zero at the start) makes the rule's
decisions visible and fast; tests/test_recipes.py runs the same rule through real methods.
"""

import math
import time
from dataclasses import fields, replace

import numpy as np
import pytest
import torch

from promptworth.backbones.device import Placement
from promptworth.errors import PromptworthError
from promptworth.methods import REGISTRY, method_class
from promptworth.methods.training import (
    DevScore,
    Learner,
    Schedule,
    TrainStats,
    dev_score,
    fit_selected,
    lr_factor,
    split_dev,
    train,
    tuning_grid,
    warmup_steps,
)

CPU = Placement("cpu", "float32")


def test_dev_split_is_a_fraction_above_min_dev_and_capped_at_max_dev():
    rule = Schedule(learning_rate=1e-3, dev_fraction=0.2, min_dev=8, max_dev=64)
    fit, dev = split_dev(30, rule, seed=0)
    assert len(dev) == 0 and sorted(fit) == list(range(30))  # 6 < min_dev: no dev split
    fit, dev = split_dev(100, rule, seed=0)
    assert len(dev) == 20 and len(fit) == 80
    fit, dev = split_dev(1000, rule, seed=0)
    assert len(dev) == 64 and len(fit) == 936  # capped; the rest trains
    assert not set(fit) & set(dev)
    uncapped = Schedule(learning_rate=1e-3, dev_fraction=0.2, min_dev=8)
    assert len(split_dev(1000, uncapped, seed=0)[1]) == 200
    again, other_seed = split_dev(1000, rule, seed=0)[1], split_dev(1000, rule, seed=1)[1]
    np.testing.assert_array_equal(again, dev)
    assert set(other_seed) != set(dev)


def test_lr_factor_warms_up_then_decays_linearly_to_zero():
    # 20 planned steps, 2 of warm-up: 1/3, 2/3, then 1 at step 3 down to 1/18 at step 20
    factors = [lr_factor(step, 20, 2) for step in range(1, 21)]
    assert factors[:3] == pytest.approx([1 / 3, 2 / 3, 1])
    assert factors[-1] == pytest.approx(1 / 18)
    assert np.allclose(np.diff(factors[2:]), -1 / 18)  # linear, reaching 0 one step after
    assert [lr_factor(s, 5, 0) for s in range(1, 6)] == pytest.approx([1, 0.8, 0.6, 0.4, 0.2])


def test_a_one_step_run_takes_its_step_at_the_full_rate():
    # 6 % of one step rounds up to a whole step; warm-up then leaves none to decay over
    schedule = Schedule(learning_rate=1e-3, warmup=0.06)
    assert warmup_steps(1, schedule) == 0 and warmup_steps(20, schedule) == 2
    assert [lr_factor(step, 1, 0) for step in (1, 2)] == [1, 0]


class Toy:
    """A linear classifier on fixed random features whose weights start at zero (every label
    scores the same: accuracy is the share of label 0). `sign=-1` trains it to get worse."""

    def __init__(self, n: int = 40, sign: float = 1.0, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.labels = np.arange(n) % 3
        centres = rng.normal(size=(3, 6))
        self.x = torch.tensor(centres[self.labels] + 0.3 * rng.normal(size=(n, 6)))
        self.weight = torch.zeros(6, 3, dtype=torch.float64, requires_grad=True)
        self.sign, self.batches = sign, []

    def learner(self, stage=None) -> Learner:
        def step_loss(rows):
            self.batches.append(set(rows.tolist()))
            gold = torch.tensor(self.labels[rows])
            loss = torch.nn.functional.cross_entropy(self.x[rows] @ self.weight, gold)
            return self.sign * loss, len(rows)

        def scores(rows):
            return (self.x[rows] @ self.weight).detach().numpy()

        return Learner([self.weight], step_loss, scores, self.labels, CPU, stage)


def test_train_applies_the_schedule_to_every_step():
    """A loss with a constant gradient makes each Adam step move the weight by exactly its
    learning rate, so the weight's path is the schedule."""
    weight = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    path = []

    def step_loss(rows):
        path.append(weight.item())
        return weight.sum(), 1

    learner = Learner([weight], step_loss, lambda rows: None, np.zeros(4, dtype=int), CPU)
    schedule = Schedule(learning_rate=0.1, batch_size=1, max_steps=10, warmup=0.2)
    trained = train(learner, np.arange(4), np.arange(0), schedule, seed=0)
    assert trained.stats.steps == trained.step == 10
    steps = -np.diff([*path, weight.item()])
    expected = [0.1 * lr_factor(step, 10, 2) for step in range(1, 11)]
    np.testing.assert_allclose(steps, expected, rtol=1e-6)


def test_dev_score_ranks_accuracy_then_loss_and_fails_nan():
    scores = np.log([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1]])
    score = dev_score(scores, np.array([0, 2, 1]))
    assert score.accuracy == pytest.approx(2 / 3)
    assert score.loss == pytest.approx(-(np.log(0.7) + np.log(0.6) + np.log(0.4)) / 3)
    assert DevScore(0.5, 9.0).beats(DevScore(0.4, 0.1))  # accuracy first
    assert DevScore(0.5, 0.9).beats(DevScore(0.5, 1.0)) and not DevScore(0.5, 1).beats(
        DevScore(0.5, 1)
    )
    broken = dev_score(np.array([[np.nan, 0, 0], [0, 1, 0]]), np.array([0, 1]))
    assert broken == DevScore(0.5, math.inf)


def test_dev_selection_keeps_the_start_when_training_only_hurts():
    toy = Toy(sign=-1.0)
    schedule = Schedule(learning_rate=0.5, batch_size=4, max_steps=30)
    selection = fit_selected(toy.learner(), np.arange(30), np.arange(30, 40), [schedule], True, 0)
    assert selection.rule == "dev" and selection.step == 0
    assert selection.stats.steps == 30 and selection.trained.accuracy < selection.start.accuracy
    assert torch.equal(toy.weight, torch.zeros(6, 3, dtype=torch.float64))  # exactly the start
    assert selection.extra()["selected_step"] == 0


def overconfident_learner() -> tuple[Learner, torch.Tensor]:
    """Untrained, every label scores the same (the argmax is label 0); any training makes it
    predict label 0 with near certainty: the same accuracy as the start, a far higher loss."""
    weight = torch.zeros(1, dtype=torch.float64, requires_grad=True)

    def scores(rows):
        if weight.item() == 0:
            return np.zeros((len(rows), 3))
        return np.tile([10.0, -10.0, -10.0], (len(rows), 1))

    labels = np.arange(12) % 3
    return Learner([weight], lambda rows: (weight.sum(), len(rows)), scores, labels, CPU), weight


@pytest.mark.parametrize("dev_rows", [np.arange(8, 12), np.arange(0)], ids=["dev", "cv"])
def test_an_accuracy_tie_with_the_start_returns_the_trained_weights(dev_rows):
    """The start is kept only when it is strictly more accurate: a tie on a small held-out set
    (20 dev rows at 100 labels) is no evidence that training hurt, even at a lower loss."""
    learner, weight = overconfident_learner()
    fit_rows = np.arange(8) if len(dev_rows) else np.arange(12)
    schedule = Schedule(learning_rate=0.1, batch_size=4, max_steps=4)
    selection = fit_selected(learner, fit_rows, dev_rows, [schedule], True, 0)
    assert selection.trained.accuracy == selection.start.accuracy
    assert selection.trained.loss > selection.start.loss and selection.step > 0
    assert weight.item() != 0


def test_dev_selection_keeps_the_best_trained_checkpoint():
    toy = Toy()
    schedule = Schedule(learning_rate=0.5, batch_size=4, max_steps=30)
    selection = fit_selected(toy.learner(), np.arange(30), np.arange(30, 40), [schedule], True, 0)
    assert selection.step in (10, 20, 30) and selection.trained.beats(selection.start)
    assert dev_score(toy.learner().scores(np.arange(30, 40)), toy.labels[30:]) == selection.trained


def test_dev_selection_records_the_dev_curve_it_chose_from():
    """Every evaluation's (step, accuracy) goes to the run's extra: how many steps the run
    needed is read from the store, not from a log."""
    toy = Toy()
    schedule = Schedule(learning_rate=0.5, batch_size=4, max_steps=30, patience=100)
    selection = fit_selected(toy.learner(), np.arange(30), np.arange(30, 40), [schedule], True, 0)
    curve = selection.extra()["dev_curve"]
    assert [step for step, _ in curve] == [10, 20, 30]
    assert selection.trained.accuracy == max(accuracy for _, accuracy in curve)
    assert [selection.step, selection.trained.accuracy] in curve  # (ties go by the dev loss)


def test_long_runs_are_evaluated_at_most_ten_times_so_patience_scales_with_them():
    toy = Toy(n=200)
    evaluated = []
    learner = toy.learner()
    score = learner.score
    learner.score = lambda rows: evaluated.append(1) or score(rows)
    short = Schedule(learning_rate=0.5, batch_size=4, max_steps=40, patience=100)
    train(learner, np.arange(160), np.arange(160, 200), short, seed=0)
    assert len(evaluated) == 4  # every eval_every = 10 steps
    evaluated.clear()
    long = replace(short, max_steps=300)  # 300 / 10 evaluations: every 30 steps
    trained = train(learner, np.arange(160), np.arange(160, 200), long, seed=0)
    assert len(evaluated) == 10 and trained.step % 30 == 0


def test_cross_validation_trains_each_fold_without_it_then_all_rows():
    toy = Toy(n=10)
    schedule = Schedule(learning_rate=0.5, batch_size=4, max_steps=5)
    selection = fit_selected(toy.learner(), np.arange(10), np.arange(0), [schedule], True, 0)
    assert (
        selection.rule == "cv" and selection.step == 5 and selection.trained.beats(selection.start)
    )
    runs = [set().union(*toy.batches[i : i + 5]) for i in range(0, 25, 5)]
    held_out = [set(range(10)) - rows for rows in runs[:4]]
    assert sorted(len(fold) for fold in held_out) == [2, 2, 3, 3]  # k = min(4, n) folds
    assert set().union(*held_out) == set(range(10)) and runs[4] == set(range(10))
    assert selection.stats.steps == 5 * 5  # four folds and the final run, all charged


def test_cross_validation_returns_the_start_when_training_only_hurts():
    toy = Toy(n=10, sign=-1.0)
    schedule = Schedule(learning_rate=0.5, batch_size=4, max_steps=5)
    selection = fit_selected(toy.learner(), np.arange(10), np.arange(0), [schedule], True, 0)
    assert selection.rule == "cv" and selection.step == 0
    assert selection.stats.steps == 4 * 5  # the folds only: nothing trains on all rows
    assert torch.equal(toy.weight, torch.zeros(6, 3, dtype=torch.float64))


def test_without_a_candidate_to_compare_the_budget_is_the_rule():
    toy = Toy(n=10)
    schedule = Schedule(learning_rate=0.5, batch_size=4, max_steps=5)
    selection = fit_selected(toy.learner(), np.arange(10), np.arange(0), [schedule], False, 0)
    assert (selection.rule, selection.step, selection.stats.steps) == ("budget", 5, 5)
    no_folds = Schedule(learning_rate=0.5, batch_size=4, max_steps=5, cv_folds=0)
    selection = fit_selected(Toy(n=10).learner(), np.arange(10), np.arange(0), [no_folds], True, 0)
    assert selection.rule == "budget"


def test_tuning_records_the_grid_and_returns_the_best_rate():
    toy = Toy(n=10)
    base = Schedule(learning_rate=1.0, batch_size=4, max_steps=5)
    grid = [Schedule(learning_rate=lr, batch_size=4, max_steps=5) for lr in (1e-4, 1e-2, 0.5)]
    selection = fit_selected(toy.learner(), np.arange(10), np.arange(0), grid, True, 0)
    tuned = selection.extra()["tuned"]
    assert [row["learning_rate"] for row in tuned["grid"]] == [1e-4, 1e-2, 0.5]
    best = max(tuned["grid"], key=lambda row: (row["accuracy"], -row["loss"]))
    assert tuned["learning_rate"] == best["learning_rate"] == 0.5  # the fastest learns most
    assert selection.stats.steps == 3 * 4 * 5 + 5  # every fold of every rate, then the final
    assert base.learning_rate not in [row["learning_rate"] for row in tuned["grid"]]


def test_tuning_grids_are_the_methods_learning_rates():
    base = Schedule(learning_rate=1e-3, batch_size=8)
    lora = method_class("prompt-lora").learning_rates
    assert tuning_grid(base, lora, "none") == [base]
    quick = tuning_grid(base, lora, "quick")
    assert [s.learning_rate for s in quick] == list(lora)
    assert {s.batch_size for s in quick} == {8}
    full = tuning_grid(base, method_class("ia3").learning_rates, "full")
    assert len(full) == 9 and {s.batch_size for s in full} == {4, 8, 16}


def test_every_tunable_method_declares_its_learning_rates():
    for name in REGISTRY:
        cls = method_class(name)
        if "tune" in {f.name for f in fields(cls.Config)}:
            rates = cls.learning_rates
            assert len(rates) >= 2 and list(rates) == sorted(rates) and min(rates) > 0, name


def test_tuning_without_held_out_rows_is_refused():
    grid = [Schedule(learning_rate=lr, cv_folds=0) for lr in (0.1, 0.2)]
    with pytest.raises(PromptworthError, match="tune needs held-out rows"):
        fit_selected(Toy(n=10).learner(), np.arange(10), np.arange(0), grid, True, 0)


def test_a_second_stage_is_kept_only_where_it_scores_better():
    """A stage that reverses the classifier is dropped, on dev and in the folds; one that trains
    further stays."""
    schedule = Schedule(learning_rate=0.5, batch_size=4, max_steps=10)

    def select(n: int, n_dev: int, helps: bool):
        toy = Toy(n=n)

        def stage(rows):
            if helps:
                return train(
                    toy.learner(), rows, rows[:0], replace(schedule, max_steps=20), 0
                ).stats
            with torch.no_grad():
                toy.weight.neg_()
            return TrainStats()

        fit, dev = np.arange(n - n_dev), np.arange(n - n_dev, n)
        return fit_selected(toy.learner(stage), fit, dev, [schedule], True, 0)

    assert select(40, 10, helps=False).staged is False
    assert select(40, 10, helps=True).staged is True
    assert select(10, 0, helps=False).staged is False
    assert select(10, 0, helps=True).extra()["stage_kept"] is True


def test_phase_seconds_go_to_the_phase_that_spent_them():
    """The speed profile reads where a run's time went: a slow loss is forward time, slow dev
    scoring is scoring time."""
    toy = Toy()
    learner = toy.learner()
    loss, scores = learner.step_loss, learner.scores
    learner.step_loss = lambda rows: (time.sleep(0.01), loss(rows))[1]
    learner.scores = lambda rows: (time.sleep(0.02), scores(rows))[1]
    schedule = Schedule(learning_rate=0.5, batch_size=4, max_steps=20, patience=100)
    selection = fit_selected(learner, np.arange(30), np.arange(30, 40), [schedule], False, 0)
    seconds = selection.stats.seconds  # lower bounds only: a loaded machine makes all slower
    assert seconds.forward >= 20 * 0.01
    assert seconds.scoring >= 2 * 0.02  # evaluated at steps 10 and 20
    assert seconds.backward > 0 and seconds.optimizer > 0
