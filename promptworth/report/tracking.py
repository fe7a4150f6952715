"""MLflow tracking: each finished run mirrored as an MLflow run, the report as a parent run's.

The store stays the source of truth; MLflow gets a copy. One experiment per sweep (named after
its --out directory, so a resumed sweep logs into the same one) holds a parent run with the
report files and figures as artifacts, and one child run per finished run: parameters (the
full config and its run key), metrics (accuracy, macro-F1, every cost column) and tags (task,
method, size, seed). Every MLflow call happens on one background thread of the driver, so a
slow or failing tracker neither blocks nor breaks the sweep: its first error is reported in one
line and tracking stops; the next sweep with --mlflow logs the finished runs still missing
(each MLflow run carries its run key, so none is logged twice).
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

from promptworth.analysis.results import flatten
from promptworth.paths import inside
from promptworth.run.executors import require_extra

log = logging.getLogger("promptworth")
STORE = "mlflow.db"  # the default tracking store, in --out
ARTIFACTS = "mlartifacts"  # the default store's artifacts, in --out
CLOSE_SECONDS = 60.0  # how long the end of a sweep waits for the tracker to catch up
ROLE = "promptworth.role"  # tag: "sweep" (the parent run) or "run"
RUN_KEY = "promptworth.run_key"  # tag of each child run


def default_uri(out: Path) -> str:
    """A local SQLite store in --out: MLflow 3 refuses the old `mlruns/` file store unless
    MLFLOW_ALLOW_FILE_STORE=true, and uses `sqlite:///mlflow.db` as its own default."""
    return f"sqlite:///{inside(out, STORE).resolve()}"


def run_params(key: str, config: dict) -> dict[str, str]:
    """The config flattened (`method_params.lr`, `prompt.template`, ...), strings unquoted."""
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

    params = {"run_key": key}
    for name, text in flatten(config).items():
        value = json.loads(text)
        params[name] = (value if isinstance(value, str) else text)[:MAX_PARAM_VAL_LENGTH]
    return params


def run_metrics(result: dict) -> dict[str, float]:
    """Every finite number of the result: scores, counts and cost columns."""
    return {
        name: float(value)
        for name, value in result.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    }


def one_line(error: BaseException) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())[:300]


class Tracker:
    """Logs to MLflow from a background thread; `close` waits at most CLOSE_SECONDS."""

    def __init__(self, out: Path, uri: str | None = None):
        require_extra("mlflow")
        self.out = Path(out).resolve()
        self.uri = uri or default_uri(self.out)
        self.failed = False
        self.jobs: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self.work, name="promptworth-mlflow", daemon=True)
        self.thread.start()
        self.submit(self.open)

    def submit(self, job: Callable, *args) -> None:
        self.jobs.put((job, args))

    def work(self) -> None:
        while (item := self.jobs.get()) is not None:
            job, args = item
            if self.failed:
                continue
            try:
                job(*args)
            except Exception as error:  # a tracker error never reaches the sweep
                self.failed = True
                log.warning(
                    "MLflow tracking stopped (%s): %s; the store keeps every run, and the next "
                    "sweep with --mlflow logs the missing ones",
                    self.uri,
                    one_line(error),
                )

    def close(self) -> None:
        self.jobs.put(None)
        self.thread.join(CLOSE_SECONDS)
        if self.thread.is_alive():
            log.warning(
                "MLflow tracking (%s) still busy after %.0f s; left unfinished, the next sweep "
                "with --mlflow logs the missing runs",
                self.uri,
                CLOSE_SECONDS,
            )

    # -- on the tracker's thread ----------------------------------------------------------

    def open(self) -> None:
        """The sweep's experiment and parent run (made on first use), and the run keys it
        holds already."""
        from mlflow import MlflowClient

        self.client = MlflowClient(tracking_uri=self.uri)
        name = f"promptworth {self.out}"
        found = self.client.get_experiment_by_name(name)
        artifacts = (
            inside(self.out, ARTIFACTS).as_uri() if self.uri == default_uri(self.out) else None
        )
        self.experiment = (
            found.experiment_id if found else self.client.create_experiment(name, artifacts)
        )
        parents = self.runs("sweep")
        self.parent = (
            parents[0].info.run_id
            if parents
            else self.client.create_run(
                self.experiment, run_name=self.out.name, tags={ROLE: "sweep"}
            ).info.run_id
        )
        self.logged = {run.data.tags[RUN_KEY] for run in self.runs("run")}

    def runs(self, role: str) -> list:
        found, token = [], None
        while True:
            page = self.client.search_runs(
                [self.experiment], f"tags.`{ROLE}` = '{role}'", page_token=token
            )
            found += page
            token = page.token
            if not token:
                return found

    def log_run(self, key: str, config: dict, result: dict) -> None:
        self.submit(self._log_run, key, config, result)

    def _log_run(self, key: str, config: dict, result: dict) -> None:
        from mlflow.entities import Metric, Param

        if key in self.logged:
            return
        tags = {
            ROLE: "run",
            RUN_KEY: key,
            "mlflow.parentRunId": self.parent,
            "task": config["task"],
            "method": config["method"],
            "size": str(config["n_train"]),
            "seed": str(config["seed"]),
        }
        name = f"{config['method']} n={config['n_train']} seed={config['seed']}"
        run_id = self.client.create_run(self.experiment, run_name=name, tags=tags).info.run_id
        params = [Param(k, v) for k, v in run_params(key, config).items()]
        for start in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(run_id, params=params[start : start + 100])
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0) for k, v in run_metrics(result).items()]
        self.client.log_batch(run_id, metrics=metrics)
        self.client.set_terminated(run_id)
        self.logged.add(key)

    def log_report(self, rows: list[tuple[str, dict, dict]], files: dict) -> None:
        """Log the finished runs still missing (from earlier sweeps, or a tracker that failed
        then), and the report's files as the parent run's artifacts."""
        for row in rows:
            self.log_run(*row)
        self.submit(self._log_files, [Path(path) for path in files.values() if path])

    def _log_files(self, paths: list[Path]) -> None:
        for path in paths:
            if path.is_file():
                self.client.log_artifact(self.parent, str(path))
