"""The sample-efficiency sweep: every method x training size x seed, resumable.

Plan -> skip runs already finished in the store -> claim and execute the rest, recording each
as it finishes or fails -> export results and write the report. Sweeps sharing an output
directory each take only runs nobody holds (store leases), then wait for the runs the others
hold, so every planned run executes once and each sweep ends with the whole plan.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from promptworth.analysis.results import run_backbone, short_name
from promptworth.backbones import DEFAULT_CAUSAL_LM, DEFAULT_ENCODER, canonical_spec
from promptworth.backbones.preflight import model_has_chat_template
from promptworth.errors import PromptworthError
from promptworth.methods import method_class
from promptworth.methods.base import PromptOptions
from promptworth.paths import inside
from promptworth.run import validate
from promptworth.run.model_scores import JUDGE_PROTOCOL
from promptworth.run.presets import DEFAULT_OUT, DEFAULT_PRESET, PRESETS, preset_value
from promptworth.run.serve_dtype import checked_serve_dtypes
from promptworth.store.config import RunConfig
from promptworth.store.database import Claim, RunStore
from promptworth.tasks.base import Split, Task
from promptworth.tasks.subsets import DEFAULT_SAMPLING, fixed_test_indices, nested_subsets

log = logging.getLogger("promptworth")
WAIT_SECONDS = 2.0  # how often a sweep looks again at runs another sweep holds
TASK_SOURCE = "task_source:"  # + task version: where a sweep read a task from files (meta)


@dataclass
class SweepSpec:
    """Everything a sweep needs; each planned run's RunConfig is derived from it."""

    task: str = "ag_news"
    # The backbones (packaged aliases, local directories, hub ids); with several, each method
    # runs on each backbone it reads (Method.reads_backbones) and the report groups by them.
    models: list[str] = field(default_factory=lambda: [DEFAULT_CAUSAL_LM])
    encoders: list[str] = field(default_factory=lambda: [DEFAULT_ENCODER])
    # The default preset's experiment (run/presets.py), as `promptworth run` with no flags.
    methods: list[str] = field(default_factory=lambda: preset_value(DEFAULT_PRESET, "methods"))
    method_params: dict[str, dict] = field(
        default_factory=lambda: preset_value(DEFAULT_PRESET, "params")
    )
    sizes: list[int] = field(default_factory=lambda: preset_value(DEFAULT_PRESET, "sizes"))
    seeds: list[int] = field(default_factory=lambda: preset_value(DEFAULT_PRESET, "seeds"))
    test_size: int | None = PRESETS[DEFAULT_PRESET]["test_size"]
    sampling: str = DEFAULT_SAMPLING
    dtype: str = "auto"
    prompt: PromptOptions = field(default_factory=PromptOptions)
    out: Path = DEFAULT_OUT
    test_file: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    encoding: str = "utf-8"  # of the task's files
    allow_overlap: bool = False  # run even when over 1% of test texts are also training texts
    tune: str | None = None  # the learning-rate search of every method that has one (--tune)
    # generation: metrics scored besides the task's own (--add-metrics), e.g. bertscore, judge
    add_metrics: list[str] = field(default_factory=list)
    judge_model: str | None = None  # the judge metric's causal LM (default: each run's model)

    # serving precisions each run is measured at after training (--serve-dtype; serve_dtype.py)
    serve_dtypes: tuple[str, ...] = ()

    def params(self, name: str) -> dict:
        """Method `name`'s parameters as given: its own (--param), plus `tune` where the method
        has that parameter and none was given for it."""
        given = dict(self.method_params.get(name, {}))
        has_tune = "tune" in {f.name for f in dataclasses.fields(method_class(name).Config)}
        if self.tune is not None and has_tune:
            given.setdefault("tune", self.tune)
        return given


@dataclass
class PlannedRun:
    config: RunConfig
    train_indices: list[int]


