"""What a run is charged: its own models' memory, and no time for loading a backbone from disk."""

from __future__ import annotations

import time

import pandas as pd
import pytest
import torch

from promptworth import backbones as backbones_module
from promptworth.analysis.results import memory_alone
from promptworth.backbones import Backbone
from promptworth.methods import make_method
from promptworth.report.markdown import COLUMNS_DEFINED, cost_notes
from promptworth.run import costs, runner

OTHER = ("another-runs-model", "encoder")  # the cache's key: spec and kind
OTHER_MB = 400

needs_linux_peak = pytest.mark.skipif(
    not costs.reset_peak_rss(), reason="needs Linux's resettable RSS high-water mark"
)


def execute_zero_shot(task, make_context) -> dict:
    return runner.execute(make_method("zero-shot"), task.train, task.test, make_context())


def cache_another_runs_model(backbones) -> None:
    """A 400 MB model an earlier run of the sweep loaded, still in the process's cache."""
    spec, kind = OTHER
    weights = torch.ones(OTHER_MB * 2**20 // 4)
    backbones._loaded[OTHER] = Backbone(spec, "r0", kind, weights, None, backbones.placement)


@needs_linux_peak
def test_a_run_of_another_experiment_starts_without_the_models_earlier_runs_loaded(
    task, make_context, backbones
):
    alone = execute_zero_shot(task, make_context)
    backbones.begin("an earlier experiment")
    cache_another_runs_model(backbones)
    after = execute_zero_shot(task, make_context)
    for column in ("peak_rss_mb", "serve_peak_rss_mb"):
        assert after[column] < alone[column] + OTHER_MB / 2, column
    assert after["memory_scope"] == runner.MEMORY_SCOPE
    assert after["predictions"] == alone["predictions"]  # its LM loaded again


@needs_linux_peak
def test_serving_memory_leaves_out_what_the_method_does_not_hold(task, make_context, backbones):
    alone = execute_zero_shot(task, make_context)
    lm = (make_context().model, "causal-lm")
    assert list(backbones._loaded) == [lm]  # it served with the LM: kept for the next run
    cache_another_runs_model(backbones)  # loaded by this experiment's run, not held by zero-shot
    after = execute_zero_shot(task, make_context)
    assert after["serve_peak_rss_mb"] < alone["serve_peak_rss_mb"] + OTHER_MB / 2
    assert list(backbones._loaded) == [lm]  # the other model freed, not merely forgotten


def test_loading_a_backbone_from_disk_is_not_charged_as_training(
    task, make_context, backbones, monkeypatch
):
    real_load = backbones_module.load

    def slow_load(*args, **kwargs):
        time.sleep(1.0)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(backbones_module, "load", slow_load)
    backbones.begin("an earlier experiment")  # so the run below loads its LM (1 s slower)
    before = backbones.load_seconds
    result = execute_zero_shot(task, make_context)
    assert backbones.load_seconds - before >= 1.0
    assert result["train_seconds"] < 0.5  # zero-shot's fit only reads the loaded model


def test_a_run_records_the_cpu_threads_it_computed_with(task, make_context):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert execute_zero_shot(task, make_context)["threads"] == 1
        torch.set_num_threads(2)
        assert execute_zero_shot(task, make_context)["threads"] == 2
    finally:
        torch.set_num_threads(before)


def test_a_run_records_the_cpu_model_it_computed_on(task, make_context):
    recorded = execute_zero_shot(task, make_context)["cpu"]
    assert recorded == costs.cpu_model() and recorded != "unknown"


def test_memory_is_not_called_the_runs_where_the_peak_cannot_be_reset(
    task, make_context, monkeypatch
):
    monkeypatch.setattr(costs, "reset_peak_rss", lambda: False)  # as on macOS: a lifetime peak
    assert execute_zero_shot(task, make_context)["memory_scope"] is None


def test_the_cost_table_flags_upper_bounds_only_where_it_reads_them():
    frame = pd.DataFrame(
        {
            "method": ["a", "a", "b", "b"],
            "n_train": [10, 100, 10, 100],
            "memory_scope": [None, runner.MEMORY_SCOPE, runner.MEMORY_SCOPE, None],
        }
    )
    assert memory_alone(frame).to_dict() == {"a": True, "b": False}  # at each largest size
    upper_bounds, columns = cost_notes(frame)
    assert upper_bounds.startswith("Memory of b: upper bounds") and columns == COLUMNS_DEFINED
    assert cost_notes(frame[frame["method"] == "a"]) == [COLUMNS_DEFINED]
