"""The sweep on tiny backbones: outputs, resume after a crash, determinism, failed runs."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from promptworth.cli import main
from promptworth.run import runner
from promptworth.run.sweep import Sweep
from promptworth.testing import TINY_SWEEP_METHODS


def predictions(sweep: Sweep) -> dict[str, list[int]]:
    return {key: result["predictions"] for key, _, result in sweep.store.load()}


def test_plan_covers_methods_sizes_seeds(tiny_sweep_spec):
    plan = Sweep(tiny_sweep_spec, quiet=True).plan()
    # zero-shot trains on nothing: one run; the others: 2 sizes x 2 seeds each.
    assert len(plan) == 1 + 2 * 4
    assert len({run.config.key() for run in plan}) == len(plan)


class SimulatedKill(BaseException):
    """Not an Exception: like a kill, the sweep's per-run error handling does not catch it."""


def test_resume_after_crash_skips_finished_runs(tiny_sweep_spec, monkeypatch):
    calls, killed = [], []
    real_execute = runner.execute

    def crash_on_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3 and not killed:
            killed.append(1)
            raise SimulatedKill
        return real_execute(*args, **kwargs)

    monkeypatch.setattr(runner, "execute", crash_on_third)
    with pytest.raises(SimulatedKill):
        Sweep(tiny_sweep_spec, quiet=True).execute()
    assert (
        len(Sweep(tiny_sweep_spec, quiet=True).store.load()) == 2
    )  # the run in progress is lost, no more
    calls.clear()
    plan, failures = Sweep(tiny_sweep_spec, quiet=True).execute()
    assert not failures and len(calls) == len(plan) - 2
    assert len(Sweep(tiny_sweep_spec, quiet=True).store.load()) == len(plan)
    calls.clear()
    Sweep(tiny_sweep_spec, quiet=True).execute()
    assert calls == []  # everything finished: nothing runs again


def test_same_config_and_seed_give_identical_predictions(tiny_sweep_spec, tmp_path):
    first = Sweep(tiny_sweep_spec, quiet=True)
    first.execute()
    tiny_sweep_spec.out = tmp_path / "again"
    second = Sweep(tiny_sweep_spec, quiet=True)
    second.execute()
    assert predictions(first) == predictions(second)


def test_failed_runs_are_recorded_listed_and_retried_until_they_finish(
    tiny_sweep_spec, monkeypatch, capsys
):
    real_execute, calls = runner.execute, []

    def fail_head(method, *args, **kwargs):
        calls.append(method.name)
        if method.name == "head":
            raise RuntimeError("boom")
        return real_execute(method, *args, **kwargs)

    monkeypatch.setattr(runner, "execute", fail_head)
    plan, failures = Sweep(tiny_sweep_spec, quiet=True).execute()
    assert len(failures) == 4 and all("RuntimeError: boom" in error for _, error in failures)
    store = Sweep(tiny_sweep_spec, quiet=True).store
    assert len(store.load()) == len(plan) - 4  # never counted as finished
    assert {f.config["method"] for f in store.failures()} == {"head"}
    # `promptworth report` lists them, and report.md has a section for them
    assert main(["report", str(tiny_sweep_spec.out)]) == 0
    assert capsys.readouterr().err.count("FAILED head") == 4
    report = (tiny_sweep_spec.out / "report.md").read_text()
    assert "## Failed runs" in report and report.count("| RuntimeError: boom |") == 4
    # the next sweep retries exactly the failed runs; their successes replace the failures
    calls.clear()
    monkeypatch.setattr(
        runner, "execute", lambda *a, **k: calls.append(a[0].name) or real_execute(*a, **k)
    )
    plan, failures = Sweep(tiny_sweep_spec, quiet=True).execute()
    assert calls == ["head"] * 4 and failures == []
    store = Sweep(tiny_sweep_spec, quiet=True).store
    assert store.failures() == [] and len(store.load()) == len(plan)
    assert main(["report", str(tiny_sweep_spec.out)]) == 0
    assert "Failed runs" not in (tiny_sweep_spec.out / "report.md").read_text()