class Sweep:
    def __init__(self, spec: SweepSpec, quiet: bool = False, executor=None, task=None):
        """`executor`: where runs execute (promptworth.run.executors; default: this process);
        `task`: the spec's task when the caller loaded it already (validate.spec_task)."""
        from promptworth.backbones import BackboneCache
        from promptworth.backbones.device import choose_placement
        from promptworth.backbones.features import FeatureCache
        from promptworth.run.executors import LocalExecutor

        spec = canonical(spec)
        self.spec, self.quiet = spec, quiet
        self.executor = executor or LocalExecutor()
        # every user error is refused before models load
        self.task = validate.checked_task(spec, task)
        prompt = canonical_prompt(spec.prompt, self.task)
        spec = self.spec = dataclasses.replace(spec, prompt=prompt)
        self.placement = choose_placement(spec.dtype, self.executor.device())
        for name in spec.methods:  # refuse before any model loads, never substitute a method
            reason = method_class(name).unavailable(self.placement.device)
            if reason:
                raise PromptworthError(f"method {name!r} cannot run here: {reason}")
        self.store_path = inside(spec.out, "runs.sqlite")
        if self.store_path.exists():
            self.store  # noqa: B018  # opened now: a damaged or newer store stops us here
        self.backbones = BackboneCache(self.placement)
        judges = [spec.judge_model] if spec.judge_model else []
        for backbone in (*spec.models, *spec.encoders, *judges):  # revisions before planning
            self.backbones.source(backbone)
        self.features = FeatureCache(inside(spec.out, "features"))
        self.test_indices = fixed_test_indices(len(self.task.test), spec.test_size)

    @cached_property
    def store(self) -> RunStore:
        """The store in --out, created at its first use, once every input has passed: a refused
        command (a suite's later task, a Ray cluster too small) leaves --out as it was."""
        return RunStore(self.store_path)

    @cached_property
    def test(self) -> Split:
        return self.task.test.subset(self.test_indices)

    def plan(self) -> list[PlannedRun]:
        spec, runs = self.spec, []
        subsets = {
            seed: nested_subsets(self.task.train.labels, spec.sizes, seed, spec.sampling)
            for seed in spec.seeds
        }
        for name in spec.methods:
            cls = method_class(name)
            params = cls.planned_params(cls(**spec.params(name)).get_params(), self.task)
            grid = [(n, s) for n in spec.sizes for s in spec.seeds] if cls.trains else [(0, 0)]
            for backbones in self.backbone_pairs(cls.reads_backbones(params)):
                for n_train, seed in grid:
                    indices = subsets[seed][n_train].tolist() if n_train else []
                    config = self.run_config(name, params, n_train, seed, backbones)
                    runs.append(PlannedRun(config, indices))
        return runs

    def backbone_pairs(self, read: tuple[str, ...]) -> list[tuple[str, str]]:
        """The (model, encoder) pairs a method that reads the backbones `read` runs on: every
        model it reads by every encoder it reads; of a backbone it does not read, the first
        (its runs are keyed as in a sweep of that backbone alone)."""
        models = self.spec.models if "causal-lm" in read else self.spec.models[:1]
        encoders = self.spec.encoders if "encoder" in read else self.spec.encoders[:1]
        return [(model, encoder) for model in models for encoder in encoders]

    def run_config(
        self, method: str, params: dict, n_train: int, seed: int, backbones: tuple[str, str]
    ) -> RunConfig:
        """The config of one run of `method` on the (model, encoder) pair `backbones`."""
        spec, cls = self.spec, method_class(method)
        params, named = cls.with_backbones(params, canonical_spec)
        read = cls.reads_prompt(params)
        model, encoder = backbones
        return RunConfig(
            task=self.task.name,
            task_version=self.task.fingerprint,
            model=model,
            model_revision=self.backbones.revision(model),
            encoder=encoder,
            encoder_revision=self.backbones.revision(encoder),
            method=method,
            method_params=params,
            n_train=n_train,
            seed=seed,
            test_size=len(self.test_indices),
            sampling=spec.sampling,
            dtype=self.placement.dtype,
            prompt=resolved_chat(
                PromptOptions(**{name: getattr(spec.prompt, name) for name in read}),
                self.task,
                model,
            ),
            backbone_revisions={name: self.backbones.revision(name) for name in named},
            judge=self.judge_config(model),
            serve_dtypes=tuple(spec.serve_dtypes),
        )

    def judge_config(self, model: str) -> dict[str, str]:
        """What a judged run's key holds of its judge (--judge-model, else the run's own
        `model`: a self-judge); {} when the task is not judged."""
        if "judge" not in self.task.metrics:
            return {}
        judge = self.spec.judge_model or model
        revision = self.backbones.revision(judge)
        return {"model": judge, "revision": revision, "protocol": JUDGE_PROTOCOL}

    def execute(self, tracker=None) -> tuple[list[PlannedRun], list[tuple[PlannedRun, str]]]:
        """Run what is not finished yet; return the plan and its runs that failed or were lost
        with their worker. `tracker` (promptworth.report.tracking) also gets each finished run."""
        from tqdm.auto import tqdm

        plan = self.plan()
        self.features.clean()
        self.save_task_source()
        since, owner = self.store.now(), self.store.new_owner()
        pending = [run for run in plan if not self.store.finished(run.config.key())]
        log.info(
            "%d runs planned, %d already finished, %d to do",
            len(plan),
            len(plan) - len(pending),
            len(pending),
        )
        bar = tqdm(total=len(pending), disable=self.quiet, unit="run", file=sys.stderr)
        lost = []
        if pending:
            with self.store.leases_kept(owner), self.executor.start(self, len(pending)) as pool:
                lost = self.run_pending(pending, pool, (owner, since), bar, tracker)
        bar.close()
        by_key = {run.config.key(): run for run in plan}
        failed = self.store.failures(list(by_key))
        return plan, [(by_key[failure.key], failure.error) for failure in failed] + lost

    def save_task_source(self) -> None:
        """Keep where the task came from, so a run can be rebuilt from the store alone
        (run/remeasure.py); a builtin task is found by its name."""
        from promptworth.tasks import BUILTIN_TASKS

        if self.spec.task in BUILTIN_TASKS:
            return
        fields = ("task", "test_file", "text_column", "label_column", "encoding", "allow_overlap")
        source = {name: getattr(self.spec, name) for name in fields}
        self.store.save_meta({TASK_SOURCE + self.task.fingerprint: json.dumps(source)})

    def run_pending(self, pending, pool, claimant, bar, tracker) -> list[tuple[PlannedRun, str]]:
        """Claim each run and hand it to the executor's `pool`; look again every WAIT_SECONDS at
        the runs another sweep holds until they are recorded. Returns the runs lost."""
        owner, since = claimant
        waiting, lost = 0, []
        while pending:
            held = []
            for run in pending:
                claim = self.store.claim(run.config.key(), owner, since)
                if claim is Claim.HELD:
                    held.append(run)
                elif claim is Claim.TAKEN:
                    bar.set_description(label(run))
                    lost += self.record(pool.submit(run), owner, bar, tracker)
                else:
                    bar.update()
            lost += self.record(pool.drain(), owner, bar, tracker)
            if held:
                if len(held) != waiting:  # said once per change, not at every poll
                    waiting = len(held)
                    log.info("waiting for %d runs another sweep into this --out holds", waiting)
                time.sleep(WAIT_SECONDS)
            pending = held
        return lost

    def record(self, done, owner: str, bar, tracker) -> list[tuple[PlannedRun, str]]:
        """Store each ended run's outcome (the driver is the store's only writer); return the
        runs lost with their worker, which are reported and left for the next sweep."""
        lost = []
        for run, outcome in done:
            c, key = run.config, run.config.key()
            bar.update()
            if outcome.lost:
                log.error(
                    "worker lost during %s (%s); not recorded: run again", label(run), outcome.lost
                )
                lost.append((run, f"worker lost: {outcome.lost}"))
            elif outcome.error:
                log.error("run failed: %s\n%s", label(run), outcome.trace.rstrip())
                self.store.record_failure(key, c.to_dict(), outcome.error, owner)
            else:
                result = outcome.result
                self.store.record(key, c.to_dict(), result, owner)
                if tracker is not None:
                    tracker.log_run(key, c.to_dict(), result)
                seconds = result["train_seconds"] + result["eval_seconds"]
                metric = result.get("headline_metric", "accuracy")
                log.info(
                    "finished %s: %s %.3f in %.1fs", label(run), metric, result[metric], seconds
                )
        return lost


