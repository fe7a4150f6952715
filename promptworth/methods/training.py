"""The training rule shared by every gradient-trained method, and how its result is chosen.

Rule (docs/concepts/training-recipes.md#the-training-rule): AdamW with a linear warm-up over the
first `warmup` fraction of the planned steps, then linear decay towards zero at the last; `epochs`
passes over the training rows, capped at `max_steps` optimizer steps. What is returned is chosen
on held-out labelled rows taken from the *training subset* (never from test), by rank-
classification accuracy, ties broken by the cross-entropy of the label scores (`DevScore`; a
learner of a generation task scores its held-out rows itself, `Learner.dev`):

- a **dev split** when the subset is large enough (`dev_fraction` of it, at least `min_dev`, at
  most `max_dev` rows; the rest trains): the dev score is measured every `eval_every` steps, the
  best checkpoint is kept, training stops after `patience` evaluations without a better one;
- below that, **k-fold cross-validation** (k = min(`cv_folds`, n)) when there is something to
  choose: each fold trains on the other rows and is scored on its own, the pooled scores decide,
  and the choice is then trained on all rows;
- with nothing to choose, or `cv_folds` = 0 at those sizes, the step budget is the whole rule.

Methods that start from the LM's own prompt (`keep_start`) also enter the untrained start
(step 0) as a candidate, so training can not leave them below where they began by accident; it
is returned only when strictly more accurate than training (`start_wins`).
`tune` adds a grid of learning rates (and batch sizes) to the candidates (`tuning_grid`).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from promptworth.errors import PromptworthError
from promptworth.methods.base import at_least, one_of, positive, require

TUNE = ("none", "quick", "full")

EVALS_PER_RUN = 10  # dev evaluations of a long run: `eval_interval`
FULL_BATCH_SIZES = (4, 8, 16)  # LM-BFF's {2, 4, 8} at 16 examples per class, doubled for CPUs


@dataclass(frozen=True)
class RecipeConfig:
    """Parameters of the training rule every gradient-trained method's Config extends."""

    learning_rate: float = 1e-3  # AdamW's peak rate
    batch_size: int = 8  # examples per optimizer step
    epochs: float = 10.0  # passes over the training rows, before the step cap
    max_steps: int = 150  # optimizer-step cap
    warmup: float = 0.06  # linear warm-up over this fraction of the planned steps, then decay
    cv_folds: int = 4  # k-fold selection below a dev split's size; 0 = train the budget only
    tune: str = "none"  # learning-rate search: "none", "quick" (lr grid) or "full" (x batch)

    def __post_init__(self) -> None:
        positive(self, "learning_rate", "epochs")
        at_least(self, 1, "batch_size", "max_steps")
        one_of(self, "tune", TUNE)
        require(self, "warmup", 0 <= self.warmup < 1, "a fraction in [0, 1)")
        require(self, "cv_folds", self.cv_folds in (0,) or self.cv_folds >= 2, "0 (none) or >= 2")