def test_cli_run_writes_outputs(tiny_task_files, tiny_lm_dir, tiny_encoder_dir, tmp_path, capsys):
    out = tmp_path / "cli"
    methods = ",".join(TINY_SWEEP_METHODS)
    arguments = run_arguments(tiny_task_files, tiny_lm_dir, tiny_encoder_dir, out, methods, 2)
    assert main(["run", *arguments]) == 0
    for name in ("results.csv", "learning_curves.png", "report.md", "advantage.json"):
        assert (out / name).stat().st_size > 0
    results = pd.read_csv(out / "results.csv")
    assert len(results) == 9 and set(results["method"]) == set(TINY_SWEEP_METHODS)
    assert results["accuracy"].between(0, 1).all()
    report = (out / "report.md").read_text()
    assert "learning_curves.png" in report and "| head |" in report
    assert "Report:" in capsys.readouterr().out
    advantage = json.loads((out / "advantage.json").read_text())
    assert {(p["method"], p["baseline"]) for p in advantage["pairs"]} >= {("head", "zero-shot")}
    # `promptworth report` rewrites the sweep's report byte for byte: the header and data
    # section come from the store, and so do the texts the disagreements table quotes.
    swept = (out / "report.md").read_bytes()
    assert b"## Data" in swept and b"- task: `" in swept
    assert main(["report", str(out)]) == 0
    assert (out / "report.md").read_bytes() == swept
    # The report can be rebuilt from the store alone, with another pair in the verdict figure.
    (out / "report.md").unlink()
    assert main(["report", str(out), "--compare", "zero-shot,head"]) == 0
    headline = json.loads((out / "advantage.json").read_text())["headline"]
    assert headline.startswith("head") and "zero-shot" in headline
    assert (out / "report.md").exists()
    assert main(["report", str(out), "--compare", "zero-shot,nope"]) == 2
    # A second sweep into the same store reports its own plan, and says the store holds more.
    capsys.readouterr()
    second = run_arguments(tiny_task_files, tiny_lm_dir, tiny_encoder_dir, out, "zero-shot", 2)
    assert main(["run", *second]) == 0
    assert "holds 8 more" in capsys.readouterr().out
    assert "holds 8 more" in (out / "report.md").read_text()
    assert set(pd.read_csv(out / "results.csv")["method"]) == {"zero-shot"}


def test_cli_rejects_unknown_method(capsys):
    assert main(["run", "--methods", "no-such-method"]) == 2
    assert "known methods" in capsys.readouterr().err


def test_cli_lists_every_parameter_default(capsys):
    assert main(["methods", "--params", "distill"]) == 0
    shown = capsys.readouterr().out
    assert "teacher_params = {}" in shown and "MISSING" not in shown


def run_arguments(
    tiny_task_files, lm_dir: str, encoder_dir: str, out: Path, methods: str, max_steps: int
) -> list[str]:
    """`promptworth run`'s arguments for the tiny task: 2 sizes x 2 seeds of `methods`."""
    return [
        *("--task", tiny_task_files[0], "--test-file", tiny_task_files[1]),
        *("--model", lm_dir, "--encoder", encoder_dir, "--methods", methods),
        *("--param", f"prompt-lora.max_steps={max_steps}", "--sizes", "4,8", "--seeds", "2"),
        *("--dtype", "float32", "--quiet", "--out", str(out)),
    ]


def sweep_command(tiny_task_files, lm_dir: str, encoder_dir: str, out: Path) -> list[str]:
    """A real `promptworth run` of 5 runs (zero-shot + prompt-lora x 2 sizes x 2 seeds)."""
    arguments = run_arguments(
        tiny_task_files, lm_dir, encoder_dir, out, "zero-shot,prompt-lora", 20
    )
    return [sys.executable, "-m", "promptworth.cli", "run", *arguments]


CHILD_ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}


def test_kill_during_sweep_then_resume(tiny_task_files, tiny_lm_dir, tiny_encoder_dir, tmp_path):
    """SIGKILL a real sweep process once some runs are stored; the rerun finishes the rest
    (the killed process's lease on its run in progress is taken over: its pid is gone)."""
    out = tmp_path / "killed"
    command = sweep_command(tiny_task_files, tiny_lm_dir, tiny_encoder_dir, out)
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=CHILD_ENV
    )
    database, deadline = out / "runs.sqlite", time.time() + 120
    while time.time() < deadline and stored(database) < 2 and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = stored(database)
    assert 1 <= before < 5, "the kill should land mid-sweep"
    rerun = subprocess.run(command, capture_output=True, text=True, env=CHILD_ENV)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"{5 - before} to do" in rerun.stderr
    assert stored(database) == 5
    assert len(pd.read_csv(out / "results.csv")) == 5


