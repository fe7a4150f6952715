"""The sample-efficiency sweep: every method x training size x seed, resumable.

Plan -> skip runs already in the store -> execute the rest, recording each as it finishes ->
export results and write the report.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from promptworth.backbones import DEFAULT_CAUSAL_LM, DEFAULT_ENCODER
from promptworth.config import RunConfig
from promptworth.methods import method_class
from promptworth.methods.base import PromptOptions, RunContext
from promptworth.store import RunStore
from promptworth.subsets import DEFAULT_SAMPLING, check_sizes, fixed_test_indices, nested_subsets
from promptworth.tasks.base import Split

log = logging.getLogger("promptworth")


@dataclass
class SweepSpec:
    """Everything a sweep needs; each planned run's RunConfig is derived from it."""

    task: str = "ag_news"
    model: str = DEFAULT_CAUSAL_LM
    encoder: str = DEFAULT_ENCODER
    methods: list[str] = field(default_factory=lambda: ["zero-shot", "head", "prompt-lora"])
    method_params: dict[str, dict] = field(default_factory=dict)
    sizes: list[int] = field(default_factory=lambda: [10, 32, 100, 320, 1000])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    test_size: int | None = None
    sampling: str = DEFAULT_SAMPLING
    dtype: str = "auto"
    prompt: PromptOptions = field(default_factory=PromptOptions)
    out: Path = Path("promptworth-out")
    test_file: str | None = None
    text_column: str = "text"
    label_column: str = "label"


@dataclass(frozen=True)
class Remainder:
    """The training pool without a run's labelled rows (RunContext.pool), as a view: rows are
    copied only when a method takes a subset (distill samples a few hundred), not per run."""

    pool: Split
    taken: list[int]

    @cached_property
    def indices(self) -> np.ndarray:
        return np.setdiff1d(np.arange(len(self.pool)), self.taken)

    def __len__(self) -> int:
        return len(self.indices)

    def subset(self, indices: np.ndarray | list[int]) -> Split:
        return self.pool.subset(self.indices[np.asarray(indices, dtype=int)])


@dataclass
class PlannedRun:
    config: RunConfig
    train_indices: list[int]


class Sweep:
    def __init__(self, spec: SweepSpec, quiet: bool = False):
        from promptworth.backbones import BackboneCache
        from promptworth.backbones.device import choose_placement
        from promptworth.features import FeatureCache
        from promptworth.tasks import load_task

        self.spec, self.quiet = spec, quiet
        for name in spec.methods:
            method_class(name)  # unknown names fail before anything is loaded
        self.task = load_task(spec.task, spec.test_file, spec.text_column, spec.label_column)
        check_sizes(self.task.train.labels, spec.sizes, spec.sampling)
        self.placement = choose_placement(spec.dtype)
        for name in spec.methods:  # refuse before any model loads, never substitute a method
            reason = method_class(name).unavailable(self.placement.device)
            if reason:
                raise ValueError(f"method {name!r} cannot run here: {reason}")
        self.backbones = BackboneCache(self.placement)
        self.features = FeatureCache(Path(spec.out) / "features")
        self.test_indices = fixed_test_indices(len(self.task.test), spec.test_size)
        self.store = RunStore(Path(spec.out) / "runs.sqlite")

    def plan(self) -> list[PlannedRun]:
        spec, runs = self.spec, []
        subsets = {
            seed: nested_subsets(self.task.train.labels, spec.sizes, seed, spec.sampling)
            for seed in spec.seeds
        }
        for name in spec.methods:
            cls = method_class(name)
            params = cls(**spec.method_params.get(name, {})).get_params()
            grid = [(n, s) for n in spec.sizes for s in spec.seeds] if cls.trains else [(0, 0)]
            for n_train, seed in grid:
                indices = subsets[seed][n_train].tolist() if n_train else []
                runs.append(PlannedRun(self.run_config(name, params, n_train, seed), indices))
        return runs

    def run_config(self, method: str, params: dict, n_train: int, seed: int) -> RunConfig:
        spec = self.spec
        return RunConfig(
            task=self.task.name,
            task_version=self.task.version,
            model=spec.model,
            model_revision=self.backbones.revision(spec.model),
            encoder=spec.encoder,
            encoder_revision=self.backbones.revision(spec.encoder),
            method=method,
            method_params=params,
            n_train=n_train,
            seed=seed,
            test_size=len(self.test_indices),
            sampling=spec.sampling,
            dtype=self.placement.dtype,
            prompt=spec.prompt,
        )

    def execute(self) -> tuple[list[PlannedRun], list[tuple[PlannedRun, str]]]:
        """Run what is not finished yet; return the plan and the runs that failed."""
        from tqdm.auto import tqdm

        from promptworth import runner
        from promptworth.methods import make_method

        plan = self.plan()
        todo = [run for run in plan if not self.store.finished(run.config.key())]
        log.info(
            "%d runs planned, %d already finished, %d to do",
            len(plan),
            len(plan) - len(todo),
            len(todo),
        )
        test = self.task.test.subset(self.test_indices)
        failures = []
        bar = tqdm(todo, disable=self.quiet, unit="run", file=sys.stderr)
        for run in bar:
            c = run.config
            label = f"{c.method} n={c.n_train} seed={c.seed}"
            bar.set_description(label)
            context = RunContext(
                task=self.task,
                seed=c.seed,
                backbones=self.backbones,
                model=c.model,
                encoder=c.encoder,
                prompt=c.prompt,
                features=self.features,
                pool=Remainder(self.task.train, run.train_indices),
                progress=log.debug,
            )
            try:
                method = make_method(c.method, **c.method_params)
                result = runner.execute(
                    method, self.task.train.subset(run.train_indices), test, context
                )
            except Exception as error:  # one failed run must not lose the others
                log.exception("run failed: %s", label)
                failures.append((run, f"{type(error).__name__}: {error}"))
                continue
            self.store.record(c.key(), c.to_dict(), result)
            log.info(
                "finished %s: accuracy %.3f in %.1fs",
                label,
                result["accuracy"],
                result["train_seconds"] + result["eval_seconds"],
            )
        return plan, failures
