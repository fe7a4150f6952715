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
    crossings,
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
    params=None,
    method_params=None,
    prompt_tokens=50.0,
):
    """A stored run whose predictions have `accuracy` on N_ROWS test rows of class 0, or the
    given `predictions` of two-class `labels`; its scores computed by sklearn; p95=None: a run
    stored before latency was measured; memory_alone=False: before each run's memory was measured
    with only its own models resident. `params`: the model's parameter count; `method_params`:
    the stored recipe."""
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
        "prompt_tokens_per_example": prompt_tokens,
        "device": "cpu",
    }
    if params is not None:
        result["total_params"] = params
    if p95 is not None:
        result |= {"latency_ms_p50": p95 * 0.8, "latency_ms_p95": p95, "serve_peak_rss_mb": memory}
        result |= {"memory_scope": MEMORY_SCOPE} if memory_alone else {}
    config = {"task": "t", "model": "m", "method": method, "n_train": n_train, "seed": seed}
    return f"{method}-{n_train}-{seed}", config | {"method_params": method_params or {}}, result


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


def test_always_on_serving_by_hand():
    # 36 ms a query; an instance half busy serves 86,400 × 0.5 / 0.036 = 1,200,000 queries a day
    inputs = Inputs(cpu_price=0.1, label_cost=0.08, utilisation=0.5, llm_input_price=0.15)
    costs = method_costs(100, 3600.0, 36.0, "cpu", inputs)
    assert costs.capacity_per_day == pytest.approx(1_200_000)
    assert costs.instances(0) == costs.instances(1_000_000) == 1  # at least one instance
    assert costs.instances(1_300_000) == 2
    year = 0.1 * 24 * 365  # one instance all year: $876
    assert costs.serving(1_000_000, 365) == pytest.approx(year)
    assert costs.total(1_300_000, 365) == pytest.approx(8.0 + 0.1 + 2 * year)
    assert costs.per_million_at(1_000_000, 365) == pytest.approx(year / 365)  # $2.40
    assert costs.per_million == pytest.approx(1.0)  # the busy-time floor, as per-second billing
    per_second = method_costs(100, 3600.0, 36.0, "cpu", inputs.changed(serving="per-second"))
    assert per_second.serving(1_000_000, 365) == pytest.approx(365.0)  # 1e6 × $1 per million
    # the hosted LLM ($16.20 per million) costs what the instance does at 884.1 / (365 × 16.2e-6)
    llm = hosted_llm_costs(100, inputs)
    assert crossings(costs, llm, 365) == [pytest.approx(884.1 / (365 * 16.2e-6), rel=1e-6)]
    # the default instance all year: the $782 an always-on c7i.large costs
    assert method_costs(0, 0.0, 5.0, "cpu", Inputs()).serving(10_000, 365) == pytest.approx(
        0.08925 * 24 * 365
    )


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
        100,
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


def test_labels_to_target_solves_the_same_log_n_line_the_budget_is_read_on():
    c = curve([10, 100, 1000], [0.5, 0.7, 0.8], [1.0, 10.0, 100.0])
    inside = to_target(c, 0.6)  # halfway between 10 and 100 in log n: sqrt(10 × 100)
    assert not inside.extrapolated and inside.labels == pytest.approx(math.sqrt(1000))
    assert inside.fewest == pytest.approx(10**1.25)  # upper end 0.55 -> 0.75: a quarter of the way
    assert inside.most == pytest.approx(10**1.75)  # lower end 0.45 -> 0.65: three quarters
    assert at_budget(c, 31).score < 0.6 <= at_budget(c, 32).score  # one line, both questions
    # past the largest size the last segment (+0.1 a decade) is extended, up to 10 × 1000
    beyond = to_target(c, 0.85)
    assert beyond.extrapolated and beyond.labels == pytest.approx(10**3.5)
    assert beyond.most == pytest.approx(1e4)  # the lower end (0.75 at 1000): right at the limit
    assert to_target(c, 0.86).most is None  # 10^4.1 labels: out of reach
    far = to_target(c, 0.95)  # 10^4.5 labels: more than 10 × the largest measured size
    assert far.labels is None and far.note == (
        "not reachable within the measured range (up to 10,000 labels)"
    )


def test_an_unreachable_target_is_worded_never_numbered():
    # flat: 0.70 at 10 labels, 0.72 at 100: 0.99 would need 10^15.5 labels
    rows = store() + [
        run("flat", n, seed, a) for n, a in ((10, 0.70), (100, 0.72)) for seed in (0, 1)
    ]
    rec = recommend(rows, Inputs(labels=100, target=0.99))
    assert rec.recommended is None
    reasons = ruled(rec)
    assert reasons["flat"].endswith(
        "; not reachable within the measured range (up to 1,000 labels)"
    )
    assert reasons["zero-shot"].endswith("; it trains on no labels, so more labels do not help")
    text = "\n".join(recommendation_lines(rec))
    assert text.startswith("## Recommendation\n\n**Verdict: No method meets every constraint")
    assert "e+" not in text and "not reachable within the measured range" in text


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


