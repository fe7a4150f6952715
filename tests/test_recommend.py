"""The recommender: break-even arithmetic by hand, reading curves at a budget, labels to a target,
constraints, Pareto dominance, and `promptworth recommend` on a tiny sweep's store."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score

from promptworth.cli import main
from promptworth.errors import PromptworthError
from promptworth.recommend import Inputs, recommend
from promptworth.recommend.curve import at_budget, to_target
from promptworth.recommend.measured import Curve
from promptworth.recommend.pareto import pareto
from promptworth.recommend.tco import (
    Costs,
    break_even,
    crossing,
    hosted_llm_costs,
    method_costs,
)
from promptworth.recommend.text import recommendation_lines
from promptworth.run.runner import MEMORY_SCOPE

N_ROWS = 200


def run(
    method,
    n_train,
    seed,
    accuracy=None,
    ms=5.0,
    p95=6.0,
    memory=500.0,
    train_seconds=10.0,
    labels=None,
    predictions=None,
    memory_alone=True,
):
    """A stored run whose predictions have `accuracy` on N_ROWS test rows of class 0, or the
    given `predictions` of two-class `labels`; its scores computed by sklearn; p95=None: a run
    stored before latency was measured; memory_alone=False: before each run's memory was measured
    with only its own models resident."""
    if labels is None:
        right = round(accuracy * N_ROWS)
        labels, predictions = [0] * N_ROWS, [0] * right + [1] * (N_ROWS - right)
    result = {
        "accuracy": accuracy_score(labels, predictions),
        "macro_f1": f1_score(labels, predictions, labels=[0, 1], average="macro", zero_division=0),
        "n_labels": 2,
        "n_test": len(labels),
        "predictions": predictions,
        "test_labels": labels,
        "train_seconds": train_seconds,
        "eval_ms_per_example": ms,
        "peak_rss_mb": memory + 100,
        "artifact_bytes": 1000,
        "prompt_tokens_per_example": 50.0,
        "device": "cpu",
    }
    if p95 is not None:
        result |= {"latency_ms_p50": p95 * 0.8, "latency_ms_p95": p95, "serve_peak_rss_mb": memory}
        result |= {"memory_scope": MEMORY_SCOPE} if memory_alone else {}
    config = {"task": "t", "model": "m", "method": method, "n_train": n_train, "seed": seed}
    return f"{method}-{n_train}-{seed}", config | {"method_params": {}}, result


def store(latency: bool = True, memory_alone: bool = True):
    """zero-shot 0.50; fast: 0.30 at 10 labels, 0.90 at 100, 5 ms; big: 0.75 and 0.92, 100 ms.
    latency=False: a store written before batch-1 latency was measured; memory_alone=False:
    before each run's memory was measured alone (fast's second seed: one such run is enough)."""

    def p95(value):
        return value if latency else None

    rows = [run("zero-shot", 0, 0, 0.5, ms=50, p95=p95(60), memory=1000)]
    for seed in (0, 1):
        alone = memory_alone or seed == 0
        rows += [
            run("fast", 10, seed, 0.3, p95=p95(6)),
            run("fast", 100, seed, 0.9, p95=p95(6), memory_alone=alone),
            run("big", 10, seed, 0.75, ms=100, p95=p95(120), memory=4000),
            run("big", 100, seed, 0.92, ms=100, p95=p95(120), memory=4000),
        ]
    return rows


# ---- break-even arithmetic, by hand ------------------------------------------------------------


def test_crossing_volume_is_the_hand_computed_one():
    # a: $12 once, $0.001 a query; b: nothing once, $0.004 a query; 100 days.
    # 12 + q·100·0.001 = q·100·0.004  <=>  q = 12 / 0.3 = 40 queries a day, both then cost $16.
    a, b = Costs(labelling=10.0, training=2.0, per_query=0.001), Costs(0.0, 0.0, 0.004)
    assert crossing(a, b, days=100) == pytest.approx(40.0, rel=1e-12)
    assert a.total(40, 100) == pytest.approx(16.0) == b.total(40, 100)
    assert crossing(a, Costs(0.0, 0.0, 0.001), days=100) is None  # parallel lines
    assert crossing(a, Costs(20.0, 0.0, 0.002), days=100) is None  # b dearer at every volume


def test_break_even_document():
    inputs = Inputs(queries_per_day=40, horizon_days=100)
    doc = break_even({"a": Costs(10.0, 2.0, 0.001), "b": Costs(0.0, 0.0, 0.004)}, inputs)
    assert doc["crossings"] == [{"a": "a", "b": "b", "queries_per_day": pytest.approx(40.0)}]
    at = doc["volumes_per_day"].index(40)
    assert doc["curves"]["a"][at] == pytest.approx(16.0) == doc["curves"]["b"][at]
    assert doc["curves"]["b"][0] == pytest.approx(10 * 100 * 0.004)  # first volume: 10 a day


def test_method_and_hosted_llm_costs_by_hand():
    inputs = Inputs(cpu_price=0.1, gpu_price=3.6, label_cost=0.08, llm_input_price=0.15)
    cpu = method_costs(100, 3600.0, 36.0, "cpu", inputs)
    assert cpu.labelling == pytest.approx(8.0)  # 100 labels × $0.08
    assert cpu.training == pytest.approx(0.1)  # one hour at $0.10
    assert cpu.per_million == pytest.approx(1.0)  # 1e6 × 0.036 s × $0.10 / 3600 s
    assert method_costs(0, 0.0, 1.0, "cuda", inputs).per_million == pytest.approx(1.0)
    # 100 prompt tokens at $0.15/M + 2 answer tokens at $0.60/M = $16.20 per million queries
    assert hosted_llm_costs(100, inputs).per_million == pytest.approx(16.2)


# ---- reading a curve -----------------------------------------------------------------------


def curve(sizes, means, seconds):
    means = np.asarray(means, dtype=float)
    return Curve(
        np.asarray(sizes, dtype=float),
        means,
        means - 0.05,
        means + 0.05,
        np.asarray(seconds),
        "",
        "accuracy",
    )


def test_accuracy_between_measured_sizes_is_interpolated_in_log_n():
    c = curve([10, 1000], [0.5, 0.7], [10.0, 1000.0])
    read = at_budget(c, 100)  # halfway in log n
    assert read.how == "interpolated" and read.labels == 100
    assert read.score == pytest.approx(0.6)
    assert (read.low, read.high) == (pytest.approx(0.55), pytest.approx(0.65))
    assert read.train_seconds == pytest.approx(100.0)  # training time: linear in n
    assert at_budget(c, 5) is None  # below the smallest measured size: no measurement
    capped = at_budget(c, 5000)
    assert capped.how.startswith("capped") and capped.labels == 1000 and capped.score == 0.7


def long_curve(means):
    return pd.DataFrame(
        [
            {"method": "m", "seed": seed, "n_train": n, "metric": "accuracy", "value": value}
            for n, value in zip((10, 100, 1000), means)
            for seed in (0, 1)
        ]
    )


def test_labels_to_target_interpolated_or_extrapolated_and_flagged():
    long_df = long_curve([0.5, 0.7, 0.8])
    inside = to_target(long_df, "m", "accuracy", 0.6)
    assert not inside.extrapolated and inside.labels == pytest.approx(55.0)  # 10 + 0.5 × 90
    outside = to_target(long_df, "m", "accuracy", 0.85)
    assert outside.extrapolated and outside.labels > 1000


# ---- constraints and ranking ---------------------------------------------------------------


def ruled(recommendation):
    return {r["method"]: r["reason"] for r in recommendation.ruled_out}


def test_latency_memory_and_labels_rule_methods_out():
    rows = store()
    slow = recommend(rows, Inputs(labels=100, latency_ms=50))
    assert "latency p95 120.0 ms" in ruled(slow)["big"] and "--latency-ms 50" in ruled(slow)["big"]
    assert "zero-shot" in ruled(slow) and slow.recommended.method == "fast"
    memory = recommend(rows, Inputs(labels=100, memory_mb=2000))
    assert set(ruled(memory)) == {"big"} and "--memory-mb 2000" in ruled(memory)["big"]
    few = recommend(rows, Inputs(labels=5))
    assert "measured only from 10 labels" in ruled(few)["fast"]
    assert few.recommended.method == "zero-shot" and few.runner_up is None


def test_target_picks_the_cheapest_method_that_reaches_it():
    rows = store()
    enough = recommend(rows, Inputs(labels=100, target=0.8))
    assert enough.recommended.method == "fast" and enough.runner_up.method == "big"
    assert "below --target 0.8" in ruled(enough)["zero-shot"]
    none = recommend(rows, Inputs(labels=10, target=0.95))
    assert none.recommended is None and len(none.ruled_out) == 3
    # no answer: what would give one
    assert none.what_would_change == [
        "With a target of 0.750 instead of 0.95, big becomes the recommendation."
    ]


def test_the_recommendation_and_what_would_change_it():
    rec = recommend(store(), Inputs(labels=10))
    doc = rec.to_json()
    assert doc["recommended"]["method"] == "big"  # 0.75 at 10 labels, alone at the top
    assert doc["recommended"]["accuracy"] == pytest.approx(0.75)
    # at 100 labels fast (0.90) is within noise of big (0.92) and twenty times cheaper to serve
    assert any(s.startswith("With 100 labels instead of 10, fast") for s in rec.what_would_change)
    assert doc["inputs"]["labels"] == {"value": 10, "defaulted": False}
    assert (
        doc["inputs"]["cpu_price"]["defaulted"]
        and "c7i.large" in doc["inputs"]["cpu_price"]["source"]
    )
    expected = 10 * 0.08 + 10 * 0.08925 / 3600 + 10_000 * 365 * 0.1 * 0.08925 / 3600
    assert doc["recommended"]["total_cost"] == pytest.approx(expected)


def test_runs_without_batch1_latency_are_flagged_derived_never_invented():
    rec = recommend(store(latency=False), Inputs(labels=100, latency_ms=50))
    doc = rec.to_json()
    assert doc["recommended"]["latency_source"].startswith("derived")
    assert doc["recommended"]["latency_ms_p95"] is None
    assert doc["recommended"]["latency_ms_p50"] == 5.0  # the batched ms per example
    assert "derived from batched throughput" in ruled(rec)["big"]  # even its lower bound: 100 ms
    assert any("Batch-1 latency was not measured" in note for note in rec.notes)


def test_memory_says_whether_it_was_measured_alone_or_is_an_upper_bound():
    alone = recommend(store(), Inputs(labels=100)).to_json()
    assert alone["recommended"]["method"] == "fast"
    assert alone["recommended"]["memory_source"] == "serving peak RSS"
    assert not any("upper bound" in note for note in recommend(store(), Inputs(labels=100)).notes)
    shared = recommend(store(memory_alone=False), Inputs(labels=100, memory_mb=400))
    assert "models of other runs resident, an upper bound" in ruled(shared)["fast"]
    assert any(note.startswith("Serving memory of fast is an upper bound") for note in shared.notes)
    oldest = recommend(store(latency=False), Inputs(labels=100)).to_json()
    assert oldest["recommended"]["memory_mb"] == 600.0  # the whole run's peak
    assert oldest["recommended"]["memory_source"].startswith("whole-run peak RSS")


# ---- Pareto ----------------------------------------------------------------------------------


def test_pareto_dominance_on_a_hand_made_set():
    points = [
        {"method": "a", "accuracy": 0.9, "serving_cost_per_million": 1.0, "labels": 100},
        {"method": "b", "accuracy": 0.8, "serving_cost_per_million": 2.0, "labels": 10},
        {"method": "c", "accuracy": 0.7, "serving_cost_per_million": 3.0, "labels": 100},
        {"method": "d", "accuracy": 0.9, "serving_cost_per_million": 1.0, "labels": 100},
        {"method": "e", "accuracy": 0.6, "serving_cost_per_million": 0.5, "labels": 0},
    ]
    flags = {
        p["method"]: (p["dominated_cost"], p["dominated_labels"])
        for p in pareto(points, "accuracy")["points"]
    }
    # equal points (a, d) do not dominate each other; c is beaten by a on both axes
    assert flags == {
        "a": (False, False),
        "b": (True, False),
        "c": (True, True),
        "d": (False, False),
        "e": (False, False),
    }


# ---- the command on a tiny sweep -------------------------------------------------------------


@pytest.fixture(scope="module")
def swept(tmp_path_factory, tiny_lm_dir, tiny_encoder_dir):
    from promptworth.run.sweep import Sweep, SweepSpec
    from promptworth.testing import tiny_task, write_task_files

    folder = tmp_path_factory.mktemp("recommend")
    train, test = write_task_files(tiny_task(n_train=40, n_test=16), folder)
    spec = SweepSpec(
        task=train,
        test_file=test,
        model=tiny_lm_dir,
        encoder=tiny_encoder_dir,
        methods=["zero-shot", "head"],
        sizes=[4, 8],
        seeds=[0],
        dtype="float32",
        out=folder / "out",
    )
    _, failures = Sweep(spec, quiet=True).execute()
    assert not failures and main(["report", str(spec.out)]) == 0
    return spec.out


def test_recommend_command_json_and_report(swept, capsys):
    assert (
        main(["recommend", str(swept), "--labels", "8", "--queries-per-day", "500", "--json"]) == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["recommended"]["method"] in {"zero-shot", "head"}
    for key in ("inputs", "runner_up", "ruled_out", "what_would_change", "break_even", "pareto"):
        assert key in doc
    assert doc["recommended"]["latency_source"] == "measured at batch size 1"
    assert doc["recommended"]["latency_ms_p95"] >= doc["recommended"]["latency_ms_p50"] > 0
    assert doc["inputs"]["queries_per_day"] == {"value": 500.0, "defaulted": False}
    results = pd.read_csv(swept / "results.csv")
    assert (results["latency_ms_p50"] > 0).all() and (results["serve_peak_rss_mb"] > 0).all()
    report = (swept / "report.md").read_text()
    assert report.index("## Recommendation") < report.index("## Accuracy")
    assert (swept / "break_even.png").stat().st_size > 0 and (swept / "pareto.png").exists()
    assert json.loads((swept / "recommendation.json").read_text())["inputs"]["labels"]["defaulted"]
    assert main(["recommend", str(swept)]) == 0
    assert "## Recommendation" in capsys.readouterr().out


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--labels", "-3"], "--labels"),
        (["--target", "1.5"], "--target"),
        (["--latency-ms", "0"], "--latency-ms"),
        (["--cpu-price", "nan"], "--cpu-price"),
        (["--queries-per-day", "lots"], "--queries-per-day"),
    ],
)
def test_bad_flags_exit_2_with_one_line(swept, capsys, flags, named):
    assert main(["recommend", str(swept), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err


def test_inputs_refuse_bad_values_naming_the_flag():
    with pytest.raises(PromptworthError, match=r"--llm-output-tokens 1\.5"):
        Inputs(llm_output_tokens=1.5)
    assert math.isclose(Inputs.from_given(target=None).queries_per_day, 10_000)


def test_runs_stored_without_costs_are_ruled_out_never_priced():
    rows = store()
    for _, _, result in rows:
        del result["device"]
    rec = recommend(rows, Inputs())
    assert rec.recommended is None and rec.to_json()["pareto"]["points"] == []
    assert all("serving cost is unknown" in r["reason"] for r in rec.ruled_out)


# ---- the headline metric -------------------------------------------------------------------

# 160 test rows of class 0, 40 of class 1. "majority" says 0 for all: accuracy 0.80, macro-F1
# 0.44 (class 1 never found). "balanced" finds 38 of the 40 but mislabels 70 of the 160: accuracy
# 0.64, macro-F1 0.61. Same costs: accuracy ranks majority first, macro-F1 balanced.
IMBALANCED = [0] * 160 + [1] * 40
GUESSES = {
    "majority": [0] * 200,
    "balanced": [0] * 90 + [1] * 70 + [1] * 38 + [0] * 2,
}


def imbalanced_store():
    return [
        run(method, n, seed, labels=IMBALANCED, predictions=guesses)
        for method, guesses in GUESSES.items()
        for n in (10, 100)
        for seed in (0, 1)
    ]


def macro_f1_of(method):
    return f1_score(IMBALANCED, GUESSES[method], average="macro")


@pytest.mark.parametrize("metric, best", [("accuracy", "majority"), ("macro_f1", "balanced")])
def test_the_recommendation_ranks_by_the_headline_metric(metric, best):
    rec = recommend(imbalanced_store(), Inputs(labels=100), metric)
    doc = rec.to_json()
    assert doc["metric"] == metric and doc["recommended"]["method"] == best
    assert set(GUESSES) - {best} == {doc["runner_up"]["method"]}
    other = {"accuracy": "macro_f1", "macro_f1": "accuracy"}[metric]
    assert metric in doc["recommended"] and other not in doc["recommended"]
    assert all(metric in p and other not in p for p in doc["pareto"]["points"])


def test_macro_f1_reads_target_and_text_in_macro_f1():
    rec = recommend(imbalanced_store(), Inputs(labels=100, target=0.6), "macro_f1")
    doc = rec.to_json()
    assert doc["recommended"]["macro_f1"] == pytest.approx(macro_f1_of("balanced"))
    low, high = doc["recommended"]["ci95"]
    assert low < macro_f1_of("balanced") < high
    # majority's accuracy (0.80) passes a 0.6 target; its macro-F1 (0.44) does not
    assert ruled(rec)["majority"].startswith(
        f"macro-F1 {macro_f1_of('majority'):.3f} at 100 labels is below --target 0.6"
    )
    text = "\n".join(recommendation_lines(rec))
    assert "Scenario: metric macro-F1; labels 100 (default); target 0.6;" in text
    assert f"**Use: balanced**: macro-F1 {macro_f1_of('balanced'):.3f} [{low:.3f}" in text
    assert "accuracy" not in text.split("Ruled out")[0]


@pytest.fixture
def imbalanced_out(tmp_path):
    from promptworth.store.database import RunStore

    store = RunStore(tmp_path / "runs.sqlite")
    for key, config, result in imbalanced_store():
        store.record(key, config, result)
    return tmp_path


def test_recommend_command_metric_flag_and_the_reports_metric(imbalanced_out, capsys):
    out = str(imbalanced_out)
    assert main(["recommend", out, "--metric", "macro_f1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["metric"] == "macro_f1" and doc["recommended"]["method"] == "balanced"
    assert doc["recommended"]["macro_f1"] == pytest.approx(macro_f1_of("balanced"))
    assert main(["recommend", out, "--json"]) == 0  # no report yet: accuracy
    assert json.loads(capsys.readouterr().out)["recommended"]["method"] == "majority"
    # a report written by macro-F1 sets the command's default, and report.md agrees with it
    assert main(["report", out, "--metric", "macro_f1"]) == 0
    assert "**Use: balanced**: macro-F1" in (imbalanced_out / "report.md").read_text()
    assert json.loads((imbalanced_out / "recommendation.json").read_text())["metric"] == "macro_f1"
    assert "macro-F1 at your label budget" in (imbalanced_out / "report.html").read_text()
    capsys.readouterr()
    assert main(["recommend", out]) == 0
    printed = capsys.readouterr().out
    assert "**Use: balanced**: macro-F1" in printed
    assert "Ranked by macro-F1, the headline metric of the report" in printed
    assert main(["recommend", out, "--metric", "accuracy", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["recommended"]["method"] == "majority"


def test_the_bootstrap_runs_once_per_report(tmp_path, monkeypatch):
    """write_outputs hands its intervals to the recommendation: one bootstrap per (method,
    size); `recommend` alone computes them once."""
    from promptworth.analysis import uncertainty
    from promptworth.report.outputs import write_outputs

    calls = []
    interval = uncertainty.accuracy_interval
    monkeypatch.setattr(
        uncertainty, "accuracy_interval", lambda *a: calls.append(a[1:]) or interval(*a)
    )
    rows = imbalanced_store()
    groups = {(c["method"], c["n_train"]) for _, c, _ in rows}
    write_outputs(rows, tmp_path, ["- counted"], metric="macro_f1")
    assert len(calls) == len(groups) and set(calls) == {("macro_f1",)}
    calls.clear()
    recommend(rows, Inputs(), "accuracy")
    assert len(calls) == len(groups) and set(calls) == {("accuracy",)}


def test_macro_f1_without_per_row_labels_is_refused_accuracy_falls_back():
    rows = store()
    for _, _, result in rows:
        del result["test_labels"]
    with pytest.raises(PromptworthError, match=r"at n_train=\d+: no macro_f1 interval.*--metric"):
        recommend(rows, Inputs(), "macro_f1")
    assert any("test rows only" in note for note in recommend(rows, Inputs(), "accuracy").notes)


def test_a_report_metric_that_cannot_be_read_is_named(imbalanced_out, capsys):
    (imbalanced_out / "uncertainty.json").write_text("{}")
    assert main(["recommend", str(imbalanced_out)]) == 2
    assert "uncertainty.json: no headline metric in it; give --metric" in capsys.readouterr().err
    assert main(["recommend", str(imbalanced_out), "--metric", "accuracy"]) == 0


def test_the_recommendation_gives_the_fit_command_of_its_run(swept, tmp_path, capsys):
    """The command trains the recommended method with the chosen run's stored config."""
    from promptworth.store.database import RunStore

    args = ["recommend", str(swept), "--labels", "8", "--queries-per-day", "500"]
    assert main([*args, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    fit = doc["fit"]
    assert fit["argv"][:2] == ["promptworth", "fit"] and "--out" in fit["argv"]
    assert "read from files" in fit["note"]  # the store names a file task by its name only
    assert main(args) == 0
    assert f"`{fit['command']}`" in capsys.readouterr().out
    method = doc["recommended"]["method"]
    (config,) = [
        c
        for _, c, _ in RunStore(swept / "runs.sqlite").load()
        if c["method"] == method and c["n_train"] == doc["recommended"]["labels_used"]
    ]
    argv = fit["argv"][1:]  # after the program name
    task = swept.parent / "train.csv"
    argv[argv.index("--task") + 1 : argv.index("--task") + 2] = [str(task)]
    argv[argv.index("--out") + 1] = str(tmp_path / "model")
    assert main([*argv, "--test-file", str(swept.parent / "test.csv")]) == 0
    described = json.loads((tmp_path / "model" / "artifact.json").read_text())
    assert described["run_config"] == {k: v for k, v in config.items() if k != "test_size"}
