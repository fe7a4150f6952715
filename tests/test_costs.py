"""What a run is charged: its own models' memory, and no time for loading a backbone from disk."""

from __future__ import annotations

import time

import pytest
import torch

from promptworth import backbones as backbones_module
from promptworth import costs, runner
from promptworth.backbones import Backbone
from promptworth.methods import make_method

OTHER = ("another-runs-model", "encoder")  # the cache's key: spec and kind
OTHER_MB = 400


def execute_zero_shot(task, make_context) -> dict:
    return runner.execute(make_method("zero-shot"), task.train, task.test, make_context())


@pytest.mark.skipif(not costs.reset_peak_rss(), reason="needs Linux's resettable RSS peak")
def test_a_runs_memory_leaves_out_models_cached_for_other_runs(task, make_context, backbones):
    alone = execute_zero_shot(task, make_context)
    # a 400 MB model an earlier run of the sweep loaded, still in the process's cache
    weights = torch.ones(OTHER_MB * 2**20 // 4)
    spec, kind = OTHER
    backbones._loaded[OTHER] = Backbone(spec, "r0", kind, weights, None, backbones.placement)
    del weights
    beside = execute_zero_shot(task, make_context)
    for column in ("serve_peak_rss_mb", "peak_rss_mb"):
        assert beside[column] < alone[column] + OTHER_MB / 2, column
    assert OTHER not in backbones._loaded
    assert beside["memory_scope"] == runner.MEMORY_SCOPE
    assert beside["predictions"] == alone["predictions"]  # the model it needs loads again


def test_loading_a_backbone_from_disk_is_not_charged_as_training(
    task, make_context, backbones, monkeypatch
):
    real_load = backbones_module.load

    def slow_load(*args, **kwargs):
        time.sleep(1.0)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(backbones_module, "load", slow_load)
    backbones.release()  # the run below loads its LM (1 s more than usual)
    before = backbones.load_seconds
    result = execute_zero_shot(task, make_context)
    assert backbones.load_seconds - before >= 1.0
    assert result["train_seconds"] < 0.5  # zero-shot's fit only reads the loaded model
