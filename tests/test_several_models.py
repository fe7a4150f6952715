"""Several backbones in one sweep: two tiny random-weight causal LMs of different sizes run into
one store, and every table, test, figure and the recommendation keeps them apart; the optional
packaged model (gemma-3-270m) and its chunked GGUF file, without the real model."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from promptworth.analysis.curves import AnalysisError, check_single_group
from promptworth.analysis.results import method_labels, recipes_by_size
from promptworth.backbones.packaged import (
    DIGESTS,
    PACKAGED,
    PackagedModel,
    joined_gguf,
    listed_digest,
)
from promptworth.cli import main
from promptworth.errors import PromptworthError
from promptworth.methods import method_class
from promptworth.report.colors import method_color
from promptworth.run.sweep import Sweep


def planned(spec) -> dict[tuple[str, str, str], int]:
    """Runs per (method, model, encoder) of the spec's plan."""
    counts: dict[tuple[str, str, str], int] = {}
    for run in Sweep(spec, quiet=True).plan():
        key = (run.config.method, Path(run.config.model).name, Path(run.config.encoder).name)
        counts[key] = counts.get(key, 0) + 1
    return counts


@pytest.fixture
def two_models(tiny_sweep_spec, tiny_lm_dir, larger_tiny_lm_dir):
    return dataclasses.replace(tiny_sweep_spec, models=[tiny_lm_dir, larger_tiny_lm_dir])


def test_each_method_runs_on_each_backbone_it_reads(two_models, tiny_encoder_dir, tmp_path):
    small, large = (Path(m).name for m in two_models.models)
    encoder = Path(tiny_encoder_dir).name
    spec = dataclasses.replace(two_models, methods=["zero-shot", "head", "encoder-head"])
    assert planned(spec) == {
        ("zero-shot", small, encoder): 1,
        ("zero-shot", large, encoder): 1,
        ("head", small, encoder): 4,
        ("head", large, encoder): 4,
        ("encoder-head", small, encoder): 4,  # reads no causal LM: once, keyed with the first
    }
    # the runs of one model are keyed as in a sweep of that model alone
    alone = Sweep(dataclasses.replace(spec, models=spec.models[:1]), quiet=True).plan()
    both = {run.config.key() for run in Sweep(spec, quiet=True).plan()}
    assert {run.config.key() for run in alone} <= both
    # several encoders: the encoder methods run on each, the causal-LM methods once
    other = Path(shutil.copytree(tiny_encoder_dir, tmp_path / "encoder-copy"))
    spec = dataclasses.replace(spec, models=spec.models[:1], encoders=[tiny_encoder_dir, other])
    assert planned(spec) == {
        ("zero-shot", small, encoder): 1,
        ("head", small, encoder): 4,
        ("encoder-head", small, encoder): 4,
        ("encoder-head", small, other.name): 4,
    }


LM, ENCODER = ("causal-lm",), ("encoder",)


@pytest.mark.parametrize(
    ("method", "params", "read"),
    [
        ("zero-shot", {}, LM),
        ("prompt-lora", {}, LM),
        ("few-shot", {}, LM),
        ("few-shot", {"selection": "knn"}, LM + ENCODER),
        ("head", {}, LM),
        ("features-lr", {}, ENCODER),
        ("features-lr", {"backbone": "causal-lm"}, LM),
        ("encoder-ft", {}, ENCODER),
        ("distill", {}, LM + ENCODER),  # a prompt-lora teacher, an encoder-ft student
        ("distill", {"teacher": "a-method-since-renamed"}, LM + ENCODER),
    ],
)
def test_each_method_says_which_backbones_it_reads(method, params, read):
    assert method_class(method).reads_backbones(params) == read