@dataclass(frozen=True)
class Schedule:
    learning_rate: float
    # The recipe's defaults are RecipeConfig's, declared there once.
    batch_size: int = RecipeConfig.batch_size
    epochs: float = RecipeConfig.epochs
    max_steps: int = RecipeConfig.max_steps
    warmup: float = RecipeConfig.warmup  # fraction of the planned steps (RoBERTa's, T-Few's 6 %)
    eval_every: int = 10
    patience: int = 3
    dev_fraction: float = 0.2
    min_dev: int = 8
    max_dev: int | None = None  # None: no cap
    cv_folds: int = RecipeConfig.cv_folds  # below min_dev: k-fold, k = min(cv_folds, n); 0 = none
    weight_decay: float = 0.0

    @classmethod
    def of(cls, config) -> Schedule:
        """The schedule a method's config asks for: its fields of the same name."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in asdict(config).items() if k in names})


def tuning_grid(schedule: Schedule, learning_rates: tuple[float, ...], tune: str) -> list[Schedule]:
    """The schedules `tune` compares: just `schedule` for "none"; "quick" tries the method's
    `learning_rates` at its batch size, "full" crosses them with FULL_BATCH_SIZES."""
    if tune == "none":
        return [schedule]
    batches = FULL_BATCH_SIZES if tune == "full" else (schedule.batch_size,)
    return [
        replace(schedule, learning_rate=lr, batch_size=b) for lr in learning_rates for b in batches
    ]


@dataclass(frozen=True)
class DevScore:
    """Held-out rank-classification accuracy and the cross-entropy of the label scores."""

    accuracy: float
    loss: float

    def beats(self, other: DevScore | None) -> bool:
        """Strictly better: higher accuracy, or equal accuracy and lower loss."""
        return other is None or (self.accuracy, -self.loss) > (other.accuracy, -other.loss)


def dev_score(scores: np.ndarray, labels: np.ndarray) -> DevScore:
    """`scores` [n, n_labels] are label scores whose softmax is the model's distribution. A row
    with a NaN score (weights that diverged) counts as wrong, and makes the loss infinite."""
    from scipy.special import log_softmax

    scores = np.asarray(scores, dtype=np.float64)
    broken = np.isnan(scores).any(axis=1)
    correct = (scores.argmax(axis=1) == labels) & ~broken
    if broken.any():
        return DevScore(float(correct.mean()), math.inf)
    logp = log_softmax(scores, axis=1)
    return DevScore(float(correct.mean()), float(-logp[np.arange(len(labels)), labels].mean()))


@dataclass
class PhaseSeconds:
    """Wall-clock seconds of each part of training, for the speed profile (scripts/benchmark.py):
    the loss (forward), its gradients (backward), the optimizer and scheduler, dev scoring."""

    forward: float = 0.0
    backward: float = 0.0
    optimizer: float = 0.0
    scoring: float = 0.0

    def __iadd__(self, other: PhaseSeconds) -> PhaseSeconds:
        for name in ("forward", "backward", "optimizer", "scoring"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self


@dataclass
class TrainStats:
    steps: int = 0
    examples: int = 0
    tokens: int = 0
    stopped_early: bool = False
    seconds: PhaseSeconds = field(default_factory=PhaseSeconds)

    def __iadd__(self, other: TrainStats) -> TrainStats:
        self.steps += other.steps
        self.examples += other.examples
        self.tokens += other.tokens
        self.stopped_early |= other.stopped_early
        self.seconds += other.seconds
        return self


@dataclass
class Learner:
    """A method's model as the rule sees it: its trainable tensors (whose values are its state),
    a loss on training rows, label scores for rows, and each row's gold label (-1 where a row
    has none, e.g. a teacher's soft label: it is never held out or scored)."""

    params: list
    step_loss: Callable[[np.ndarray], tuple]  # rows -> (loss tensor, non-padding tokens)
    scores: Callable[[np.ndarray], np.ndarray] | None  # rows -> [len(rows), n_labels], eval mode
    labels: np.ndarray
    placement: Any
    # A second stage run on the same rows after training (dpo's preference stage); its result
    # is a candidate of its own, so it is kept only where it scores better.
    stage: Callable[[np.ndarray], TrainStats] | None = None
    # A learner without labels (generation) scores held-out rows itself: rows -> DevScore
    # (e.g. the reference tokens' accuracy and cross-entropy under teacher forcing); every row
    # can then be held out.
    dev: Callable[[np.ndarray], DevScore] | None = None
    # With `dev`: only rows below this index may be held out (None: every row); the rows after
    # them are trained on, never scored (a teacher's answers, whose targets are not gold).
    gold_rows: int | None = None

    def snapshot(self) -> list:
        return [p.detach().clone() for p in self.params]

    def restore(self, state: list) -> None:
        import torch

        with torch.no_grad():
            for param, saved in zip(self.params, state):
                param.copy_(saved)

    def label_scores(self, rows: np.ndarray) -> np.ndarray:
        with autocast_for(self.placement):
            return self.scores(rows)

    def score(self, rows: np.ndarray) -> DevScore:
        if self.dev is not None:
            with autocast_for(self.placement):
                return self.dev(rows)
        return dev_score(self.label_scores(rows), self.labels[rows])

    def scoreable(self, rows: np.ndarray) -> np.ndarray:
        """The rows that can be held out and scored: labelled ones, or with `dev` all of them
        (below `gold_rows` when set)."""
        if self.dev is None:
            return rows[self.labels[rows] >= 0]
        return rows if self.gold_rows is None else rows[rows < self.gold_rows]

    def held_out(self, rows: np.ndarray):
        """What scoring a fold gives, for `pooled`: label scores, or (rows, DevScore)."""
        return (len(rows), self.score(rows)) if self.dev is not None else self.label_scores(rows)

    def pooled(self, parts: list, rows: np.ndarray) -> DevScore:
        """The folds' held-out results as one score over `rows` (their concatenation)."""
        if self.dev is None:
            return dev_score(np.concatenate(parts), self.labels[rows])
        n = sum(size for size, _ in parts)
        return DevScore(
            sum(size * s.accuracy for size, s in parts) / n,
            sum(size * s.loss for size, s in parts) / n,
        )


