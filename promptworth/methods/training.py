"""The training rule shared by every gradient-trained method.

Rule (README "Training towards convergence"): hold out a dev split from the *training subset*
when it is large enough (`dev_fraction` of it, at least `min_dev` and at most `max_dev` examples,
the rest trains); train for
`epochs` passes over the rest, capped at `max_steps` optimizer steps; with a dev split, measure
dev loss every `eval_every` steps, stop after `patience` evaluations without improvement, and
restore the best weights. Without one (tiny subsets) the step budget is the whole rule.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Schedule:
    learning_rate: float
    batch_size: int = 8
    epochs: float = 10.0
    max_steps: int = 150
    eval_every: int = 10
    patience: int = 3
    dev_fraction: float = 0.2
    min_dev: int = 8
    max_dev: int | None = None  # None: no cap
    weight_decay: float = 0.0


@dataclass
class TrainStats:
    steps: int = 0
    examples: int = 0
    tokens: int = 0
    best_dev_loss: float | None = None
    stopped_early: bool = False


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


def autocast_for(placement):
    """bf16/fp16 autocast over fp32 master weights where the placement asks for it."""
    import torch

    if placement.dtype == "float32":
        return contextlib.nullcontext()
    device_type = "cuda" if placement.device.startswith("cuda") else "cpu"
    return torch.autocast(device_type, dtype=getattr(torch, placement.dtype))


def train(
    parameters: list,
    step_loss: Callable[[np.ndarray], tuple],
    dev_loss: Callable[[], float] | None,
    n_fit: int,
    schedule: Schedule,
    seed: int,
    placement,
    say: Callable[[str], None] = lambda _: None,
) -> TrainStats:
    """AdamW over `parameters`; `step_loss(indices)` returns (loss, n_tokens) for a batch."""
    import torch

    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(
        parameters, lr=schedule.learning_rate, weight_decay=schedule.weight_decay
    )
    rng = np.random.default_rng(seed)
    stats, total = TrainStats(), planned_steps(n_fit, schedule)
    best_state, evals_without_gain = None, 0
    order, cursor = rng.permutation(n_fit), 0
    for step in range(1, total + 1):
        if cursor >= n_fit:
            order, cursor = rng.permutation(n_fit), 0
        batch = order[cursor : cursor + schedule.batch_size]
        cursor += schedule.batch_size
        with autocast_for(placement):
            loss, n_tokens = step_loss(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        stats.steps, stats.examples, stats.tokens = (
            step,
            stats.examples + len(batch),
            stats.tokens + n_tokens,
        )
        if dev_loss is None or (step % schedule.eval_every and step != total):
            continue
        with autocast_for(placement):
            current = dev_loss()
        say(f"step {step}/{total} loss {loss.item():.3f} dev {current:.3f}")
        if stats.best_dev_loss is None or current < stats.best_dev_loss:
            stats.best_dev_loss, evals_without_gain = current, 0
            best_state = [p.detach().clone() for p in parameters]
        else:
            evals_without_gain += 1
            if evals_without_gain >= schedule.patience:
                stats.stopped_early = True
                break
    if best_state is not None:
        with torch.no_grad():
            for param, saved in zip(parameters, best_state):
                param.copy_(saved)
    return stats