def label(run: PlannedRun) -> str:
    """`head n=8 seed=0 on smollm2-135m-instruct`: the run and the backbone it reads."""
    c = run.config
    backbone = short_name(run_backbone(c.to_dict()))
    return f"{c.method} n={c.n_train} seed={c.seed} on {backbone}"


def canonical(spec: SweepSpec) -> SweepSpec:
    """The spec with one spelling per model and file: `models/x/`, `models/x` and `~/models/x`
    plan the same keys (see backbones.canonical_spec)."""

    from promptworth.tasks import BUILTIN_TASKS

    for flag, given in (("--models", spec.models), ("--encoders", spec.encoders)):
        if isinstance(given, str):  # the Python API: one string would plan one run per letter
            raise PromptworthError(f"{flag}: a list of backbones, not the string {given!r}")

    def path(value: str | None) -> str | None:
        if value is None or value in BUILTIN_TASKS or not Path(value).expanduser().exists():
            return value
        return str(Path(value).expanduser().resolve())

    return dataclasses.replace(
        spec,
        models=[canonical_spec(model) for model in spec.models],
        encoders=[canonical_spec(encoder) for encoder in spec.encoders],
        judge_model=canonical_spec(spec.judge_model) if spec.judge_model else None,
        task=path(spec.task),
        test_file=path(spec.test_file),
        serve_dtypes=checked_serve_dtypes(spec.serve_dtypes),
    )