@dataclass
class Trained:
    stats: TrainStats
    step: int  # optimizer steps behind the weights left in the learner
    score: DevScore | None  # their dev score, when there were dev rows
    # (step, dev accuracy) at every evaluation: how far the run was from converging
    curve: list[tuple[int, float]] = field(default_factory=list)


def split_dev(n: int, schedule: Schedule, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit, dev) indices into the training subset; dev is empty when the subset is too small."""
    order = np.random.default_rng(seed).permutation(n)
    n_dev = int(n * schedule.dev_fraction)
    if schedule.max_dev is not None:
        n_dev = min(n_dev, schedule.max_dev)
    if n_dev < schedule.min_dev:
        return order, order[:0]
    return order[n_dev:], order[:n_dev]


def planned_steps(n_fit: int, schedule: Schedule) -> int:
    return max(1, min(schedule.max_steps, math.ceil(schedule.epochs * n_fit / schedule.batch_size)))


def eval_interval(total: int, schedule: Schedule) -> int:
    """Steps between dev evaluations: `eval_every`, widened so that a run of `total` steps is
    evaluated at most EVALS_PER_RUN times. Patience then spans the same share of a long run as of
    a short one (3 evaluations = 30 % of it), rather than stopping a 1,000-step run after 30
    steps of a noisy dev score."""
    return max(schedule.eval_every, math.ceil(total / EVALS_PER_RUN))


def warmup_steps(total: int, schedule: Schedule) -> int:
    """At least one step after warm-up, so the decay is defined even for a 1-step run."""
    return min(math.ceil(schedule.warmup * total), total - 1)


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Learning-rate multiplier at optimizer step `step` (1-based) of `total`: linear warm-up
    reaching 1 at step `warmup` + 1, then linear decay reaching 1/(total - warmup) at the last
    step (zero just after it), so no step is spent at a zero rate."""
    if step <= warmup:
        return step / (warmup + 1)
    return (total - step + 1) / (total - warmup)


def lap(start: float, seconds: PhaseSeconds, phase: str) -> float:
    """Add the time since `start` to `phase`; return now, the next phase's start."""
    now = time.perf_counter()
    setattr(seconds, phase, getattr(seconds, phase) + now - start)
    return now


def autocast_for(placement):
    """bf16/fp16 autocast over fp32 master weights where the placement asks for it."""
    import torch

    if placement.dtype == "float32":
        return contextlib.nullcontext()
    device_type = "cuda" if placement.device.startswith("cuda") else "cpu"
    return torch.autocast(device_type, dtype=getattr(torch, placement.dtype))


def train(
    learner: Learner,
    rows: np.ndarray,
    dev_rows: np.ndarray,
    schedule: Schedule,
    seed: int,
    say: Callable[[str], None] = lambda _: None,
) -> Trained:
    """AdamW over `rows` under the schedule, from the learner's current weights. With dev rows,
    the weights left in the learner are the best-scoring checkpoint (of those trained)."""
    import torch

    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(
        learner.params, lr=schedule.learning_rate, weight_decay=schedule.weight_decay
    )
    total = planned_steps(len(rows), schedule)
    warmup, interval = warmup_steps(total, schedule), eval_interval(total, schedule)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda done: lr_factor(done + 1, total, warmup)
    )
    rng = np.random.default_rng(seed)
    stats = TrainStats()
    best_state, best, best_step, evals_without_gain = None, None, 0, 0
    curve: list[tuple[int, float]] = []
    order, cursor = rows[rng.permutation(len(rows))], 0
    for step in range(1, total + 1):
        if cursor >= len(rows):
            order, cursor = rows[rng.permutation(len(rows))], 0
        batch = order[cursor : cursor + schedule.batch_size]
        cursor += schedule.batch_size
        clock = time.perf_counter()
        with autocast_for(learner.placement):
            loss, n_tokens = learner.step_loss(batch)
        clock = lap(clock, stats.seconds, "forward")
        loss.backward()
        clock = lap(clock, stats.seconds, "backward")
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        lap(clock, stats.seconds, "optimizer")
        stats.steps, stats.examples, stats.tokens = (
            step,
            stats.examples + len(batch),
            stats.tokens + n_tokens,
        )
        if not len(dev_rows) or (step % interval and step != total):
            continue
        clock = time.perf_counter()
        current = learner.score(dev_rows)
        lap(clock, stats.seconds, "scoring")
        curve.append((step, current.accuracy))
        say(f"step {step}/{total} loss {loss.item():.3f} dev accuracy {current.accuracy:.3f}")
        if current.beats(best):
            best, best_step, evals_without_gain = current, step, 0
            best_state = learner.snapshot()
        else:
            evals_without_gain += 1
            if evals_without_gain >= schedule.patience:
                stats.stopped_early = True
                break
    if not len(dev_rows):
        return Trained(stats, stats.steps, None)
    learner.restore(best_state)
    return Trained(stats, best_step, best, curve)


