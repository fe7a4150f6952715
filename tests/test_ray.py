"""--executor ray on a real local Ray instance (two one-CPU workers, tiny models): the same
results as in-process, backbones loaded once per worker, a killed worker's run reported and
rerun; and the executor flags' errors, which need no Ray."""

from __future__ import annotations

import importlib.util

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
    assert all(set(keys) <= {(tiny_sweep_spec.model, "causal-lm")} for keys, _ in loaded)
    assert [threads for _, threads in loaded] == [1, 1]
    assert len(list((tiny_sweep_spec.out / "features").glob("*.npz"))) == 1


def cli_args(spec: SweepSpec, *extra: str) -> list[str]:
    return [
        "run",
        *("--task", spec.task, "--test-file", spec.test_file),
        *("--model", spec.model, "--encoder", spec.encoder, "--dtype", "float32"),
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
