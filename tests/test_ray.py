"""--executor ray on a real local Ray instance (two one-CPU workers, tiny models): the same
results as in-process, backbones loaded once per worker, a killed worker's run reported and
rerun; and the executor flags' errors, which need no Ray."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from promptworth.analysis.results import MACHINE_MEASURED, results_frame
from promptworth.cli import main
from promptworth.methods import REGISTRY
from promptworth.run import executors
from promptworth.run.sweep import Sweep, SweepSpec
from promptworth.store.database import RunStore


@pytest.fixture(scope="module")
def ray_instance():
    """One local Ray instance for the module, started as the sweep starts its own; the sweeps
    below find it running and leave it up."""
    pytest.importorskip("ray", reason="--executor ray needs ray: pip install 'promptworth[ray]'")
    executor = executors.RayExecutor(executors.RayOptions(local_cpus=2))
    executor.connect()
    yield
    executor.disconnect()


def table(sweep: Sweep) -> pd.DataFrame:
    """The results table without what is measured about the machine, with the predictions."""
    rows = sweep.store.load()
    frame = results_frame(rows).drop(columns=MACHINE_MEASURED).set_index("run_key").sort_index()
    frame["predictions"] = pd.Series({key: result["predictions"] for key, _, result in rows})
    return frame


def test_the_ray_executor_gives_the_local_results_table(
    ray_instance, tiny_sweep_spec, tmp_path, monkeypatch
):
    """9 runs on two one-CPU workers: the same table and predictions as in-process; each worker
    has its own cache, holding at most the LM at the end (none when its last run served through
    its own trained copy), and runs on one torch thread; head's features went into one file."""
    import ray

    local = Sweep(tiny_sweep_spec, quiet=True)
    assert local.execute()[1] == []
    loaded = []

    def held(worker):  # runs in the worker's process
        import torch

        return list(worker.bench.backbones._loaded), torch.get_num_threads()

    def drain_then_look(pool):  # what each worker holds once the runs are done
        done = real_drain(pool)
        loaded.extend(ray.get([actor.__ray_call__.remote(held) for actor in pool.actors]))
        return done

    real_drain = executors.RayExecutor.drain
    monkeypatch.setattr(executors.RayExecutor, "drain", drain_then_look)
    tiny_sweep_spec.out = tmp_path / "ray"
    remote = Sweep(tiny_sweep_spec, quiet=True, executor=executors.RayExecutor())
    plan, failures = remote.execute()
    assert failures == [] and len(plan) == 9
    assert len(table(remote)) == 9
    pd.testing.assert_frame_equal(table(local), table(remote))
    assert len(loaded) == 2  # one thread each: --run-cpus 1
    assert all(set(keys) <= {(tiny_sweep_spec.models[0], "causal-lm")} for keys, _ in loaded)
    assert [threads for _, threads in loaded] == [1, 1]
    assert len(list((tiny_sweep_spec.out / "features").glob("*.npz"))) == 1


def cli_args(spec: SweepSpec, *extra: str) -> list[str]:
    return [
        "run",
        *("--task", spec.task, "--test-file", spec.test_file),
        *("--model", spec.models[0], "--encoder", spec.encoders[0], "--dtype", "float32"),
        *("--sizes", "4,8", "--seeds", "1", "--quiet", "--out", str(spec.out)),
        *extra,
    ]


def test_a_killed_worker_loses_only_its_run_which_the_next_sweep_completes(
    ray_instance, tiny_sweep_spec, tmp_path, monkeypatch, capsys
):
    """dies-once kills its worker's process in its first run (os._exit): that run is reported
    and not recorded, the others finish on the remaining and the replacement workers."""
    monkeypatch.setitem(REGISTRY, "dies-once", ("promptworth.testing:DiesOnce", "test-only"))
    marker = tmp_path / "died"
    args = cli_args(
        tiny_sweep_spec,
        *("--methods", "dies-once,head", "--param", f"dies-once.marker={marker}"),
        *("--executor", "ray", "--run-cpus", "1"),
    )
    assert main(args) == 1
    error = capsys.readouterr().err
    assert error.count("FAILED dies-once") == 1 and "worker lost" in error
    store = RunStore(tiny_sweep_spec.out / "runs.sqlite")
    finished = [config for _, config, _ in store.load()]
    assert len(finished) == 3 and store.failures() == []  # the lost run is not recorded
    assert sorted(c["method"] for c in finished) == ["dies-once", "head", "head"]
    assert main(args) == 0
    assert len(store.load()) == 4 and store.failures() == []


