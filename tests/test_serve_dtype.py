"""Serving precisions (--serve-dtype): each trained model served again in fp32, bf16, int8 and
NF4 on the run's test rows, paired with the run's own predictions; failures recorded."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from promptworth.errors import PromptworthError
from promptworth.methods import make_method, method_class
from promptworth.methods.base import Prediction
from promptworth.run import runner, serve_dtype
from promptworth.store.config import RunConfig

needs_quantizers = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("torchao", "bitsandbytes")),
    reason="torchao and bitsandbytes not installed: pip install 'promptworth[quantize]'",
)


def run_with_variants(method, task, make_context, precisions):
    return runner.execute(method, task.train, task.test, make_context(), serve_dtypes=precisions)


@needs_quantizers
def test_a_merged_lora_model_is_served_at_every_precision_with_a_paired_test(task, make_context):
    method = make_method("prompt-lora", max_steps=2, batch_size=4)
    result = run_with_variants(method, task, make_context, serve_dtype.SERVE_DTYPES)
    variants = result["serving_variants"]
    assert list(variants) == list(serve_dtype.SERVE_DTYPES)
    for precision, record in variants.items():
        assert "failed" not in record, (precision, record)
        assert record["metric"] == "accuracy"
        assert len(record["predictions"]) == len(task.test)
        assert record["accuracy"] == pytest.approx(
            np.mean(np.array(record["predictions"]) == task.test.labels)
        )
        assert record["difference"] == pytest.approx(record["accuracy"] - result["accuracy"])
        low, high = record["difference_ci95"]
        assert low <= record["difference"] <= high
        assert record["significant_drop"] == (high < 0)
        assert record["latency_ms_p50"] <= record["latency_ms_p95"]
        assert record["eval_examples_per_second"] > 0
    # the run itself is fp32 here: the fp32 copy predicts what the run predicted
    assert variants["fp32"]["predictions"] == result["predictions"]
    sizes = {precision: variants[precision]["weights_bytes"] for precision in variants}
    assert sizes["bf16"] == sizes["fp32"] / 2
    # int8 and nf4 keep the embeddings and output layer at the run's fp32; on layers this small
    # NF4's per-layer code book and scales outweigh its half byte per weight
    assert sizes["fp32"] > max(sizes["int8"], sizes["nf4"])


@needs_quantizers
@pytest.mark.parametrize("name", ["encoder-ft", "ia3", "prompt-tuning", "few-shot", "prompt-ft"])
def test_other_served_models_are_quantized_too(name, task, make_context):
    """An encoder classifier, unmerged PEFT models (their base layers quantized under the
    adapter), virtual tokens, in-context demonstrations, a fully fine-tuned LM."""
    method = make_method(name, **method_class(name).test_params)
    variants = run_with_variants(method, task, make_context, ("int8", "nf4"))["serving_variants"]
    for record in variants.values():
        assert "failed" not in record, record
        assert len(record["predictions"]) == len(task.test)


@needs_quantizers
def test_the_quantized_copy_leaves_the_shared_backbone_as_it_was(task, make_context, backbones):
    context = make_context()
    before = {
        name: tensor.clone()
        for name, tensor in backbones.get(context.model, "causal-lm").model.state_dict().items()
    }
    result = run_with_variants(make_method("zero-shot"), task, make_context, ("int8", "nf4"))
    assert all("failed" not in record for record in result["serving_variants"].values())
    after = backbones.get(context.model, "causal-lm").model.state_dict()
    assert all(after[name].equal(tensor) for name, tensor in before.items())


def test_a_variant_whose_output_is_nan_is_a_recorded_failure(task, make_context, monkeypatch):
    def broken(model, compute_dtype):  # a quantizer that ruins every weight
        import torch

        with torch.no_grad():
            for parameter in model.parameters():
                parameter.fill_(float("nan"))
        return model

    monkeypatch.setitem(serve_dtype.QUANTIZERS, "int8", broken)
    monkeypatch.setattr(serve_dtype, "library_installed", lambda module: True)
    result = run_with_variants(make_method("zero-shot"), task, make_context, ("fp32", "int8"))
    assert "failed" not in result["serving_variants"]["fp32"]
    assert result["serving_variants"]["int8"] == {
        "failed": "degenerate output: NaN or infinite label scores"
    }


def test_a_variant_that_cannot_be_built_is_a_failure_with_its_reason(
    task, make_context, monkeypatch
):
    def refuses(model, compute_dtype):
        raise RuntimeError("no kernel for this layer")

    monkeypatch.setitem(serve_dtype.QUANTIZERS, "nf4", refuses)
    monkeypatch.setattr(serve_dtype, "library_installed", lambda module: True)
    record = run_with_variants(make_method("zero-shot"), task, make_context, ("nf4",))[
        "serving_variants"
    ]["nf4"]
    assert record["failed"] == "RuntimeError: no kernel for this layer"
    assert "refuses" in record["trace"]


def test_a_missing_quantization_library_is_a_failure_naming_the_install(
    task, make_context, monkeypatch
):
    monkeypatch.setattr(serve_dtype, "library_installed", lambda module: False)
    record = run_with_variants(make_method("zero-shot"), task, make_context, ("int8",))
    assert record["serving_variants"]["int8"] == {
        "failed": "torchao is not installed: pip install 'promptworth[quantize]'"
    }


def test_one_label_for_every_row_is_degenerate_only_when_the_run_spread_its_labels():
    constant = Prediction(np.zeros(6, dtype=int))
    assert serve_dtype.degenerate(constant, {"predictions": [0, 1, 0, 1, 2, 0]}) == (
        "degenerate output: every row predicted label 0"
    )
    assert serve_dtype.degenerate(constant, {"predictions": [0] * 6}) is None
    ranked = Prediction(np.array([0, 1]), scores=np.array([[0.0, -np.inf], [-1.0, 0.0]]))
    assert serve_dtype.degenerate(ranked, {"predictions": [0, 1]}) is None  # -inf: not givable


def test_a_method_serving_no_model_of_its_own_records_not_applicable(
    task, make_context, tiny_encoder_dir
):
    method = make_method("features-lr")
    result = run_with_variants(method, task, make_context, ("int8",))
    assert "serves no transformers model" in result["serving_variants"]["int8"]["not_applicable"]


def test_serve_dtypes_enter_the_run_key_only_when_asked_and_in_one_spelling():
    plain = RunConfig("t", "v", "m", "r", "e", "r", "zero-shot", {}, 0, 0, 8, "balanced", "float32")
    assert "serve_dtypes" not in plain.to_dict()
    served = RunConfig(**{**plain.__dict__, "serve_dtypes": ("fp32", "int8")})
    assert served.key() != plain.key()
    assert serve_dtype.checked_serve_dtypes(["int8", "fp32"]) == ("fp32", "int8")
    with pytest.raises(PromptworthError, match=r"--serve-dtype 'int4': choose among fp32"):
        serve_dtype.checked_serve_dtypes(["int4"])


def test_a_precision_whose_library_is_missing_is_refused_before_any_model_loads(monkeypatch):
    monkeypatch.setattr(serve_dtype, "library_installed", lambda module: module != "bitsandbytes")
    assert serve_dtype.checked_serve_dtypes(["int8", "bf16"]) == ("bf16", "int8")
    with pytest.raises(PromptworthError) as refused:
        serve_dtype.checked_serve_dtypes(["nf4"])
    assert str(refused.value) == (
        "--serve-dtype nf4: bitsandbytes is not installed: pip install 'promptworth[quantize]'"
    )


@needs_quantizers
def test_run_serve_dtype_stores_the_variants_and_reports_which_to_deploy(
    tiny_task_files, tiny_lm_dir, tiny_encoder_dir, tmp_path
):
    from promptworth.analysis.serve_dtypes import deploy_precision
    from promptworth.cli import main
    from promptworth.recommend.text import precision_lines
    from promptworth.store.database import RunStore

    out = tmp_path / "out"
    arguments = [
        *("--task", tiny_task_files[0], "--test-file", tiny_task_files[1]),
        *("--model", tiny_lm_dir, "--encoder", tiny_encoder_dir),
        *("--methods", "zero-shot,features-lr", "--sizes", "8", "--seeds", "1"),
        *("--dtype", "float32", "--quiet", "--out", str(out), "--serve-dtype", "nf4,fp32"),
    ]
    assert main(["run", *arguments]) == 0
    rows = RunStore(out / "runs.sqlite").load()
    stored = {config["method"]: result for _, config, result in rows}
    assert list(stored["zero-shot"]["serving_variants"]) == ["fp32", "nf4"]
    assert "not_applicable" in stored["features-lr"]["serving_variants"]["nf4"]
    report = (out / "report.md").read_text()
    assert "## Serving precision" in report
    assert '<section id="serving"><h2>Serving precision</h2>' in (out / "report.html").read_text()
    assert "| zero-shot | 0 | nf4 | 1 |" in report
    assert "| features-lr | 8 | nf4 | 1 | — |" in report
    assert "- features-lr: no precision served in every run without a drop." in report
    recommendation = json.loads((out / "recommendation.json").read_text())
    chosen, best = recommendation["serve_precision"], recommendation["recommended"]
    assert chosen == deploy_precision(rows, best["method"], best["serving_precision"])
    assert list(chosen["measured"]) == ["fp32", "nf4"]
    assert precision_lines(chosen)[0] in report


def summary_of(records: list[dict], precision: str = "int8"):
    from promptworth.analysis.serve_dtypes import precision_summaries

    rows = [
        ("k", {"method": "m", "n_train": 8, "seed": i}, {"serving_variants": r})
        for i, r in enumerate(records)
    ]
    return precision_summaries(rows, ["m"] * len(rows))


def served(weights: int, drop: bool = False) -> dict:
    return {
        "metric": "accuracy",
        "accuracy": 0.5,
        "difference": -0.1 if drop else 0.0,
        "significant_drop": drop,
        "latency_ms_p50": 1.0,
        "eval_examples_per_second": 10.0,
        "weights_bytes": weights,
    }


def test_the_deployed_precision_is_the_smallest_that_never_dropped_or_failed():
    from promptworth.analysis.serve_dtypes import deployable

    clean = {"fp32": served(400), "bf16": served(200), "int8": served(100), "nf4": served(50)}
    one_drop = {**clean, "nf4": served(50, drop=True)}
    summaries = summary_of([clean, one_drop])
    assert deployable(summaries)["m"].precision == "int8"
    failing = {**clean, "int8": {"failed": "degenerate output: every row predicted label 0"}}
    summaries = summary_of([clean, {**failing, "nf4": served(50, drop=True)}])
    assert deployable(summaries)["m"].precision == "bf16"
    statuses = {s.precision: s.status() for s in summaries}
    assert statuses["int8"] == (
        "failed in 1 of 2 runs: degenerate output: every row predicted label 0"
    )
    assert statuses["nf4"] == "significant drop in 1 of 2 runs"


def run_row(seed: int, variants: dict) -> tuple:
    """A stored run of method m at 8 labels on 40 rows: 600 MB to serve at the precision it ran
    at (550 MB of weights, a 50 MB activation peak), 20 ms per example, 30 ms at batch 1."""
    result = {
        "accuracy": 0.8,
        "n_test": 40,
        "n_labels": 2,
        "test_labels": [0] * 40,
        "predictions": [0] * 32 + [1] * 8,
        "train_seconds": 10.0,
        "eval_ms_per_example": 20.0,
        "latency_ms_p50": 30.0,
        "latency_ms_p95": 35.0,
        "serving_memory_mb": 600.0,
        "serving_activation_peak_mb": 50.0,
        "artifact_bytes": 1000,
        "prompt_tokens_per_example": 50.0,
        "total_params": 1e8,
        "device": "cpu",
        "serving_variants": variants,
    }
    config = {"task": "t", "model": "lm", "method": "m", "n_train": 8, "seed": seed}
    return f"m-{seed}", {**config, "method_params": {}}, result


def test_the_recommender_chooses_the_precision_with_the_method_and_the_scenario_limits():
    from promptworth.recommend import Inputs, recommend
    from promptworth.recommend.text import candidate_line, precision_lines

    clean = {"fp32": served(800 * 2**20), "int8": served(100 * 2**20)}
    rows = [run_row(0, clean), run_row(1, clean)]
    answer = recommend(rows, Inputs(labels=8)).to_json()
    best = answer["recommended"]
    # one always-on instance either way: the same cost, so the smaller memory decides
    assert best["serving_precision"] == "int8" and best["memory_mb"] == 150.0  # 100 + 50
    assert best["ms_per_example_batched"] == 100.0  # 10 examples a second at int8
    chosen = answer["serve_precision"]
    assert chosen["precision"] == "int8" and chosen["weights_mb"] == 100
    assert precision_lines(chosen)[0].startswith("  Serve it at **int8**: 100.00 MB of weights")
    card = candidate_line("Use", best, "accuracy")
    assert "Served at int8 (+0.000 against the precision it ran at, within the noise)." in card
    # too large at the precision it ran at and at fp32, within the limit at int8: kept, at int8
    assert (
        recommend(rows, Inputs(labels=8, memory_mb=200)).to_json()["recommended"]["method"] == "m"
    )
    ruled = recommend(rows, Inputs(labels=8, memory_mb=100)).to_json()["ruled_out"]
    assert ruled == [
        {
            "method": "m",
            "reason": "600 MB (weights, buffers and arrays the method holds to serve, plus its "
            "activation peak) exceeds --memory-mb 100 (and at fp32, int8)",
        }
    ]
    # a precision failing in one run is no option: the run's own precision stands
    rows[1][2]["serving_variants"] = {**clean, "int8": {"failed": "ValueError: no kernel"}}
    answer = recommend(rows, Inputs(labels=8)).to_json()
    assert answer["recommended"]["serving_precision"] is None  # 600 MB beats fp32's 800 + 50
    assert precision_lines(answer["serve_precision"])[0].startswith(
        "  Serve it at the precision it ran at: no serving precision"
    )
    assert recommend(rows[:1], Inputs(labels=8, memory_mb=200)).to_json()["ruled_out"] == []