def test_two_sweeps_into_one_out_run_each_run_once(
    tiny_task_files, tiny_lm_dir, tiny_encoder_dir, tmp_path
):
    """The second sweep starts while the first holds a run: they split the plan, every run
    executes in exactly one of them, and both end with the whole plan in their outputs."""
    out = tmp_path / "shared"
    command = sweep_command(tiny_task_files, tiny_lm_dir, tiny_encoder_dir, out)
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    first = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=logs[0].open("w"), env=CHILD_ENV
    )
    deadline = time.time() + 120
    while time.time() < deadline and not leased(out / "runs.sqlite") and first.poll() is None:
        time.sleep(0.05)
    second = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=logs[1].open("w"), env=CHILD_ENV
    )
    assert first.wait() == 0 and second.wait() == 0, (
        logs[0].read_text()[-2000:] + logs[1].read_text()[-2000:]
    )
    executed = [re.findall(r"finished (.+?): accuracy", log.read_text()) for log in logs]
    assert all(len(runs) == len(set(runs)) for runs in executed)
    assert not set(executed[0]) & set(executed[1]), "a run executed in both sweeps"
    assert len(executed[0]) + len(executed[1]) == 5 and stored(out / "runs.sqlite") == 5
    assert len(pd.read_csv(out / "results.csv")) == 5


def leased(database: Path) -> bool:
    try:
        with sqlite3.connect(database) as db:
            return db.execute("SELECT COUNT(*) FROM leases").fetchone()[0] > 0
    except sqlite3.OperationalError:  # no store or no table yet
        return False


def stored(database: Path) -> int:
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(database) as db:
            return db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    except sqlite3.OperationalError:  # the table is not created yet
        return 0


def test_results_are_numbers_not_placeholders(tiny_sweep_spec):
    sweep = Sweep(tiny_sweep_spec, quiet=True)
    sweep.execute()
    for _, _config, result in sweep.store.load():
        predicted = np.array(result["predictions"])
        labels = sweep.task.test.labels[sweep.test_indices]
        assert result["accuracy"] == pytest.approx(float((predicted == labels).mean()))
        assert result["n_test"] == len(labels)


def test_method_that_cannot_run_here_is_refused_before_loading(capsys):
    """qlora needs CUDA for 4-bit weights: on a CPU the sweep refuses instead of running LoRA."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine can run qlora")
    assert main(["run", "--methods", "zero-shot,qlora", "--sizes", "10", "--seeds", "1"]) == 2
    error = capsys.readouterr().err
    assert "qlora' cannot run here" in error
    # The default preset's own prompt-lora setting is not the user's mistake: no warning.
    assert "--param for methods not in this run" not in error


def test_a_truncated_feature_file_is_reported_and_recomputed_and_the_run_succeeds(
    tiny_sweep_spec, caplog
):
    tiny_sweep_spec.methods, tiny_sweep_spec.sizes, tiny_sweep_spec.seeds = ["head"], [4], [0]
    Sweep(tiny_sweep_spec, quiet=True).execute()
    (features,) = (tiny_sweep_spec.out / "features").glob("*.npz")
    features.write_bytes(features.read_bytes()[:100])
    tiny_sweep_spec.sizes = [4, 8]  # a new run needs the features again
    plan, failures = Sweep(tiny_sweep_spec, quiet=True).execute()
    assert failures == [] and len(Sweep(tiny_sweep_spec, quiet=True).store.load()) == len(plan) == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(str(features) in w and "damaged feature cache" in w for w in warnings)
    with np.load(features) as stored:  # rewritten whole
        assert len(stored["keys"]) == len(stored["vectors"]) > 0


def test_two_tasks_or_two_parameter_sets_in_one_out_are_never_averaged(
    tiny_sweep_spec, tiny_task_files, tmp_path
):
    """Runs of another task, or of other parameters, written to the same --out are separate
    rows of the report, named by what differs, each averaged over its own seeds only."""
    from promptworth.report.outputs import write_outputs

    tiny_sweep_spec.methods, tiny_sweep_spec.sizes = ["head"], [8]
    Sweep(tiny_sweep_spec, quiet=True).execute()
    other = pd.read_csv(tiny_task_files[0])
    other["text"] = other["text"].str.upper()  # another task: same labels, other texts
    other_path = tmp_path / "shouting.csv"
    other.to_csv(other_path, index=False)
    tiny_sweep_spec.task = str(other_path)
    Sweep(tiny_sweep_spec, quiet=True).execute()
    tiny_sweep_spec.task, tiny_sweep_spec.method_params = tiny_task_files[0], {"head": {"C": 0.01}}
    sweep = Sweep(tiny_sweep_spec, quiet=True)
    sweep.execute()
    rows = sweep.store.load()
    summary = write_outputs(rows, tiny_sweep_spec.out, [])["summary"]
    assert sorted(summary.index) == [
        "head[C=0.01,task=train]",
        "head[C=None,task=shouting]",
        "head[C=None,task=train]",
    ]
    for label, group in pd.read_csv(tiny_sweep_spec.out / "results.csv").groupby("method"):
        assert len(group) == 2 and sorted(group["seed"]) == [0, 1]
        mean = group["accuracy"].mean()
        assert summary.loc[label, 8].startswith(f"{mean:.3f}")