def test_executor_flags_are_refused_before_anything_starts(tiny_sweep_spec, capsys):
    assert main(cli_args(tiny_sweep_spec, "--run-cpus", "2")) == 2
    assert "--run-cpus: only with --executor ray" in capsys.readouterr().err
    # each flag is named as the user typed it
    assert main(cli_args(tiny_sweep_spec, "--ray-address", "127.0.0.1:1")) == 2
    assert capsys.readouterr().err == (
        "promptworth: error: --ray-address: only with --executor ray\n"
    )
    assert main(cli_args(tiny_sweep_spec, "--ray-timeout", "5", "--run-gpus", "1")) == 2
    assert "--ray-timeout, --run-gpus: only with --executor ray" in capsys.readouterr().err
    if importlib.util.find_spec("ray"):
        assert main(cli_args(tiny_sweep_spec, "--executor", "ray", "--run-cpus", "0")) == 2
        assert "--run-cpus 0.0: must be a number > 0" in capsys.readouterr().err
    assert not tiny_sweep_spec.out.exists()


@pytest.mark.parametrize(
    ("flags", "extra"), [(["--executor", "ray"], "ray"), (["--mlflow"], "mlflow")]
)
def test_a_missing_extra_is_named(tiny_sweep_spec, monkeypatch, capsys, flags, extra):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        executors.importlib.util, "find_spec", lambda name: None if name == extra else real(name)
    )
    assert main(cli_args(tiny_sweep_spec, "--methods", "zero-shot", *flags)) == 2
    assert f"pip install 'promptworth[{extra}]'" in capsys.readouterr().err
    assert not tiny_sweep_spec.out.exists()


def run_cli(spec: SweepSpec, *extra: str, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    """The CLI in its own process (a join left trying in a thread must not touch the other
    tests' Ray), and how long it took to end."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "promptworth.cli", *cli_args(spec, "--methods", "head", *extra)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1]), **env},
        timeout=120,
    )
    return done, time.perf_counter() - start


def our_line(done) -> str:
    """The last line promptworth itself wrote to stderr."""
    return [line for line in done.stderr.splitlines() if line.startswith("promptworth:")][-1]


def last_line(done: subprocess.CompletedProcess) -> str:
    return done.stderr.strip().splitlines()[-1]


def test_an_address_where_nothing_listens_is_refused_at_once(tiny_sweep_spec):
    pytest.importorskip("ray", reason="--executor ray needs ray: pip install 'promptworth[ray]'")
    done, seconds = run_cli(tiny_sweep_spec, "--executor", "ray", "--ray-address", "127.0.0.1:1")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert last_line(done).startswith(
        "promptworth: error: --ray-address 127.0.0.1:1: no Ray cluster there (Connection refused)"
    )
    assert seconds < 30 and not tiny_sweep_spec.out.exists()


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_an_address_that_never_answers_as_ray_ends_within_the_timeout(tiny_sweep_spec, how):
    """A socket that accepts connections and says nothing: Ray would retry for minutes."""
    pytest.importorskip("ray", reason="--executor ray needs ray: pip install 'promptworth[ray]'")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        flags = ["--executor", "ray", "--ray-address", address]
        if how == "flag":
            done, seconds = run_cli(tiny_sweep_spec, *flags, "--ray-timeout", "3")
        else:
            done, seconds = run_cli(tiny_sweep_spec, *flags, PROMPTWORTH_RAY_TIMEOUT="3")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    # Ray's own join, left behind, may still log its retry after our line as the process ends
    assert our_line(done) == (
        f"promptworth: error: --ray-address {address}: no Ray cluster there (it accepts "
        "connections but did not answer as Ray within 3 s); start one with `ray start --head` "
        "and give the address it prints, or wait longer with --ray-timeout SECONDS "
        "(PROMPTWORTH_RAY_TIMEOUT)"
    )
    assert seconds < 40 and not tiny_sweep_spec.out.exists()  # 3 s, plus imports


@pytest.mark.parametrize(
    ("flags", "env", "expected"),
    [
        (["--ray-timeout", "0"], {}, "--ray-timeout 0.0: must be a number of seconds > 0"),
        ([], {"PROMPTWORTH_RAY_TIMEOUT": "soon"}, "PROMPTWORTH_RAY_TIMEOUT='soon': expected"),
    ],
)
def test_a_bad_timeout_is_one_line(tiny_sweep_spec, monkeypatch, capsys, flags, env, expected):
    pytest.importorskip("ray", reason="--executor ray needs ray: pip install 'promptworth[ray]'")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(cli_args(tiny_sweep_spec, "--executor", "ray", *flags)) == 2
    assert expected in capsys.readouterr().err
    assert not tiny_sweep_spec.out.exists()


def test_a_cluster_too_small_for_one_run_leaves_no_store(ray_instance, tiny_sweep_spec, capsys):
    args = cli_args(tiny_sweep_spec, "--methods", "head", "--executor", "ray", "--run-cpus", "64")
    assert main(args) == 2
    assert "--run-cpus 64.0 --run-gpus 0.0: the Ray cluster has 2 CPUs" in capsys.readouterr().err
    assert not tiny_sweep_spec.out.exists()