@dataclass
class Candidate:
    """A trained result the rule can return: the schedule, with or without the second stage,
    its held-out score and the optimizer steps behind it (0 where only counted by the folds)."""

    schedule: Schedule
    staged: bool
    score: DevScore
    step: int = 0
    curve: list[tuple[int, float]] = field(default_factory=list)  # its dev curve (Trained)

    def row(self) -> dict:
        s = self.schedule
        return {
            "learning_rate": s.learning_rate,
            "batch_size": s.batch_size,
            "staged": self.staged,
            "accuracy": self.score.accuracy,
            "loss": self.score.loss if math.isfinite(self.score.loss) else None,  # JSON-safe
        }


@dataclass
class Selection:
    """What the rule returned and what it cost."""

    stats: TrainStats  # every step taken: folds, grid and final training
    rule: str  # "dev", "cv" or "budget"
    step: int  # optimizer steps behind the returned weights; 0 = the untrained start
    staged: bool | None  # the learner's second stage is in the returned weights (None: none)
    start: DevScore | None = None  # held-out score of the untrained start (keep_start)
    trained: DevScore | None = None  # held-out score of the best trained candidate
    grid: list[Candidate] = field(default_factory=list)  # every candidate, when tuning
    curve: list[tuple[int, float]] = field(default_factory=list)  # the best candidate's dev curve

    def extra(self) -> dict:
        """For the run's result (Prediction.extra)."""
        out: dict[str, Any] = {"selection": self.rule, "selected_step": self.step}
        if self.staged is not None:
            out["stage_kept"] = self.staged
        if self.start is not None:
            out["start_accuracy"] = self.start.accuracy
        if self.trained is not None:
            out["trained_accuracy"] = self.trained.accuracy
        if self.curve:
            out["dev_curve"] = [[step, accuracy] for step, accuracy in self.curve]
        if self.grid:
            best = max_candidate(self.grid)
            out["tuned"] = {
                "learning_rate": best.schedule.learning_rate,
                "batch_size": best.schedule.batch_size,
                "grid": [c.row() for c in self.grid],
            }
        return out


def start_wins(start: DevScore, trained: DevScore) -> bool:
    """The untrained start is returned only when it is strictly more accurate on the held-out
    rows: an accuracy tie is no evidence that training hurt (on a 20-row dev split it is common)."""
    return start.accuracy > trained.accuracy


def max_candidate(candidates: list[Candidate]) -> Candidate:
    """The best-scoring candidate; the first of equals (grids run from small rates up)."""
    best = candidates[0]
    for candidate in candidates[1:]:
        if candidate.score.beats(best.score):
            best = candidate
    return best


def fit_selected(
    learner: Learner,
    fit_rows: np.ndarray,
    dev_rows: np.ndarray,
    grid: list[Schedule],
    keep_start: bool,
    seed: int,
    say: Callable[[str], None] = lambda _: None,
) -> Selection:
    """Train `learner` on `fit_rows` and leave in it the weights the rule chooses (module doc).

    `grid`: the schedules to compare (one unless tuning); `keep_start`: the untrained weights
    are a candidate (methods that start from the LM's prompt), returned only when they are
    strictly more accurate on the held-out rows than the best trained candidate.
    """
    if len(dev_rows):
        return select_on_dev(learner, fit_rows, dev_rows, grid, keep_start, seed, say)
    gold = learner.scoreable(fit_rows)
    k = min(grid[0].cv_folds, len(gold))
    choosing = keep_start or len(grid) > 1 or learner.stage is not None
    if choosing and k >= 2:
        return select_by_cv(learner, fit_rows, gold, k, grid, keep_start, seed, say)
    if len(grid) > 1:
        raise PromptworthError(
            f"tune needs held-out rows to compare learning rates: {len(gold)} labelled training "
            f"rows and cv_folds={grid[0].cv_folds}; set cv_folds >= 2 or tune=none"
        )
    stats, steps = run_recipe(learner, fit_rows, grid[0], True, seed, say)
    return Selection(stats, "budget", steps, True if learner.stage else None)


