"""Serving measured in a clean window: the window's fields, the outlier flag before and after a
re-measurement, and `promptworth report --measure-serving` on a store whose runs lack them."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import subprocess
import sys
import time

import pytest
import torch

from promptworth.analysis.results import SERVING_WINDOW
from promptworth.cli import main
from promptworth.methods import make_method
from promptworth.recommend import Inputs, recommend
from promptworth.recommend.outliers import MEASURE_AGAIN, serving_targets
from promptworth.run import costs, runner, serving
from promptworth.run.sweep import Sweep
from promptworth.store.database import SERVING_MEASUREMENTS
from promptworth.testing import tiny_sweep, tiny_task, write_task_files

N_ROWS = 40


def test_the_serving_window_measures_latency_throughput_and_what_the_model_holds(
    task, make_context
):
    context = make_context()
    result = runner.execute(make_method("zero-shot"), task.train, task.test, context)
    assert set(SERVING_WINDOW) <= set(result)
    assert result["latency_rows"] == min(serving.LATENCY_ROWS, len(task.test))
    assert result["serving_throughput_rows"] == min(serving.THROUGHPUT_ROWS, len(task.test))
    assert 0 < result["latency_ms_p50"] <= result["latency_ms_p95"]
    per_second = result["serving_examples_per_second"]
    assert per_second * result["serving_ms_per_example"] == pytest.approx(1000, rel=0.01)
    model = context.backbones.get(context.model, "causal-lm").model
    tensors = [*model.parameters(), *model.buffers()]
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}
    assert sum(storages.values()) >= sum(t.numel() * t.element_size() for t in tensors) / 2
    assert result["serving_weights_mb"] == pytest.approx(
        sum(storages.values()) / serving.MB, abs=1e-3
    )
    if costs.reset_peak_rss():  # Linux: the activation peak above the window's baseline
        assert result["serving_activation_peak_mb"] >= 0
        assert result["serving_memory_mb"] == pytest.approx(
            result["serving_weights_mb"] + result["serving_activation_peak_mb"], abs=0.2
        )
    assert result["serve_peak_rss_mb"] > result["serving_weights_mb"]  # the process's, kept


def test_held_bytes_counts_a_shared_tensor_once_and_leaves_out_caches(make_context):
    method = make_method("zero-shot").fit(tiny_task().train, make_context())
    alone = serving.held_bytes(method)
    method.same_model_again_ = method.model_  # a second reference: no second copy
    method.cache_of_vectors_ = make_context().features  # a feature cache is not the model
    assert serving.held_bytes(method) == alone
    method.head_ = torch.zeros(1000)  # a trained head the method keeps
    assert serving.held_bytes(method) == alone + 4000


def stored(
    method: str,
    ms: float,
    latency: float | None,
    remeasured: float | None = None,
    load: float = 0.5,
    others: float | None = None,
    memory: float | None = 300.0,
    seed: int = 0,
    train_seconds: float = 10.0,
):
    """A run of `method` on one 1e8-parameter backbone with 50-token prompts, `ms` per example
    batched and `latency` ms at batch 1 (None: not stored); `remeasured`: the figure a
    re-measurement of it found (both figures) at load average `load` on 2 CPUs; `memory`: what
    its serving window found its model holds (None: only the process's peak RSS stored)."""
    result = {
        "accuracy": 0.8,
        "n_test": N_ROWS,
        "n_labels": 2,
        "test_labels": [0] * N_ROWS,
        "predictions": [0] * 32 + [1] * 8,
        "train_seconds": train_seconds,
        "eval_ms_per_example": ms,
        "peak_rss_mb": 900.0,
        "serve_peak_rss_mb": 800.0,
        "serving_memory_mb": memory,
        "artifact_bytes": 1000,
        "prompt_tokens_per_example": 50.0,
        "total_params": 1e8,
        "device": "cpu",
    }
    if latency is not None:
        result |= {"latency_ms_p50": latency, "latency_ms_p95": latency * 1.2}
    if remeasured is not None:
        window = {k: None for k in SERVING_WINDOW}
        window |= {"latency_ms_p50": remeasured, "latency_ms_p95": remeasured * 1.2}
        window |= {"serving_ms_per_example": remeasured, "measured_at": "2026-01-01T00:00:00Z"}
        window |= {"serving_load_average": load, "serving_other_cpus": others, "serving_cpus": 2}
        window |= {"serving_memory_mb": memory}
        result[SERVING_MEASUREMENTS] = [window]
    config = {"task": "t", "model": "m", "method": method, "n_train": 0, "seed": seed}
    key = f"{method}-key" if seed == 0 else f"{method}-{seed}-key"
    return key, {**config, "method_params": {}}, result


def family(slow: dict) -> list:
    """Three peers at 50-60 ms per example and 60 ms latency, and "slow" given by `slow`."""
    peers = [stored(name, ms, 60.0) for name, ms in (("a", 50.0), ("b", 55.0), ("c", 60.0))]
    return [*peers, stored("slow", **slow)]


def outlier_text(rows) -> str | None:
    candidates = recommend(rows, Inputs(labels=0)).to_json()["candidates"]
    return {c["method"]: c["serving_outlier"] for c in candidates}["slow"]


def test_an_outlier_is_flagged_until_measured_again_then_flagged_only_if_it_persists():
    # 550 ms per example and no latency: ten times its family, never measured again
    text = outlier_text(family({"ms": 550.0, "latency": None}))
    assert text.startswith("slow's serving time, 550.0 ms per example, is 10× slower than the ")
    assert "not re-measured yet" in text and MEASURE_AGAIN in text
    assert serving_targets(family({"ms": 550.0, "latency": None})) == {
        "slow-key": "its method's serving time is 10× its family's"
    }
    # measured again in a clean window at its family's speed: no flag, and the figure is read
    rows = family({"ms": 550.0, "latency": None, "remeasured": 55.0})
    assert outlier_text(rows) is None
    candidates = recommend(rows, Inputs(labels=0)).to_json()["candidates"]
    (slow,) = [c for c in candidates if c["method"] == "slow"]
    assert slow["latency_ms_p50"] == 55.0 and slow["latency_ms_p95"] == pytest.approx(66.0)
    assert slow["ms_per_example_batched"] == 55.0  # the re-measurement, not the stored 550
    assert slow["latency_source"] == "measured at batch size 1, re-measured in a clean window"
    assert serving_targets(rows) == {}  # measured again once: not a third time
    # measured again and still ten times off: flagged as persisting, not as unmeasured
    text = outlier_text(family({"ms": 550.0, "latency": None, "remeasured": 600.0}))
    assert "re-measured in a clean window, still 11× its family" in text
    assert "not re-measured yet" not in text
    # asked for, a persisting outlier is measured again; the end of a sweep leaves it
    rows = family({"ms": 550.0, "latency": None, "remeasured": 600.0})
    assert set(serving_targets(rows)) == {"slow-key"}
    assert serving_targets(rows, outliers_only=True) == {}
    # measured again on a machine busy with other work: the flag says so, not "persists"
    busy = family({"ms": 550.0, "latency": None, "remeasured": 600.0, "load": 13.0})
    text = outlier_text(busy)
    assert "re-measured, still 11× its family, but on a machine busy with other work" in text
    assert "load average 6.5 per CPU" in text and MEASURE_AGAIN in text
    notes = recommend(busy, Inputs(labels=0)).notes
    assert any(
        n.startswith("Serving of slow (load average 6.5 per CPU) was measured") for n in notes
    )
    assert not any("other work loaded" in n for n in recommend(rows, Inputs(labels=0)).notes)
    busy_peer = [*family({"ms": 55.0, "latency": 60.0}), stored("d", 50.0, 60.0, 50.0, load=3.0)]
    assert serving_targets(busy_peer) == {"d-key": "measured on a busy machine"}
    assert serving_targets(busy_peer, outliers_only=True) == {}


def test_a_window_is_busy_by_the_cpu_other_processes_took_not_by_the_runs_own_load():
    # a load average of 3 on 2 CPUs right after training, but no other process worked: quiet
    rows = family({"ms": 550.0, "latency": None, "remeasured": 600.0, "load": 3.0, "others": 0.1})
    assert "re-measured in a clean window, still 11× its family" in outlier_text(rows)
    assert not any("other work loaded" in n for n in recommend(rows, Inputs(labels=0)).notes)
    # other processes kept 1.4 of the 2 CPUs busy, whatever the load average said
    rows = family({"ms": 550.0, "latency": None, "remeasured": 600.0, "load": 0.5, "others": 1.4})
    assert "on a machine busy with other work (other work kept 1.4 of 2 CPUs busy)" in (
        outlier_text(rows)
    )
    notes = recommend(rows, Inputs(labels=0)).notes
    assert any(n.startswith("Serving of slow (other work kept 1.4 of 2 CPUs busy)") for n in notes)


def test_other_cpus_counts_another_process_working_during_the_window():
    before = costs.cpu_seconds()
    if before is None:
        pytest.skip("no /proc/stat on this system: other processes' CPU time is not measured")
    started = time.perf_counter()
    spin = "import time\nend = time.time() + 1.0\nwhile time.time() < end: pass"
    subprocess.run([sys.executable, "-c", spin], check=True)  # this process only waits
    assert costs.other_cpus(before, time.perf_counter() - started) >= 0.5


def test_a_batch_one_latency_far_off_its_family_is_flagged_and_the_sweep_picks_only_outliers():
    rows = family({"ms": 55.0, "latency": 900.0})  # batched time normal, latency 15× its peers'
    text = outlier_text(rows)
    assert text.startswith("slow's batch-1 latency (p50), 900.0 ms per request, is 15× slower")
    rows.append(stored("unmeasured", 55.0, None))
    assert set(serving_targets(rows)) == {"slow-key", "unmeasured-key"}
    assert set(serving_targets(rows, outliers_only=True)) == {"slow-key"}  # end of a sweep


def test_a_method_without_window_memory_has_its_quickest_run_measured_for_every_seed():
    peers = family({"ms": 55.0, "latency": 60.0})
    seeds = [
        stored("e", 50.0, 60.0, memory=None, seed=s, train_seconds=t)
        for s, t in ((0, 900.0), (1, 40.0), (2, 60.0))
    ]
    assert serving_targets([*peers, *seeds]) == {
        "e-1-key": "no serving-window memory stored for its method"
    }
    assert serving_targets([*peers, *seeds], outliers_only=True) == {}
    candidates = recommend([*peers, *seeds], Inputs(labels=0)).to_json()["candidates"]
    (e,) = [c for c in candidates if c["method"] == "e"]
    assert e["memory_mb"] == 800.0  # the peak RSS of the process that served it
    # the one window measured what the model holds: it stands for the other seeds
    seeds[1] = stored("e", 50.0, 60.0, memory=250.0, seed=1, train_seconds=40.0)
    assert serving_targets([*peers, *seeds]) == {}
    candidates = recommend([*peers, *seeds], Inputs(labels=0)).to_json()["candidates"]
    (e,) = [c for c in candidates if c["method"] == "e"]
    assert e["memory_mb"] == 250.0


@pytest.fixture
def swept_without_latency(tmp_path, tiny_lm_dir, tiny_encoder_dir):
    """A tiny sweep's store (zero-shot and head at 4 and 8 labels) whose zero-shot run and head
    run at 8 labels were stored without the serving window, as older stores were."""
    files = write_task_files(tiny_task(n_train=40, n_test=16), tmp_path)
    spec = tiny_sweep(files, tiny_lm_dir, tiny_encoder_dir, tmp_path / "out", ["zero-shot", "head"])
    spec = dataclasses.replace(spec, seeds=[0])
    _, failures = Sweep(spec, quiet=True).execute()
    assert not failures
    db = sqlite3.connect(spec.out / "runs.sqlite")
    for key, config, result in db.execute("SELECT key, config, result FROM runs").fetchall():
        config, result = json.loads(config), json.loads(result)
        if config["n_train"] in (0, 8):
            stripped = {k: v for k, v in result.items() if k not in SERVING_WINDOW}
            db.execute("UPDATE runs SET result = ? WHERE key = ?", (json.dumps(stripped), key))
    db.commit()
    db.close()
    return spec.out


def stored_results(out) -> dict[str, tuple[dict, dict]]:
    db = sqlite3.connect(out / "runs.sqlite")
    rows = db.execute("SELECT key, config, result FROM runs").fetchall()
    db.close()
    return {key: (json.loads(config), json.loads(result)) for key, config, result in rows}


def test_report_measure_serving_fills_batch_one_latency_and_leaves_other_runs_alone(
    swept_without_latency, monkeypatch, capsys
):
    # a quiet machine: a window timed under load is picked again by the next call (its own test)
    monkeypatch.setattr(costs, "other_cpus", lambda before, wall_seconds: 0.0)
    before = stored_results(swept_without_latency)
    fitted = []
    for name in ("zero-shot", "head"):
        cls = type(make_method(name))
        real_fit = cls.fit

        def counted(self, *args, _fit=real_fit, **kwargs):
            fitted.append(self.name)
            return _fit(self, *args, **kwargs)

        monkeypatch.setattr(cls, "fit", counted)
    assert main(["report", str(swept_without_latency), "--measure-serving"]) == 0
    assert sorted(fitted) == ["head", "zero-shot"]  # only the two runs that needed it, once each
    said = capsys.readouterr().err
    assert "re-measuring serving of zero-shot n=0 seed=0" in said
    assert "re-measuring serving of head n=8 seed=0" in said and "head n=4" not in said
    after = stored_results(swept_without_latency)
    for key, (config, result) in before.items():
        if config["n_train"] == 4:
            assert after[key][1] == result  # untouched
            continue
        (measured,) = after[key][1].pop(SERVING_MEASUREMENTS)
        assert after[key][1] == result  # the run's own figures are kept as they were
        assert 0 < measured["latency_ms_p50"] <= measured["latency_ms_p95"]
        assert measured["serving_examples_per_second"] > 0
        assert measured["reason"] == "no batch-1 latency stored"
        assert {"measured_at", "cpu", "threads", "device"} <= set(measured)
        assert measured["threads"] == torch.get_num_threads()
    report = (swept_without_latency / "results.csv").read_text()
    assert "serving_remeasured_at" in report.splitlines()[0]
    # measured once: nothing left to measure, nothing retrained
    fitted.clear()
    assert main(["report", str(swept_without_latency), "--measure-serving"]) == 0
    assert fitted == [] and "nothing to measure again" in capsys.readouterr().err


def test_a_run_whose_config_no_longer_rebuilds_it_is_refused_by_name(swept_without_latency, capsys):
    db = sqlite3.connect(swept_without_latency / "runs.sqlite")
    db.execute(
        "UPDATE runs SET config = json_set(config, '$.test_size', 3) "
        "WHERE json_extract(config, '$.method') = 'zero-shot'"
    )
    db.commit()
    db.close()
    assert main(["report", str(swept_without_latency), "--measure-serving"]) == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert "zero-shot n=0 seed=0" in error and "no longer plans the same run" in error


def test_the_window_times_distinct_rows_where_the_test_subset_allows():
    texts = [f"row {i}" for i in range(100)]
    warmup, one_by_one, batched = serving.window_rows(texts)
    assert one_by_one == texts[:16] and batched == texts[16:48] and warmup == texts[48:52]
    short = texts[:20]
    warmup, one_by_one, batched = serving.window_rows(short)
    assert one_by_one == short[:16] and batched == short and warmup == short[-4:]