def test_backbone_lists_are_checked_before_any_model_loads(two_models, capsys):
    with pytest.raises(PromptworthError, match=r"^--models: empty; give at least one causal LM"):
        Sweep(dataclasses.replace(two_models, models=[]), quiet=True)
    small = two_models.models[0]
    with pytest.raises(PromptworthError, match=r"--models: .* given more than once"):
        Sweep(dataclasses.replace(two_models, models=[small, small + "/"]), quiet=True)
    with pytest.raises(PromptworthError, match=r"models/nowhere"):
        Sweep(dataclasses.replace(two_models, models=[small, "models/nowhere"]), quiet=True)
    with pytest.raises(PromptworthError, match=r"^--models: a list of backbones, not the string"):
        Sweep(dataclasses.replace(two_models, models=small), quiet=True)
    assert main(["run", "--model", small, "--models", small]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_labels_name_the_backbone_only_where_a_store_holds_several():
    def config(method, model, **params):
        return {
            "method": method,
            "model": model,
            "encoder": "e",
            "method_params": params,
            "n_train": 4,
        }

    one = [config("zero-shot", "/m/small"), config("head", "/m/small")]
    assert method_labels(one) == ["zero-shot", "head"]
    several = [*one, config("zero-shot", "/m/large"), config("encoder-head", "/m/small")]
    assert method_labels(several) == [
        "zero-shot[model=small]",
        "head[model=small]",
        "zero-shot[model=large]",
        "encoder-head[encoder=e]",
    ]
    assert method_color("head[model=small]") == method_color("head[model=large]")
    # two model directories of one name are spelt whole
    twins = [config("zero-shot", "/a/lm"), config("zero-shot", "/b/lm")]
    assert method_labels(twins) == ["zero-shot[model=/a/lm]", "zero-shot[model=/b/lm]"]


def test_a_recipe_that_changes_with_size_stays_one_curve_per_model():
    def sized(model, n_train, teacher):
        params = {"teacher": teacher, "teacher_params": {}}
        return {
            "method": "distill",
            "model": model,
            "encoder": "e",
            "n_train": n_train,
            "method_params": params,
        }

    configs = [
        sized(model, n, "zero-shot" if n == 10 else "head")
        for model in ("/m/small", "/m/large")
        for n in (10, 100)
    ]
    assert method_labels(configs) == ["distill[model=small]"] * 2 + ["distill[model=large]"] * 2
    recipe = [([10], "teacher=zero-shot"), ([100], "teacher=head")]
    assert recipes_by_size(configs) == {
        "distill[model=small]": recipe,
        "distill[model=large]": recipe,
    }


def test_advantage_compares_models_but_never_pools_one_curve_over_two():
    rows = [
        {"method": m, "model": model, "seed": 0, "n_train": n, "metric": "accuracy", "value": v}
        for m, model in (("a[model=x]", "x"), ("b[model=y]", "y"))
        for n, v in ((4, 0.5), (8, 0.6))
    ]
    check_single_group(pd.DataFrame(rows))
    rows[0]["model"] = "y"  # one method's curve over two models
    with pytest.raises(AnalysisError, match="mix several models"):
        check_single_group(pd.DataFrame(rows))


def test_two_models_in_one_sweep_report_and_recommendation_by_model(
    tiny_task_files, tiny_lm_dir, larger_tiny_lm_dir, tiny_encoder_dir, tmp_path
):
    out = tmp_path / "out"
    arguments = [
        *("--task", tiny_task_files[0], "--test-file", tiny_task_files[1]),
        *("--models", f"{tiny_lm_dir},{larger_tiny_lm_dir}", "--encoder", tiny_encoder_dir),
        *("--methods", "zero-shot,head,prompt-lora", "--param", "prompt-lora.max_steps=2"),
        *("--sizes", "4,8", "--seeds", "2", "--dtype", "float32", "--quiet", "--out", str(out)),
    ]
    assert main(["run", *arguments]) == 0
    small, large = Path(tiny_lm_dir).name, Path(larger_tiny_lm_dir).name
    results = pd.read_csv(out / "results.csv")
    assert len(results) == 2 * (1 + 2 * 4)
    for model, name in ((tiny_lm_dir, small), (larger_tiny_lm_dir, large)):
        runs = results[results["backbone"] == model]
        assert set(runs["method"]) == {f"{m}[model={name}]" for m in ("zero-shot", "head")} | {
            f"prompt-lora[model={name}]"
        }
        assert (runs["model"] == model).all()
    assert (
        results.groupby("backbone")["total_params"].min().loc[larger_tiny_lm_dir]
        > (results.groupby("backbone")["total_params"].min().loc[tiny_lm_dir])
    )
    # every summary row, paired test and advantage pair is one model's method
    summary = pd.read_csv(out / "summary.csv")
    assert (
        len(summary) == 2 * (1 + 2 * 2)
        and summary["method"].str.contains("[model=", regex=False).all()
    )
    pairs = json.loads((out / "advantage.json").read_text())["pairs"]
    assert not any("mix several" in (p["error"] or "") for p in pairs)
    # the model axis: costs per model, the best method per model and size, the cross-model
    # question, the curves as small multiples by model
    report = (out / "report.md").read_text()
    models = report.split("## Models", 1)[1].split("\n## ", 1)[0]
    assert f"| {small} | float32 |" in models and f"| {large} | float32 |" in models
    assert models.index(f"| {small} | float32 |") < models.index(f"| {large} | float32 |")
    assert f"| {small} | zero-shot[model={small}] " in models
    question = (
        f"How many labelled examples is {large}'s prompt worth over {small}'s best fine-tune?"
    )
    assert question in models
    assert (out / "learning_curves_by_model.png").stat().st_size > 0
    assert 'id="models"' in (out / "report.html").read_text()
    # the recommendation chooses among (method x model) and names the model
    recommendation = json.loads((out / "recommendation.json").read_text())
    candidates = recommendation["candidates"]
    assert {c["model"] for c in candidates} == {tiny_lm_dir, larger_tiny_lm_dir}
    assert all(c["method"].endswith(f"[model={Path(c['model']).name}]") for c in candidates)
    chosen = recommendation["recommended"]
    assert f"use labels: {chosen['method']}" in recommendation["verdict"]["lines"][0]
    assert f"--model {chosen['model']} " in recommendation["fit"]["command"]
    # `promptworth report` rebuilds the same report from the store alone
    assert main(["report", str(out)]) == 0
    assert (out / "report.md").read_text() == report


def test_the_gemma_alias_without_its_package_names_the_extra_before_anything_loads(
    two_models, monkeypatch, capsys
):
    real = importlib.util.find_spec
    chunk = PACKAGED["gemma-3-270m"].chunks[-1]  # the extra installs the chunks too
    monkeypatch.setattr(importlib.util, "find_spec", lambda n: None if n == chunk else real(n))
    spec = dataclasses.replace(two_models, models=[two_models.models[0], "gemma-3-270m"])
    with pytest.raises(PromptworthError) as error:
        Sweep(spec, quiet=True)
    line = str(error.value)
    assert "\n" not in line and "pip install 'promptworth[gemma]'" in line
    assert line.startswith("--model gemma-3-270m: model 'gemma-3-270m' needs the package")


def fake_chunked_model(root: Path, parts: list[bytes], listed: bytes) -> PackagedModel:
    """A model whose GGUF file is split over chunk packages, as gemma-3-270m's is."""
    name = "tiny.gguf"
    chunks = tuple(f"tinygguf_part{i}" for i in range(1, len(parts) + 1))
    for i, (package, part) in enumerate(zip(chunks, parts)):
        (root / package / "data").mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
        (root / package / "data" / f"{name}.part{i:02d}").write_bytes(part)
    (root / "tinygguf" / "data").mkdir(parents=True)
    (root / "tinygguf" / "__init__.py").write_text("")
    digest = hashlib.sha256(listed).hexdigest()
    (root / "tinygguf" / DIGESTS).write_text(f"{digest}  {name}\n")
    return PackagedModel("tiny", "tinygguf", "tinygguf", name, "causal-lm", "tiny", chunks)


def test_a_chunked_gguf_is_joined_once_into_the_cache_under_its_digest(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("PROMPTWORTH_CACHE", str(tmp_path / "cache"))
    parts = [b"GGUF" + bytes(range(200)), bytes(100), b"end"]
    model = fake_chunked_model(tmp_path / "site", parts, b"".join(parts))
    joined = joined_gguf(model)
    assert joined.read_bytes() == b"".join(parts)
    assert joined.parent.name == listed_digest(model) and joined.is_relative_to(tmp_path / "cache")
    assert joined_gguf(model) == joined  # reused, not joined again


def test_chunks_that_do_not_join_into_the_listed_digest_are_refused(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("PROMPTWORTH_CACHE", str(tmp_path / "cache"))
    model = fake_chunked_model(tmp_path / "site", [b"GGUF", b"one"], b"GGUF-other")
    with pytest.raises(PromptworthError, match="reinstall it with `pip install --force-reinstall"):
        joined_gguf(model)
    assert not list((tmp_path / "cache" / "gguf").iterdir())  # nothing half-written is kept