def test_target_picks_the_cheapest_method_that_reaches_it_when_the_saving_counts():
    rows = store()
    # a million queries a day: big (100 ms) needs 3 always-on instances, fast (5 ms) one
    enough = recommend(rows, Inputs(labels=100, target=0.8, queries_per_day=1e6))
    assert enough.recommended.method == "fast" and enough.runner_up.method == "big"
    assert "lower bound is below --target 0.8" in ruled(enough)["zero-shot"]
    # ten thousand a day: one instance each, fast saves cents: the more accurate big is chosen
    close = recommend(rows, Inputs(labels=100, target=0.8))
    assert close.recommended.method == "big" and close.runner_up.method == "fast"
    assert close.verdict["reason"] == (
        "Why big over fast: tied within the noise (0.920 vs 0.900) and they cost the same, "
        f"${8 + 10 * 0.08925 / 3600 + 0.08925 * 24 * 365:,.0f} a year each, so the more accurate "
        "big is chosen."
    )
    none = recommend(rows, Inputs(labels=10, target=0.95))
    assert none.recommended is None and len(none.ruled_out) == 3
    # no answer: what would give one (past the measured sizes nothing is proposed)
    assert none.what_would_change == [
        "With a target of 0.690 instead of 0.95, big becomes the recommendation."
    ]
    # big's lower bound crosses 0.85 between 10 and 100 labels, on the line the budget is read
    # on: the proposed budget is the smallest that meets the target there
    labels, *_ = recommend(rows, Inputs(labels=10, target=0.85)).what_would_change
    proposed = int(labels.split()[1])
    assert 10 < proposed < 100 and labels.startswith(f"With {proposed} labels instead of 10, big")
    met = recommend(rows, Inputs(labels=proposed, target=0.85)).recommended
    assert met.method == "big" and met.read.low >= 0.85
    assert recommend(rows, Inputs(labels=proposed - 1, target=0.85)).recommended is None


def test_the_recommendation_and_what_would_change_it():
    rec = recommend(store(), Inputs(labels=10, queries_per_day=1e6))
    doc = rec.to_json()
    assert doc["recommended"]["method"] == "big"  # 0.75 at 10 labels, alone at the top
    assert doc["recommended"]["accuracy"] == pytest.approx(0.75)
    # at 100 labels fast (0.90) is within noise of big (0.92) and needs a third of the instances
    assert any(s.startswith("With 100 labels instead of 10, fast") for s in rec.what_would_change)
    assert doc["inputs"]["labels"] == {"value": 10, "defaulted": False}
    assert (
        doc["inputs"]["cpu_price"]["defaulted"]
        and "c7i.large" in doc["inputs"]["cpu_price"]["source"]
    )
    # 1e6 queries × 0.1 s = 100,000 busy seconds a day; an instance half busy gives 43,200: 3
    assert doc["recommended"]["instances"] == 3
    expected = 10 * 0.08 + 10 * 0.08925 / 3600 + 3 * 0.08925 * 24 * 365
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
    alone = recommend(store(), Inputs(labels=100, queries_per_day=1e6)).to_json()
    assert alone["recommended"]["method"] == "fast"
    assert alone["recommended"]["memory_source"] == (
        "peak RSS of the serving process, interpreter and libraries included"
    )
    assert not any("upper bound" in note for note in recommend(store(), Inputs(labels=100)).notes)
    shared = recommend(store(memory_alone=False), Inputs(labels=100, memory_mb=400))
    assert "models of other runs resident, an upper bound" in ruled(shared)["fast"]
    assert any(note.startswith("Serving memory of fast is an upper bound") for note in shared.notes)
    oldest = recommend(store(latency=False), Inputs(labels=100, queries_per_day=1e6)).to_json()
    assert oldest["recommended"]["memory_mb"] == 600.0  # the whole run's peak
    assert oldest["recommended"]["memory_source"].startswith("peak RSS of the whole run")


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
        models=[tiny_lm_dir],
        encoders=[tiny_encoder_dir],
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


def test_report_command_ends_with_the_verdict_and_the_report_path(swept, capsys):
    assert main(["report", str(swept)]) == 0
    printed = capsys.readouterr().out.rstrip().splitlines()
    assert printed[-1] == f"Report: {swept / 'report.md'}"
    verdict = json.loads((swept / "recommendation.json").read_text())["verdict"]
    start = printed.index(
        "Recommendation (default scenario; `promptworth recommend OUT` for yours):"
    )
    assert printed[start + 1 : -1] == [line.replace("**", "") for line in verdict["lines"]]


