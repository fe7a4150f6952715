"""Where a sweep's runs execute: in the sweep's own process (`local`) or on Ray workers (`ray`).

Either way the sweep's process (the driver) plans, claims each run's lease and is the only
writer of the store; an executor only turns a claimed run into an `Outcome`. So resume, leases,
kill-safety and run keys behave the same on both, and a worker that dies loses only its run: it
is reported and left unrecorded, and the next sweep runs it.

A Ray worker is an actor: one process per resource slot that keeps its backbones loaded across
the runs it is given (promptworth.backbones.BackboneCache) and shares frozen features with the
others through the locked on-disk cache (promptworth.backbones.features), so each vector is
computed once.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import socket
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptworth.errors import PromptworthError, quoted

if TYPE_CHECKING:
    from promptworth.run.sweep import PlannedRun, Sweep
    from promptworth.tasks.base import Split, Task

log = logging.getLogger("promptworth")
EXECUTORS = ("local", "ray")
TIMEOUT_VARIABLE = "PROMPTWORTH_RAY_TIMEOUT"  # seconds to join a --ray-address; --ray-timeout
DEFAULT_TIMEOUT = 30.0


def require_extra(module: str) -> None:
    """Refuse a flag whose optional dependency is missing, naming the extra that installs it."""
    if importlib.util.find_spec(module) is None:
        raise PromptworthError(
            f"--{'executor ray' if module == 'ray' else module} needs {module}, which is not "
            f"installed: pip install 'promptworth[{module}]'"
        )


@dataclass(frozen=True)
class Outcome:
    """How a run ended: a result (recorded as finished), an error (recorded as failed) or a
    lost worker (reported, not recorded: the next sweep runs it again)."""

    result: dict | None = None
    error: str | None = None  # "Type: message"
    trace: str = ""  # the traceback, for the log
    lost: str | None = None  # why the worker running it is gone


@dataclass
class Workbench:
    """What a process needs to execute runs: the task, its test rows, the backbones (loaded once
    per process) and the feature cache."""

    task: Task
    test: Split
    backbones: Any  # promptworth.backbones.BackboneCache
    features: Any  # promptworth.backbones.features.FeatureCache

    def attempt(self, run: PlannedRun, method_class: type) -> Outcome:
        """Execute `run` with a new instance of `method_class`; an exception is its outcome.

        The driver resolves the class, so a worker runs exactly the method the driver planned."""
        from promptworth.run import runner

        c, context = run.config, self.context(run)
        try:
            method = method_class(**c.method_params)
            train = self.task.train.subset(run.train_indices)
            judge = c.judge.get("model")
            result = runner.execute(
                method, train, self.test, context, judge_model=judge, serve_dtypes=c.serve_dtypes
            )
            return Outcome(result=result)
        except Exception as error:  # one failed run must not lose the others
            return Outcome(error=f"{type(error).__name__}: {error}", trace=traceback.format_exc())

    def context(self, run: PlannedRun):
        """What the method of `run` is given besides its training rows (RunContext)."""
        from promptworth.methods.base import RunContext
        from promptworth.tasks.subsets import Remainder

        c = run.config
        # a literal --template or a --verbalizer: the task as the method is shown it
        task, template = self.task.with_prompt(c.prompt.template, c.prompt.verbalizer)
        return RunContext(
            task=task,
            seed=c.seed,
            backbones=self.backbones,
            model=c.model,
            encoder=c.encoder,
            prompt=replace(c.prompt, template=template, verbalizer=()),
            features=self.features,
            pool=Remainder(self.task.train, run.train_indices),
            progress=log.debug,
        )


Done = list[tuple["PlannedRun", Outcome]]


class LocalExecutor:
    """Runs execute one after another in the sweep's process, as they are submitted."""

    def device(self) -> str | None:
        return None  # the sweep's own choice (promptworth.backbones.device)

    @contextlib.contextmanager
    def start(self, sweep: Sweep, runs: int) -> Iterator[LocalExecutor]:
        self.bench = Workbench(sweep.task, sweep.test, sweep.backbones, sweep.features)
        yield self

    def submit(self, run: PlannedRun) -> Done:
        from promptworth.methods import method_class

        return [(run, self.bench.attempt(run, method_class(run.config.method)))]

    def drain(self) -> Done:
        return []


