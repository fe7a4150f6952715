"""A score on a tiny test set is printed honestly: never with a zero-width 95 % interval, and with
a warning beside it below MIN_TEST_ROWS rows, in report.md, report.html, `promptworth recommend`
and its JSON."""

from __future__ import annotations

import json
import re

import pytest

from promptworth.analysis.uncertainty import MIN_TEST_ROWS
from promptworth.cli import main
from promptworth.testing import tiny_task, write_task_files

INTERVAL = re.compile(r"(\d\.\d{3}) \[(\d\.\d{3}), (\d\.\d{3})\]")
# the exact 95 % interval of one row: right [0.025, 1], wrong [0, 0.975]
ONE_ROW = {"1.000": ("0.025", "1.000"), "0.000": ("0.000", "0.975")}
WARNING = f"⚠ 1 test row (under {MIN_TEST_ROWS})"


@pytest.fixture(scope="module")
def one_row_out(tmp_path_factory, tiny_lm_dir, tiny_encoder_dir):
    """A run of two methods scored on a single test row, one seed."""
    folder = tmp_path_factory.mktemp("one-row")
    train, test = write_task_files(tiny_task(n_train=40, n_test=16), folder)
    out = folder / "out"
    argv = ["run", "--quiet", "--task", train, "--test-file", test, "--model", tiny_lm_dir]
    argv += ["--encoder", tiny_encoder_dir, "--methods", "zero-shot,features-lr"]
    argv += ["--sizes", "8", "--seeds", "1", "--test-size", "1", "--dtype", "float32"]
    assert main([*argv, "--out", str(out)]) == 0
    return out


def exact_one_row(text: str) -> list[tuple[str, str, str]]:
    """Every `score [low, high]` in `text`, each checked to be the one-row exact interval."""
    found = INTERVAL.findall(text)
    assert found
    for score, low, high in found:
        assert (low, high) == ONE_ROW[score], (score, low, high)
    return found


def test_report_shows_the_exact_interval_and_the_warning(one_row_out):
    report = (one_row_out / "report.md").read_text()
    table = [line for line in report.splitlines() if line.startswith("| zero-shot")]
    assert table and WARNING in table[0]
    exact_one_row(table[0])
    assert "exact binomial (Clopper–Pearson)" in report
    assert f"fewer than {MIN_TEST_ROWS} test rows" in report
    use = next(line for line in report.splitlines() if line.startswith("- **Use: "))
    exact_one_row(use)
    assert WARNING in use
    assert WARNING in (one_row_out / "report.html").read_text()


def test_recommendation_text_and_json_carry_it(one_row_out, capsys):
    capsys.readouterr()
    assert main(["recommend", str(one_row_out)]) == 0
    use = next(line for line in capsys.readouterr().out.splitlines() if "**Use: " in line)
    exact_one_row(use)
    assert WARNING in use
    assert main(["recommend", str(one_row_out), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    for written in (document, json.loads((one_row_out / "recommendation.json").read_text())):
        chosen = written["recommended"]
        low, high = chosen["ci95"]
        assert high - low > 0.9 and chosen["test_rows"] == 1
        assert chosen["test_rows_warning"] == WARNING


def test_results_csv_gives_every_run_a_non_zero_width_interval(one_row_out):
    import pandas as pd

    results = pd.read_csv(one_row_out / "results.csv")
    assert (results["accuracy_ci_high"] - results["accuracy_ci_low"] > 0.9).all()
    assert (results["macro_f1_ci_high"] - results["macro_f1_ci_low"] > 0.9).all()