def test_recommend_text_and_json_say_the_same(swept, capsys):
    flags = ["--labels", "8", "--queries-per-day", "500", "--target", "0.3"]
    assert main(["recommend", str(swept), *flags]) == 0
    text = capsys.readouterr().out
    assert main(["recommend", str(swept), *flags, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    for line in doc["verdict"]["lines"]:
        assert line in text
    assert all(f"| {row['flag']} |" in text for row in doc["sensitivity"])


@pytest.mark.parametrize(
    "flags, named",
    [
        (["--labels", "-3"], "--labels"),
        (["--target", "1.5"], "--target"),
        (["--latency-ms", "0"], "--latency-ms"),
        (["--cpu-price", "nan"], "--cpu-price"),
        (["--queries-per-day", "lots"], "--queries-per-day"),
        (["--utilisation", "1.5"], "--utilisation"),
        (["--serving", "spot"], "--serving"),
        (["--min-saving", "-1"], "--min-saving"),
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
    rec = recommend(imbalanced_store(), Inputs(labels=100, target=0.5), "macro_f1")
    doc = rec.to_json()
    assert doc["recommended"]["macro_f1"] == pytest.approx(macro_f1_of("balanced"))
    low, high = doc["recommended"]["ci95"]
    assert low < macro_f1_of("balanced") < high
    # majority's accuracy (0.80) passes a 0.5 target; its macro-F1 (0.44) does not
    assert ruled(rec)["majority"].startswith(f"macro-F1 {macro_f1_of('majority'):.3f} [")
    assert "at 100 labels: its lower bound is below --target 0.5" in ruled(rec)["majority"]
    text = "\n".join(recommendation_lines(rec))
    assert "Scenario: metric macro-F1; labels 100 (default); target 0.5;" in text
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
    notes = recommend(rows, Inputs(), "accuracy").notes
    assert any("exact binomial (Clopper–Pearson)" in note for note in notes)


def test_a_report_metric_that_cannot_be_read_is_named(imbalanced_out, capsys):
    (imbalanced_out / "uncertainty.json").write_text("{}")
    assert main(["recommend", str(imbalanced_out)]) == 2
    assert "uncertainty.json: no headline metric in it; give --metric" in capsys.readouterr().err
    assert main(["recommend", str(imbalanced_out), "--metric", "accuracy"]) == 0


# ---- the verdict -----------------------------------------------------------------------------


def test_the_verdict_says_the_decision_and_why_in_words():
    rec = recommend(store(), Inputs(labels=100, queries_per_day=1e6))
    v = rec.verdict
    assert v["decision"] == "labels" and v["method"] == "fast"
    assert v["headline"] == (
        "use labels: fast, +40.0 points of accuracy over the best prompt (zero-shot, 0.500; "
        f"beyond the noise) for $8.00 of labels (100 at $0.08 each); "
        f"${8.0 + 10 * 0.08925 / 3600 + 0.08925 * 24 * 365:,.0f} a year in all."
    )
    saving = 2 * 0.08925 * 24 * 365  # big needs three instances, fast one
    assert v["reason"] == (
        f"Why fast over big: tied within the noise (0.900 vs 0.920), and fast is cheaper by "
        f"${saving:,.0f} a year, above the ${0.05 * (saving * 1.5 + 8.0):,.0f} that counts "
        "(--min-saving)."
    )
    assert rec.to_json()["verdict"] == v
    lines = recommendation_lines(rec)
    assert lines[2] == f"**Verdict: {v['headline']}**  " and lines[3].startswith("Why fast over")
    prompt = recommend(store(), Inputs(labels=5)).verdict
    assert prompt["decision"] == "prompt" and prompt["headline"].startswith(
        "prompt with zero-shot (accuracy 0.500, no labels): no labelled method is left"
    )


@pytest.mark.parametrize(
    "min_saving, method", [(None, "fast"), (1_000.0, "fast"), (2_000.0, "big")]
)
def test_a_saving_below_the_threshold_goes_to_the_more_accurate_method(min_saving, method):
    # fast saves two instance-years, $1,563.66, against big at a million queries a day
    rec = recommend(store(), Inputs(labels=100, queries_per_day=1e6, min_saving=min_saving))
    assert rec.recommended.method == method
    if method == "big":
        assert rec.verdict["reason"] == (
            "Why big over fast: tied within the noise (0.920 vs 0.900); they cost the same "
            "within the $2,000 that counts (--min-saving): fast saves $1,564 a year, so the more "
            "accurate big is chosen."
        )


def test_sensitivity_names_the_inputs_that_flip_the_answer():
    rec = recommend(store(), Inputs(labels=100, queries_per_day=1e6, min_saving=1_000))
    rows = {r["input"]: r for r in rec.sensitivity}
    # the saving is two instance-years: half the price or half the horizon halves it, below $1,000
    assert rows["cpu_price"]["x0.5"]["method"] == "big" and rows["cpu_price"]["flips"]
    assert rows["horizon_days"]["x0.5"]["method"] == "big"
    assert rows["min_saving"]["x2"] == {"value": 2_000, "method": "big"}
    assert rows["label_cost"]["flips"] is False  # both pay for the same 100 labels
    assert rows["labels"]["x0.5"]["value"] == 50
    text = "\n".join(recommendation_lines(rec))
    assert "| --cpu-price | 0.08925 | **0.044625: big** | 0.1785: fast |" in text


def peer_store(ms_of_outlier: float):
    """Four methods serving one 1e8-parameter model with 50-token prompts, one of them at
    `ms_of_outlier` ms per example, and an encoder of 2e7 parameters with no peer."""
    rows = []
    for name, ms in (("a", 50.0), ("b", 60.0), ("c", 55.0), ("slow", ms_of_outlier)):
        rows += [run(name, 100, seed, 0.8, ms=ms, params=1e8) for seed in (0, 1)]
    rows += [run("lone", 100, seed, 0.8, ms=500.0, params=2e7) for seed in (0, 1)]
    return rows


def test_a_serving_time_far_off_its_family_is_flagged_never_used_silently():
    rec = recommend(peer_store(3_000.0), Inputs(labels=100, queries_per_day=1e6))
    flagged = rec.to_json()["candidates"]
    outliers = {c["method"]: c["serving_outlier"] for c in flagged if c["serving_outlier"]}
    assert set(outliers) == {"slow"}  # "lone" has no peer to be judged against
    assert outliers["slow"].startswith(
        "slow's serving time, 3,000.0 ms per example, is 55× slower than the 55.0 ms median of "
        "the methods serving the same backbone with the same prompt length (a, b, c)"
    )
    assert any(n.startswith("Outlier: slow's serving time") for n in rec.notes)
    near = recommend(peer_store(250.0), Inputs(labels=100))  # 4.5×: within the family's spread
    assert not any(c["serving_outlier"] for c in near.to_json()["candidates"])


def test_the_outlier_is_cautioned_in_the_verdict_with_its_cost_at_the_family_time():
    rows = peer_store(3_000.0)
    rows = [r for r in rows if r[1]["method"] != "slow"] + [
        run("slow", 100, seed, 0.95, ms=3_000.0, params=1e8) for seed in (0, 1)
    ]
    rec = recommend(rows, Inputs(labels=100, queries_per_day=1e6))
    assert rec.recommended.method == "slow"  # the most accurate, beyond the noise
    # 3 s a query: 3e6 busy seconds a day over 43,200 per instance = 70 instances; at the
    # family's 55 ms, 55,000 / 43,200 = 2
    fixed = 8.0 + 10 * 0.08925 / 3600
    year = 0.08925 * 24 * 365
    (caution,) = rec.verdict["cautions"]
    assert caution.endswith(
        f"At the family's median time it would cost ${fixed + 2 * year:,.0f} a year, not "
        f"${fixed + 70 * year:,.0f}."
    )
    assert f"Caution: {caution}" in rec.verdict["lines"]


def test_memory_is_labelled_a_process_peak_and_requirements_are_read_from_the_recipe():
    recipe = {"n_unlabeled": 2000, "teacher": "zero-shot", "teacher_model": ""}
    rows = [
        run("student", n, seed, a, params=22.6e6, method_params=recipe)
        for n, a in ((10, 0.6), (100, 0.8))
        for seed in (0, 1)
    ]
    rec = recommend(rows, Inputs(labels=50))
    (needs,) = rec.verdict["requirements"]
    assert needs == (
        "student: 50 labels (interpolated in log n between the recipe's runs at 10 and 100), "
        "2,000 unlabelled texts of the task, a teacher (zero-shot on m), a CPU only, a 1 kB "
        "artifact; 500 MB to serve (process peak RSS; the model itself: 22.6 M parameters, "
        "90.4 MB in float32)."
    )
    doc = rec.to_json()["recommended"]
    assert doc["unlabelled_texts"] == 2000 and doc["teacher"] == "zero-shot on m"
    assert doc["read_between"] == [10, 100]
    # a recipe that changes with the size: both ends of the interpolation are named
    rows = [
        run("student", n, seed, a, method_params={**recipe, "teacher": teacher})
        for n, a, teacher in ((10, 0.6, "zero-shot"), (100, 0.8, "head"))
        for seed in (0, 1)
    ]
    both = recommend(rows, Inputs(labels=50)).to_json()["recommended"]["teacher"]
    assert both == "zero-shot on m at 10 labels; head on m at 100 labels"
    assert recommend(rows, Inputs(labels=100)).to_json()["recommended"]["teacher"] == "head on m"


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
