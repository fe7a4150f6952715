"""Shared fixtures: tiny random-weight backbones saved once per session, a tiny task, and a
headless browser for the report.html tests."""

from __future__ import annotations

import gc
import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest

# Tests never reach a model hub: every model they load is built here or shipped in a package.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from promptworth.run.sweep import SweepSpec
from promptworth.testing import (
    TINY_SWEEP_PARAMS,
    save_tiny_causal_lm,
    save_tiny_encoder,
    tiny_sweep,
    tiny_task,
    write_task_files,
)


def pytest_sessionstart(session):
    """Every run collects garbage twice to measure its own memory (runner.execute); importing
    the libraries runs use and freezing what is alive then (about 450,000 objects) spares those
    collections walking them again: measured, test_sweep.py and test_costs.py took 64 s instead
    of 108 s."""
    import peft  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import torch  # noqa: F401
    import transformers  # noqa: F401

    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session")
def load_script():
    """Import scripts/NAME.py as a module, for the tests of the repository's scripts."""

    def load(name: str):
        path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the file runs
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory):
    return str(save_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm")))


@pytest.fixture(scope="session")
def larger_tiny_lm_dir(tmp_path_factory):
    """A wider, deeper tiny causal LM (same tokenizer): the larger model of multi-model tests."""
    return str(save_tiny_causal_lm(tmp_path_factory.mktemp("larger-lm"), hidden_size=64, layers=3))


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory):
    return str(save_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder")))


@pytest.fixture
def task():
    return tiny_task()


@pytest.fixture(scope="session")
def backbones():
    """One cache per session, as in a real sweep: each tiny backbone loads once."""
    from promptworth.backbones import BackboneCache
    from promptworth.backbones.device import Placement

    return BackboneCache(Placement("cpu", "float32"))


@pytest.fixture
def make_context(task, backbones, tiny_lm_dir, tiny_encoder_dir):
    """A RunContext on the tiny task and backbones; keyword arguments override fields."""
    from promptworth.backbones.features import FeatureCache
    from promptworth.methods.base import PromptOptions, RunContext
    from promptworth.run.runner import headline_scorer

    def make(**overrides):
        fields = dict(
            task=task,
            seed=0,
            backbones=backbones,
            model=tiny_lm_dir,
            encoder=tiny_encoder_dir,
            prompt=PromptOptions(batch_size=8),
            features=FeatureCache(),
        )
        context = RunContext(**{**fields, **overrides})
        if context.task.generates and context.score_rows is None:
            context.score_rows = headline_scorer(context.task)
        return context

    return make


@pytest.fixture
def labelled(task):
    """The first 12 training rows: the labelled subset of the semi-supervised tests."""
    return task.train.subset(range(12))


@pytest.fixture
def pool(task):
    """The unlabelled rest of the training pool beside `labelled`."""
    from promptworth.tasks.subsets import Remainder

    return Remainder(task.train, list(range(12)))


@pytest.fixture(scope="session")
def tiny_task_files(tmp_path_factory):
    """A tiny task written as train/test CSV files, for sweeps that read a task from files."""
    return write_task_files(tiny_task(n_train=40, n_test=16), tmp_path_factory.mktemp("task"))


@pytest.fixture
def tiny_sweep_spec(tiny_task_files, tiny_lm_dir, tiny_encoder_dir, tmp_path) -> SweepSpec:
    """The tiny sweep over the task files: 3 methods x sizes 4 and 8 x 2 seeds, float32."""
    out = tmp_path / "out"
    return tiny_sweep(
        tiny_task_files, tiny_lm_dir, tiny_encoder_dir, out, method_params=TINY_SWEEP_PARAMS
    )


def chromium() -> str | None:
    """A chromium-like browser: $PROMPTWORTH_CHROMIUM, else the first on PATH."""
    names = ("chromium", "chromium-browser", "google-chrome")
    return os.environ.get("PROMPTWORTH_CHROMIUM") or next(
        filter(None, map(shutil.which, names)), None
    )


@pytest.fixture
def browser_page():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed: scripts/setup.sh --browser"
    )
    executable = chromium()
    if executable is None:
        pytest.skip("no chromium found (PROMPTWORTH_CHROMIUM or PATH): scripts/setup.sh --browser")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser.new_page(viewport={"width": 1400, "height": 1000})
        browser.close()


@pytest.fixture(autouse=True)
def tiny_task_pool(monkeypatch):
    """multitask's test pool (Multitask.test_params): the names tiny-pool-a and tiny-pool-b
    load two small tasks with their own labels and templates; other names load as usual."""
    from promptworth.methods import multitask
    from promptworth.testing import tiny_pool_task

    load, problem = multitask.load_pooled, multitask.pool_problem
    tiny = "tiny-pool-"
    monkeypatch.setattr(
        multitask, "load_pooled", lambda s: tiny_pool_task(s) if s.startswith(tiny) else load(s)
    )
    monkeypatch.setattr(
        multitask, "pool_problem", lambda s: None if s.startswith(tiny) else problem(s)
    )
