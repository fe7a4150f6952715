"""scripts/quality.py writes the README's benchmark table from the store: the wide form and the
in-place replacement between markers (the numbers come from summary.csv, never typed)."""

from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def quality(load_script):
    return load_script("quality")


def summary_row(method, n_train, seeds, mean, std, low, high, train_s):
    return dict(
        method=method,
        n_train=n_train,
        n_seeds=seeds,
        accuracy_mean=mean,
        accuracy_std=std,
        accuracy_ci_low=low,
        accuracy_ci_high=high,
        train_s=train_s,
    )


def test_wide_table_one_column_per_size_in_ladder_order(quality):
    nan = float("nan")
    summary = pd.DataFrame(
        [
            summary_row("prompt-lora", 10, 3, 0.684, 0.0, 0.655, 0.713, 204.0),
            summary_row("prompt-lora", 1000, 1, 0.88, nan, 0.86, 0.901, 1412.0),
            summary_row("zero-shot", 0, 1, 0.684, nan, 0.655, 0.713, 0.0),
        ]
    )
    lines = quality.wide_markdown(summary, [10, 100, 1000]).splitlines()
    assert (
        lines[0] == "| method | seeds | 10 | 100 | 1,000 | train s (median) at 10 / 100 / 1,000 |"
    )
    assert lines[2] == "| zero-shot | 1 | 0.684 [0.655, 0.713] (no training) | | | |"
    assert lines[3] == (
        "| prompt-lora | 3/1 | 0.684 ± 0.000 [0.655, 0.713] |  | 0.880 [0.860, 0.901] "
        "| 204 / – / 1412 |"
    )


def test_table_replaced_between_markers_and_missing_markers_fail(quality, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{quality.TABLE_START}\nold\n{quality.TABLE_END}\nafter\n")
    quality.replace_between_markers(readme, "new")
    assert readme.read_text() == f"before\n{quality.TABLE_START}\nnew\n{quality.TABLE_END}\nafter\n"
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit, match=r"README\.md: no '<!-- quality-table -->'"):
        quality.replace_between_markers(readme, "new")


def stored_run(method, n_train, accuracy, selected_step, cpu="cpu-a"):
    extra = {"selected_step": selected_step}
    return (
        "k",
        {"method": method, "n_train": n_train},
        {"accuracy": accuracy, "extra": extra, "cpu": cpu},
    )


def test_a_shortfall_of_kept_starts_is_named_and_a_trained_one_is_not(quality):
    nan = float("nan")
    summary = pd.DataFrame(
        [
            summary_row("zero-shot", 0, 1, 0.684, nan, 0.655, 0.713, 0.0),
            summary_row("p-tuning", 10, 2, 0.683, 0.001, 0.65, 0.71, 100.0),
            summary_row("ia3", 10, 2, 0.683, 0.001, 0.65, 0.71, 100.0),
        ]
    )
    rows = [
        stored_run("p-tuning", 10, 0.684, 0),
        stored_run("p-tuning", 10, 0.682, 0),
        stored_run("ia3", 10, 0.684, 0),
        stored_run("ia3", 10, 0.682, 30),  # trained and below: no excuse
    ]
    lines = quality.target_lines(summary, rows)
    kept = next(line for line in lines if line.startswith("p-tuning n=10"))
    trained = next(line for line in lines if line.startswith("ia3 n=10"))
    assert "MISSED by 0.001 (every run below it kept the start" in kept and "cpu-a" in kept
    assert trained.endswith("MISSED by 0.001")


def test_recipes_apply_from_their_size_and_variants_sit_with_their_method(quality, monkeypatch):
    monkeypatch.setattr(
        quality, "RECIPES", {"distill": {10: {"teacher": "a"}, 100: {"teacher": "b"}}}
    )
    assert [quality.recipe("distill", n)["teacher"] for n in (4, 10, 99, 100, 1000)] == [
        *("a", "a", "a", "b", "b")
    ]
    assert quality.recipe("head", 100) == {}
    names = ["pet", "distill[teacher=b]", "zero-shot", "distill[teacher=a]"]
    assert sorted(names, key=quality.ladder_position) == [
        *("zero-shot", "distill[teacher=a]", "distill[teacher=b]", "pet")
    ]


def test_the_best_is_judged_over_the_most_seeds_and_a_higher_mean_over_fewer_is_named(quality):
    summary = pd.DataFrame(
        [
            summary_row("prompt-ft", 1000, 3, 0.876, 0.010, 0.85, 0.90, 100.0),
            summary_row("head", 1000, 3, 0.875, 0.006, 0.85, 0.89, 100.0),
            summary_row("dpo", 1000, 1, 0.882, float("nan"), 0.86, 0.90, 100.0),
        ]
    )
    (line,) = [line for line in quality.target_lines(summary, []) if line.startswith("best")]
    assert line == (
        "best at n=1000: prompt-ft 0.876 over 3 seeds (target 0.9): MISSED by 0.024; "
        "higher over fewer seeds: dpo 0.882 (1)"
    )


def test_a_best_over_one_seed_is_counted_in_the_singular(quality):
    summary = pd.DataFrame([summary_row("head", 1000, 1, 0.875, float("nan"), 0.85, 0.89, 100.0)])
    (line,) = [line for line in quality.target_lines(summary, []) if line.startswith("best")]
    assert line == "best at n=1000: head 0.875 over 1 seed (target 0.9): MISSED by 0.025"
