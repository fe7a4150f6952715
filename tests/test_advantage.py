"""Tests for the data-point advantage (Le Scao & Rush 2021): estimators, loading, CLI, plot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from promptworth.analysis import advantage as adv
from promptworth.analysis.curves import AnalysisError, load_long, long_from_wide
from promptworth.cli import advantage as advantage_cli
from promptworth.cli import main
from promptworth.report.advantage_plot import plot_advantage

REFERENCE = Path("/work/shared/reference/le_scao_rush")
needs_reference = pytest.mark.skipif(not REFERENCE.is_dir(), reason="reference files absent")
SIZES = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]


def linear(n: float, shift: float = 0.0) -> float:
    """Score rising by 0.004 per labeled example; ``shift`` extra examples for free."""
    return 0.5 + 0.004 * (n + shift - 10)


def long_rows(method: str, scores: dict[float, float], seeds=(0, 1, 2, 3), metric="accuracy"):
    """Long-format rows: the same score for every seed unless a seed offset is added later."""
    return [
        {"method": method, "seed": s, "n_train": n, "metric": metric, "value": v}
        for s in seeds
        for n, v in scores.items()
    ]


def frame(*row_lists) -> pd.DataFrame:
    return pd.DataFrame([row for rows in row_lists for row in rows])


@pytest.fixture
def shifted() -> pd.DataFrame:
    """'prompt' is 'head' shifted by exactly 30 labeled examples."""
    head = long_rows("head", {n: linear(n) for n in SIZES})
    prompt = long_rows("prompt", {n: linear(n, shift=30) for n in SIZES})
    return frame(head, prompt)


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(["advantage", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def write_csv(tmp_path: Path, df: pd.DataFrame, name: str = "results.csv") -> str:
    path = tmp_path / name
    df.to_csv(path, index=False)
    return str(path)


# ---- reproduction of the paper ---------------------------------------------------------------


@needs_reference
@pytest.mark.parametrize(("task", "value", "std"), [("cb", 90, 2), ("rte", 282, 34)])
def test_reproduces_published_advantage(task: str, value: int, std: int) -> None:
    long_df = load_long(REFERENCE / f"{task}.csv")
    metric = adv.resolve_metric(long_df, None)
    result = adv.estimate(long_df, "head", "prompt", metric)
    assert (round(result.advantage), round(result.std)) == (value, std)
    assert result.error_bar == "population std over 16 leave-one-seed-out combinations"


@needs_reference
def test_cli_reproduces_cb_in_text(capsys) -> None:
    argv = [str(REFERENCE / "cb.csv"), "--baseline", "head", "--method", "prompt"]
    code, out, _ = run_cli(argv, capsys)
    assert code == 0
    assert out.startswith("prompt is worth 90 ± 2 data points over head (accumulated-max")


# ---- exact hand-made curves ------------------------------------------------------------------


def test_shifted_linear_curves_give_the_shift(shifted: pd.DataFrame) -> None:
    result = adv.estimate(shifted, "head", "prompt", "accuracy")
    assert result.advantage == pytest.approx(30)
    assert result.std == pytest.approx(0, abs=1e-9)
    assert result.window == pytest.approx((linear(10, 30), linear(100)))
    reverse = adv.estimate(shifted, "prompt", "head", "accuracy")
    assert reverse.advantage == pytest.approx(-30)


def test_mean_bootstrap_on_shifted_curves(shifted: pd.DataFrame) -> None:
    result = adv.estimate(shifted, "head", "prompt", "accuracy", "mean-bootstrap")
    assert result.advantage == pytest.approx(30)
    assert (result.ci_low, result.ci_high) == pytest.approx((30, 30))
    assert "resamples of seeds" in result.error_bar


def test_log_ratio_of_curves_scaled_in_n() -> None:
    sizes = [10 * 2**k for k in range(8)]
    head = long_rows("head", {n: 0.5 + 0.05 * np.log2(n / 10) for n in sizes})
    prompt = long_rows("prompt", {n: 0.5 + 0.05 * np.log2(4 * n / 10) for n in sizes})
    result = adv.estimate(frame(head, prompt), "head", "prompt", "accuracy", "log-ratio")
    assert result.advantage == pytest.approx(4.0)
    assert result.unit == "ratio"
    assert "needs 4.0× fewer labels than head" in adv.describe(result)


def test_plateau_uses_first_size_reaching_the_level() -> None:
    curve = adv.Curve(np.array([10.0, 20.0, 30.0, 40.0]), np.array([0.5, 0.6, 0.6, 0.8]))
    needed = adv.labels_needed(curve, np.array([0.55, 0.6, 0.7]))
    assert needed == pytest.approx([15, 20, 35])


def test_accumulated_max_takes_best_seed_then_running_max() -> None:
    rows = [("head", 0, 10, 0.6), ("head", 1, 10, 0.5), ("head", 0, 20, 0.55), ("head", 1, 30, 0.7)]
    df = pd.DataFrame(rows, columns=["method", "seed", "n_train", "value"]).assign(metric="acc")
    curve = adv.accumulated_max_curve(adv.runs_for(df, "head", "acc"))
    assert curve.scores == pytest.approx([0.6, 0.6, 0.7])


# ---- zero-shot -------------------------------------------------------------------------------


def zero_shot_frame(score: float) -> pd.DataFrame:
    head = long_rows("head", {n: linear(n) for n in SIZES})
    return frame(head, long_rows("zero-shot", {0: score}))


def test_zero_shot_is_a_flat_curve_reached_with_no_labels() -> None:
    df = zero_shot_frame(0.7)
    result = adv.estimate(df, "head", "zero-shot", "accuracy")
    # window 0.5-0.7: head needs 10 + (y - 0.5) / 0.004 labels, 35 on average; zero-shot needs 0
    assert result.advantage == pytest.approx(35)
    assert result.window == pytest.approx((0.5, 0.7))
    assert any("treated as a flat curve" in note for note in result.notes)
    assert adv.estimate(df, "zero-shot", "head", "accuracy").advantage == pytest.approx(-35)


def test_zero_shot_below_the_trained_curve_is_dominated() -> None:
    with pytest.raises(AnalysisError, match="head dominates"):
        adv.estimate(zero_shot_frame(0.4), "head", "zero-shot", "accuracy")


def test_zero_shot_above_the_trained_curve_is_a_lower_bound() -> None:
    result = adv.estimate(zero_shot_frame(0.95), "head", "zero-shot", "accuracy")
    assert result.advantage == pytest.approx(55)
    assert any("lower bound" in note for note in result.notes)


def test_log_ratio_refuses_zero_shot() -> None:
    with pytest.raises(AnalysisError, match="ratio of labels needed is infinite"):
        adv.estimate(zero_shot_frame(0.7), "head", "zero-shot", "accuracy", "log-ratio")


def test_log_ratio_drops_a_zero_point_with_a_note(shifted: pd.DataFrame) -> None:
    df = pd.concat([shifted, frame(long_rows("prompt", {0: 0.45}))])
    result = adv.estimate(df, "head", "prompt", "accuracy", "log-ratio")
    assert any("leaves out the n_train = 0 point of prompt" in note for note in result.notes)


# ---- labels needed to reach a target ---------------------------------------------------------


def test_target_inside_the_range_is_interpolated(shifted: pd.DataFrame) -> None:
    target = adv.labels_to_target(shifted, "head", "accuracy", 0.6)
    assert target["n_train"] == pytest.approx(35)
    assert target["extrapolated"] is False


def power_law_frame(a: float = 0.8) -> pd.DataFrame:
    sizes = [10, 20, 50, 100, 200, 500]
    return frame(long_rows("head", {n: a - 0.5 * n**-0.5 for n in sizes}))


def test_target_beyond_the_range_is_extrapolated_from_the_fit() -> None:
    target = adv.labels_to_target(power_law_frame(), "head", "accuracy", 0.79)
    assert target["extrapolated"] is True
    assert target["n_train"] == pytest.approx(2500, rel=0.02)  # (0.5 / 0.01) ** 2
    assert target["fit"]["form"] == adv.FIT_FORM
    assert target["fit"]["r2"] == pytest.approx(1, abs=1e-6)


def test_target_above_the_asymptote_is_unreachable() -> None:
    target = adv.labels_to_target(power_law_frame(), "head", "accuracy", 0.9)
    assert (target["n_train"], target["reachable"], target["extrapolated"]) == (None, False, True)
    assert "asymptote" in target["note"]


def test_zero_shot_target() -> None:
    df = zero_shot_frame(0.7)
    assert adv.labels_to_target(df, "zero-shot", "accuracy", 0.6)["n_train"] == 0
    assert adv.labels_to_target(df, "zero-shot", "accuracy", 0.8)["reachable"] is False


# ---- notes and errors ------------------------------------------------------------------------


def test_single_seed_has_no_error_bar(shifted: pd.DataFrame) -> None:
    result = adv.estimate(shifted[shifted["seed"] == 0], "head", "prompt", "accuracy")
    assert result.advantage == pytest.approx(30)
    assert result.std is None
    assert any("no error bar" in note for note in result.notes)


def test_different_sizes_are_allowed_with_a_note(shifted: pd.DataFrame) -> None:
    df = shifted[~((shifted["method"] == "prompt") & (shifted["n_train"] == 50))]
    result = adv.estimate(df, "head", "prompt", "accuracy")
    assert result.advantage == pytest.approx(30)
    assert any("different n_train" in note for note in result.notes)


def test_no_overlap_names_the_dominating_method() -> None:
    head = long_rows("head", {10: 0.5, 100: 0.6})
    prompt = long_rows("prompt", {10: 0.7, 100: 0.8})
    with pytest.raises(AnalysisError, match="prompt dominates: it is better everywhere"):
        adv.estimate(frame(head, prompt), "head", "prompt", "accuracy")


def test_single_size_for_a_trained_method(shifted: pd.DataFrame) -> None:
    df = pd.concat([shifted, frame(long_rows("lora", {50: 0.7}))])
    with pytest.raises(AnalysisError, match=r"single training size .* at least 2 sizes"):
        adv.estimate(df, "head", "lora", "accuracy")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "nope"}, "unknown method 'nope'; known methods: head, prompt"),
        ({"metric": "bleu"}, "unknown metric 'bleu'; known metrics: accuracy"),
        ({"method": "head"}, "same"),
        ({"estimator": "median"}, "unknown estimator"),
    ],
)
def test_bad_requests(shifted: pd.DataFrame, kwargs: dict, message: str) -> None:
    request = {"baseline": "head", "method": "prompt", "metric": "accuracy"} | kwargs
    with pytest.raises(AnalysisError, match=message):
        adv.estimate(shifted, **request)


def test_metric_resolution(shifted: pd.DataFrame) -> None:
    assert adv.resolve_metric(shifted, None) == "accuracy"
    two = pd.concat([shifted.assign(metric="f1"), shifted.assign(metric="em")])
    with pytest.raises(AnalysisError, match=r"several metrics \(em, f1\)"):
        adv.resolve_metric(two, None)


def test_advantage_matrix_records_errors_instead_of_raising(shifted: pd.DataFrame) -> None:
    df = pd.concat([shifted, frame(long_rows("oracle", {10: 0.99, 100: 1.0}))])
    matrix = adv.advantage_matrix(df, "accuracy")
    assert len(matrix) == 6
    assert matrix["prompt", "head"]["advantage"] == pytest.approx(30)
    assert matrix["prompt", "head"]["error"] is None
    assert "oracle dominates" in matrix["oracle", "head"]["error"]
    assert matrix["oracle", "head"]["advantage"] is None


# ---- loading ---------------------------------------------------------------------------------


def wide_results() -> pd.DataFrame:
    """promptworth results.csv: one row per run, metrics as columns, cost columns to ignore."""
    rows = []
    for seed in (0, 1):
        rows.append(("ag_news", "m", "zero-shot", 0, seed, 0.6, 0.55, 1.5))
        rows += [("ag_news", "m", "head", n, seed, linear(n), linear(n) - 0.05, 9.0) for n in SIZES]
    cols = ["task", "model", "method", "n_train", "seed", "accuracy", "macro_f1", "train_seconds"]
    return pd.DataFrame(rows, columns=cols)


def test_wide_results_load_as_long(tmp_path: Path) -> None:
    wide = wide_results()
    wide.loc[3, "macro_f1"] = np.nan  # a run without this score contributes no point for it
    long_df = load_long(write_csv(tmp_path, wide))
    assert set(long_df["metric"]) == {"accuracy", "macro_f1"}
    assert len(long_df) == 2 * len(wide) - 1
    assert {"method", "seed", "n_train", "metric", "value"} <= set(long_df.columns)
    assert long_from_wide(wide).equals(long_df)
    result = adv.estimate(long_df, "head", "zero-shot", "accuracy")
    assert result.advantage == pytest.approx(
        22.5
    )  # window 0.5-0.6: head needs 10 + 12.5 on average


def test_mixed_tasks_must_be_selected(tmp_path: Path, capsys) -> None:
    wide = pd.concat([wide_results(), wide_results().assign(task="sst2")])
    path = write_csv(tmp_path, wide)
    code, _, err = run_cli([path, "--baseline", "head", "--method", "zero-shot"], capsys)
    assert code == 2
    assert "mix several tasks (ag_news, sst2); choose one with --task" in err
    argv = [path, "--baseline", "head", "--method", "zero-shot", "--task", "sst2"]
    assert run_cli(argv, capsys)[0] == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("method,seed,n_train,value\nhead,0,10,0.5\n", "missing column(s): metric"),
        ("method,seed,n_train,metric,value\nhead,0,10,acc,0.5\nhead,0,20,acc,abc\n", "line 3"),
        ("method,seed,n_train,metric,value\nhead,0,ten,acc,0.5\n", "column 'n_train'"),
        ("method,seed,n_train,metric,value\nhead,0,-5,acc,0.5\n", "is negative"),
        ("", "is empty"),
    ],
)
def test_bad_files_give_clear_cli_errors(tmp_path: Path, capsys, content: str, message: str):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    code, out, err = run_cli([str(path), "--baseline", "head", "--method", "p"], capsys)
    assert (code, out) == (2, "")
    assert message in err
    assert "Traceback" not in err


def test_non_numeric_value_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("method,seed,n_train,metric,value\nhead,0,10,acc,0.5\nhead,0,20,acc,abc\n")
    with pytest.raises(AnalysisError, match=r"line 3, column 'value': 'abc' is not a finite"):
        load_long(path)


def test_missing_file(capsys) -> None:
    code, _, err = run_cli(["/nonexistent.csv", "--baseline", "a", "--method", "b"], capsys)
    assert code == 2
    assert "file not found: /nonexistent.csv" in err


# ---- CLI -------------------------------------------------------------------------------------


def test_cli_json_keys(tmp_path: Path, shifted: pd.DataFrame, capsys) -> None:
    argv = [write_csv(tmp_path, shifted), "--baseline", "head", "--method", "prompt"]
    code, out, _ = run_cli([*argv, "--json", "--target", "0.6"], capsys)
    payload = json.loads(out)
    assert code == 0
    expected = {"advantage", "std", "window", "n_levels", "estimator", "method", "baseline"}
    assert expected | {"metric", "n_seeds", "notes", "targets"} <= set(payload)
    assert payload["n_seeds"] == {"prompt": 4, "head": 4}
    assert payload["n_levels"] == 1000
    assert payload["targets"]["head"]["n_train"] == pytest.approx(35)


def test_cli_json_single_seed_std_is_null(tmp_path: Path, shifted: pd.DataFrame, capsys) -> None:
    path = write_csv(tmp_path, shifted[shifted["seed"] == 0])
    _, out, _ = run_cli([path, "--baseline", "head", "--method", "prompt", "--json"], capsys)
    assert json.loads(out)["std"] is None


def test_cli_all_estimators(tmp_path: Path, shifted: pd.DataFrame, capsys) -> None:
    argv = [write_csv(tmp_path, shifted), "--baseline", "head", "--method", "prompt"]
    code, out, _ = run_cli([*argv, "--estimator", "all", "--json"], capsys)
    payload = json.loads(out)
    assert code == 0
    assert list(payload["results"]) == list(adv.ESTIMATORS)
    assert payload["results"]["mean-bootstrap"]["ci_low"] == pytest.approx(30)


def test_cli_no_overlap_is_exit_2(tmp_path: Path, capsys) -> None:
    df = frame(long_rows("head", {10: 0.5, 100: 0.6}), long_rows("prompt", {10: 0.7, 100: 0.8}))
    code, _, err = run_cli(
        [write_csv(tmp_path, df), "--baseline", "head", "--method", "prompt"], capsys
    )
    assert code == 2
    assert "prompt dominates" in err


def test_cli_choices_match_estimators() -> None:
    assert (*adv.ESTIMATORS, "all") == advantage_cli.ESTIMATOR_CHOICES


def test_cli_module_imports_only_the_standard_library() -> None:
    code = (
        "import sys, promptworth.cli.advantage; "
        "print(sorted({'numpy', 'pandas', 'scipy', 'matplotlib'} & set(sys.modules)))"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr


# ---- plot ------------------------------------------------------------------------------------


def test_plot_is_written(tmp_path: Path, shifted: pd.DataFrame) -> None:
    path = plot_advantage(shifted, "head", "prompt", "accuracy", tmp_path / "fig" / "adv.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_with_zero_shot_and_no_overlap(tmp_path: Path) -> None:
    path = plot_advantage(zero_shot_frame(0.4), "head", "zero-shot", "accuracy", tmp_path / "z.png")
    assert path.stat().st_size > 0


def best_seed_apart() -> pd.DataFrame:
    """'prompt' has one lucky seed 0.1 above the others at every size: its best seed, not its
    mean, reaches above 'head'."""
    head = long_rows("head", {n: linear(n) for n in SIZES})
    prompt = long_rows("prompt", {n: linear(n) for n in SIZES})
    for row in prompt:
        row["value"] += 0.1 if row["seed"] == 0 else 0.0
    return frame(head, prompt)


def test_seed_mean_reads_the_mean_curve_where_accumulated_max_reads_the_best_seed() -> None:
    long = best_seed_apart()
    paper = adv.estimate(long, "head", "prompt", "accuracy", "accumulated-max")
    mean = adv.estimate(long, "head", "prompt", "accuracy", "seed-mean")
    assert paper.advantage == pytest.approx(25.0, abs=0.1)  # 0.1 / 0.004 per label
    assert mean.advantage == pytest.approx(6.25, abs=0.1)  # the mean is 0.025 above: 6.25
    assert mean.error_bar.startswith("population std over 16 leave-one-seed-out")


def test_matrix_on_seed_means_does_not_call_a_lucky_seed_dominant() -> None:
    """A method whose best seed is above every score of the other but whose mean is not: the
    paper's matrix says it dominates on that seed's 0.9; the seed-mean matrix, the one the
    report shows, quotes the mean the tables show."""
    trained = long_rows("head", {n: linear(n) for n in SIZES})  # 0.5 .. 0.86
    lucky = long_rows("few", {10: 0.6, 50: 0.6, 100: 0.6}, seeds=(0, 1))
    for row in lucky:
        row["value"] = 0.9 if row["seed"] == 0 else 0.6  # mean 0.75
    long = frame(trained, lucky)
    by_best = adv.advantage_matrix(long, "accuracy")[("few", "head")]
    by_mean = adv.advantage_matrix(long, "accuracy", "seed-mean")[("few", "head")]
    assert "few: 0.9" in by_best["error"] and "few dominates" in by_best["error"]
    assert "few: 0.75" in by_mean["error"] and "dominates" not in by_mean["error"]