def run_recipe(
    learner: Learner, rows: np.ndarray, schedule: Schedule, staged: bool, seed: int, say
) -> tuple[TrainStats, int]:
    """Train on all of `rows` (nothing held out), then the second stage if `staged`."""
    stats = train(learner, rows, rows[:0], schedule, seed, say=say).stats
    steps = stats.steps
    if staged and learner.stage is not None:
        stats += learner.stage(rows)
    return stats, steps


def select_on_dev(learner, fit_rows, dev_rows, grid, keep_start, seed, say) -> Selection:
    """Each schedule trains on `fit_rows` and keeps its best dev checkpoint; the second stage,
    where there is one, runs on it and is kept if it scores better; the best of these, or the
    start, is left in the learner."""
    start_state = learner.snapshot() if keep_start or len(grid) > 1 else None
    start = learner.score(dev_rows) if keep_start else None
    stats, candidates, best, best_state = TrainStats(), [], None, None
    for schedule in grid:
        if start_state is not None:
            learner.restore(start_state)
        trained = train(learner, fit_rows, dev_rows, schedule, seed, say)
        stats += trained.stats
        candidate = Candidate(schedule, False, trained.score, trained.step, trained.curve)
        if learner.stage is not None:
            unstaged = learner.snapshot()
            stats += learner.stage(fit_rows)
            staged = Candidate(schedule, True, learner.score(dev_rows), trained.step, trained.curve)
            if staged.score.beats(candidate.score):
                candidate = staged
            else:
                learner.restore(unstaged)
        candidates.append(candidate)
        if best is None or candidate.score.beats(best.score):
            best = candidate
            best_state = learner.snapshot() if len(grid) > 1 else None
    step, staged = best.step, best.staged
    if keep_start and start_wins(start, best.score):
        learner.restore(start_state)
        step, staged = 0, False
    elif best_state is not None:
        learner.restore(best_state)
    return Selection(
        stats,
        "dev",
        step,
        staged if learner.stage else None,
        start,
        best.score,
        candidates if len(grid) > 1 else [],
        best.curve,
    )


def select_by_cv(learner, fit_rows, gold, k, grid, keep_start, seed, say) -> Selection:
    """k folds of the labelled rows: for each schedule (and with or without the second stage),
    train on the other rows and score each fold's own; pooled over the folds, the best
    candidate is then trained on all rows - unless, with `keep_start`, the untrained start is
    strictly more accurate on the same pooled rows, and is then returned."""
    start_state = learner.snapshot()
    folds = np.array_split(np.random.default_rng(seed).permutation(gold), k)
    held_out = np.concatenate(folds)
    start = learner.score(held_out) if keep_start else None
    stats, candidates = TrainStats(), []
    for schedule in grid:
        scores: dict[bool, list] = {False: [], True: []}
        for number, fold in enumerate(folds, 1):
            say(f"fold {number}/{k} lr {schedule.learning_rate:g} batch {schedule.batch_size}")
            learner.restore(start_state)
            rest = np.setdiff1d(fit_rows, fold)
            stats += train(learner, rest, rest[:0], schedule, seed, say).stats
            scores[False].append(learner.held_out(fold))
            if learner.stage is not None:
                stats += learner.stage(rest)
                scores[True].append(learner.held_out(fold))
        for staged, parts in scores.items():
            if parts:
                candidates.append(Candidate(schedule, staged, learner.pooled(parts, held_out)))
    best = max_candidate(candidates)
    learner.restore(start_state)
    step, staged = 0, False
    if not keep_start or not start_wins(start, best.score):
        final, step = run_recipe(learner, fit_rows, best.schedule, best.staged, seed, say)
        stats += final
        staged = best.staged
    return Selection(
        stats,
        "cv",
        step,
        staged if learner.stage else None,
        start,
        best.score,
        candidates if len(grid) > 1 else [],
    )