def default_timeout() -> float:
    """$PROMPTWORTH_RAY_TIMEOUT seconds, else DEFAULT_TIMEOUT."""
    given = os.environ.get(TIMEOUT_VARIABLE)
    if not given:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(given)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise PromptworthError(f"{TIMEOUT_VARIABLE}={quoted(given)}: expected seconds > 0, e.g. 30")
    return seconds


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # a cluster to join (`ray start --head` prints it); None: start one
    run_cpus: float = 1.0  # CPUs each run reserves; also its torch thread count
    run_gpus: float | None = None  # GPUs each run reserves; None: a whole GPU when there are GPUs
    local_cpus: int | None = None  # CPUs of a local instance the sweep starts; None: all
    timeout: float = field(default_factory=default_timeout)  # to join `address`

    def __post_init__(self) -> None:
        if not self.run_cpus > 0:
            raise PromptworthError(f"--run-cpus {self.run_cpus}: must be a number > 0")
        if self.run_gpus is not None and not self.run_gpus >= 0:
            raise PromptworthError(f"--run-gpus {self.run_gpus}: must be a number >= 0")
        if not 0 < self.timeout < float("inf"):
            raise PromptworthError(f"--ray-timeout {self.timeout}: must be a number of seconds > 0")


def unreachable(address: str, why: str) -> PromptworthError:
    return PromptworthError(
        f"--ray-address {address}: no Ray cluster there ({why}); start "
        "one with `ray start --head` and give the address it prints, or wait longer with "
        f"--ray-timeout SECONDS ({TIMEOUT_VARIABLE})"
    )