def canonical_prompt(prompt: PromptOptions, task: Task) -> PromptOptions:
    """One spelling per prompt: a literal template that is one of the task's is its index, and
    verbaliser words equal to the task's own are no override; overrides in label order. A task
    with its own input budget (long documents) has it unless --max-text-tokens gave another."""
    template = prompt.template
    if isinstance(template, str) and template in task.templates:
        template = task.templates.index(template)
    given = dict(prompt.verbalizer)
    verbalizer = tuple(
        (name, tuple(given[name]))
        for name, words in zip(task.label_names, task.verbalizers)
        if name in given and list(given[name]) != list(words)
    )
    budget = prompt.max_text_tokens
    if task.max_text_tokens and budget == PromptOptions.max_text_tokens:
        budget = task.max_text_tokens
    return dataclasses.replace(
        prompt, template=template, verbalizer=verbalizer, max_text_tokens=budget
    )


def resolved_chat(prompt: PromptOptions, task: Task, model: str) -> PromptOptions:
    """`prompt` with the chat template chosen for a run on `model` when --chat/--no-chat left it
    open: the model's own for a generation task (an instruction-tuned model answers in its own
    format; a plain "Answer:" prompt often makes it end its turn at once), none for
    classification (rank classification reads label words, as its stored runs did)."""
    if prompt.chat is not None:
        return prompt
    return dataclasses.replace(prompt, chat=task.generates and chat_template_of(model))


@functools.cache
def chat_template_of(model: str) -> bool:
    """Whether `model` has a chat template, read once per model a process plans runs on."""
    return model_has_chat_template(model)