def check_reachable(address: str, seconds: float) -> None:
    """Refuse at once an address where nothing accepts a connection (a refused port, an
    unknown host); "auto" and names without a port are left to Ray."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=seconds):
            pass
    except OSError as error:
        why = error.strerror or f"no answer within {seconds:g} s"
        raise unreachable(address, why) from None


def not_main_thread_note(record: logging.LogRecord) -> bool:
    return "not the main thread" not in record.getMessage()


def join_cluster(address: str, seconds: float, **options) -> None:
    """ray.init(address=...) bounded by `seconds`: Ray retries an address no cluster answers at
    for minutes without a word, so it tries in a thread that is left behind past the bound."""
    import ray

    check_reachable(address, seconds)
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            ray.init(address=address, **options)
            outcome.append(None)
        except Exception as error:
            outcome.append(error)

    # Ray notes that it sets no SIGTERM handler off the main thread; the default ends us anyway
    ray_log = logging.getLogger("ray._private.worker")
    ray_log.addFilter(not_main_thread_note)
    thread = threading.Thread(target=attempt, name="promptworth-ray-join", daemon=True)
    thread.start()
    thread.join(seconds)
    ray_log.removeFilter(not_main_thread_note)
    if not outcome:
        why = f"it accepts connections but did not answer as Ray within {seconds:g} s"
        raise unreachable(address, why)
    if isinstance(outcome[0], (ConnectionError, TimeoutError)):
        raise unreachable(address, f"{type(outcome[0]).__name__}: {outcome[0]}")
    if outcome[0] is not None:
        raise outcome[0]


def runtime_env() -> dict:
    """Workers import this very promptworth (the driver's copy, shipped by Ray), whatever is
    installed on the cluster's nodes."""
    import promptworth

    return {"py_modules": [str(Path(promptworth.__file__).parent)]}


class RunWorker:
    """A Ray actor: one process that keeps its backbones loaded across the runs it executes."""

    def __init__(self, task: Task, test: Split, placement, features: Path, threads: int):
        import torch

        from promptworth.backbones import BackboneCache
        from promptworth.backbones.features import FeatureCache

        torch.set_num_threads(threads)
        self.bench = Workbench(task, test, BackboneCache(placement), FeatureCache(features))

    def attempt(self, run: PlannedRun, method_class: type) -> Outcome:
        return self.bench.attempt(run, method_class)


class RayExecutor:
    """Runs execute on Ray actors, as many at once as the cluster has slots for (each slot
    `run_cpus` CPUs and `run_gpus` GPUs); Ray starts with the first use unless already up."""

    def __init__(self, options: RayOptions | None = None):
        require_extra("ray")
        self.options = options or RayOptions()
        self.started = False  # whether this executor started Ray (and so shuts it down)

    def connect(self) -> None:
        import ray

        if ray.is_initialized():
            return
        options = {
            "include_dashboard": False,
            "runtime_env": runtime_env(),
            "logging_level": logging.WARNING,
        }
        if self.options.address:
            join_cluster(self.options.address, self.options.timeout, **options)
        else:
            ray.init(num_cpus=self.options.local_cpus, **options)
        self.started = True

    def disconnect(self) -> None:
        import ray

        if self.started:
            ray.shutdown()
            self.started = False

    def resources(self) -> dict[str, float]:
        import ray

        self.connect()
        return ray.cluster_resources()

    @property
    def run_gpus(self) -> float:
        given = self.options.run_gpus
        return given if given is not None else float(self.resources().get("GPU", 0) > 0)

    def device(self) -> str:
        """Where runs execute, so the sweep chooses its dtype (and refuses methods) for it; a
        cluster too small for one run is refused here, before the sweep writes anything."""
        self.slots()
        return "cuda" if self.run_gpus > 0 else "cpu"

    def slots(self) -> int:
        """How many runs the cluster holds at once."""
        available = self.resources()
        wanted = {"CPU": self.options.run_cpus, "GPU": self.run_gpus}
        counts = [int(available.get(name, 0) // need) for name, need in wanted.items() if need]
        if not min(counts):
            raise PromptworthError(
                f"--run-cpus {self.options.run_cpus} --run-gpus {self.run_gpus}: the Ray cluster "
                f"has {available.get('CPU', 0):g} CPUs and {available.get('GPU', 0):g} GPUs, "
                "too few for one run; ask for less per run or join a larger cluster"
            )
        return min(counts)

    @contextlib.contextmanager
    def start(self, sweep: Sweep, runs: int) -> Iterator[RayExecutor]:
        """One actor per slot, at most one per run to do, for the duration of the block; Ray
        stops with it if this executor started Ray."""
        import ray

        self.actors, self.running = [], {}
        try:
            count = min(self.slots(), runs)
            worker = ray.remote(RunWorker).options(
                num_cpus=self.options.run_cpus, num_gpus=self.run_gpus, max_restarts=0
            )
            task, test = ray.put(sweep.task), ray.put(sweep.test)
            features = Path(sweep.spec.out).resolve() / "features"
            threads = max(1, int(self.options.run_cpus))
            self.new_actor = lambda: worker.remote(task, test, sweep.placement, features, threads)
            self.actors = [self.new_actor() for _ in range(count)]
            self.idle = list(range(count))
            yield self
        finally:
            for actor in self.actors:
                ray.kill(actor)
            self.disconnect()

    def submit(self, run: PlannedRun) -> Done:
        """Start `run` on an idle actor, first waiting for one; return the runs that ended
        meanwhile, so the driver records each as soon as it can."""
        from promptworth.methods import method_class

        done = []
        while not self.idle:
            done += self.collect(wait=True)
        slot = self.idle.pop()
        reference = self.actors[slot].attempt.remote(run, method_class(run.config.method))
        self.running[reference] = (slot, run)
        return done + self.collect(wait=False)

    def drain(self) -> Done:
        done = []
        while self.running:
            done += self.collect(wait=True)
        return done

    def collect(self, wait: bool) -> Done:
        """The runs that have ended (waiting for one if `wait`); an actor that died with its
        run is replaced, and the run reported lost."""
        import ray
        from ray.exceptions import RayActorError, RayError

        pending = list(self.running)
        if not pending:
            return []
        ready, _ = ray.wait(
            pending, num_returns=1 if wait else len(pending), timeout=None if wait else 0
        )
        done = []
        for reference in ready:
            slot, run = self.running.pop(reference)
            try:
                outcome = ray.get(reference)
            except RayError as error:
                outcome = Outcome(lost=" ".join(f"{type(error).__name__}: {error}".split())[:500])
                if isinstance(error, RayActorError):
                    self.actors[slot] = self.new_actor()
            self.idle.append(slot)
            done.append((run, outcome))
        return done
