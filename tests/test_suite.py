"""`promptworth suite`: the cross-task table from a store, the CLI on tiny backbones, the data
section (truncation, rare classes, imbalance) and the macro-F1 headline."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from promptworth.analysis import uncertainty as unc
from promptworth.cli import main
from promptworth.report.data import data_lines, profile, truncation
from promptworth.report.suite import cross_task_lines, cross_task_rows
from promptworth.run.suite import default_prompt_method
from promptworth.store.database import RunStore
from promptworth.tasks.base import Split
from promptworth.testing import tiny_task, tiny_tokenizer


def stored(task: str, method: str, n_train: int, seed: int, accuracy: float, f1: float):
    """A store row (key, config, result) with the given scores."""
    config = {
        "task": task,
        "task_version": "v1",
        "model": "m",
        "method": method,
        "method_params": {},
        "n_train": n_train,
        "seed": seed,
    }
    result = {"accuracy": accuracy, "macro_f1": f1, "n_test": 100}
    return f"{task}-{method}-{n_train}-{seed}", config, result


def two_task_store() -> list:
    """alpha: head 0.5 -> 0.8, prompt-lora 0.7 -> 0.9 at 10 -> 100 labels, zero-shot 0.75;
    beta: the same curves without zero-shot. Macro-F1 is accuracy minus 0.1 everywhere."""
    rows = []
    for task in ("alpha", "beta"):
        for seed in (0, 1):
            for method, scores in (("head", (0.5, 0.8)), ("prompt-lora", (0.7, 0.9))):
                for n, score in zip((10, 100), scores):
                    rows.append(stored(task, method, n, seed, score, score - 0.1))
    rows.append(stored("alpha", "zero-shot", 0, 0, 0.75, 0.65))
    return rows


def test_cross_task_rows_and_advantage_cells():
    table = cross_task_rows(two_task_store(), "prompt-lora")
    assert [row.task for row in table] == ["alpha", "beta"]
    alpha, beta = table
    # By hand: on the window [0.7, 0.8] head needs 10 + (y - 0.5)/0.3·90 labels, prompt-lora
    # 10 + (y - 0.7)/0.2·90; both linear in y, so the mean over the levels is at y = 0.75.
    assert alpha.over_baseline.advantage == pytest.approx(85 - 32.5, abs=0.1)
    assert alpha.over_baseline.std == pytest.approx(0)  # identical seeds
    assert beta.over_baseline.advantage == pytest.approx(52.5, abs=0.1)
    # zero-shot (flat at 0.75, 0 labels) against prompt-lora on the window [0.7, 0.75]
    assert alpha.over_zero_shot.advantage == pytest.approx(-(10 + 0.025 / 0.2 * 90), abs=0.1)
    assert beta.over_zero_shot.advantage is None
    assert "zero-shot not run" in beta.over_zero_shot.reason
    assert alpha.best == {10: ("zero-shot", 0.75), 100: ("prompt-lora", 0.9)}
    assert beta.best == {10: ("prompt-lora", 0.7), 100: ("prompt-lora", 0.9)}
    lines = cross_task_lines(table, "prompt-lora", "accuracy")
    assert "| alpha | 52 ± 0 | -21 ± 0 [1] | zero-shot (0.750) | prompt-lora (0.900) |" in lines
    assert "| beta | 52 ± 0 | n/a [2] | prompt-lora (0.700) | prompt-lora (0.900) |" in lines
    assert lines[-2].startswith("- [1] alpha, over zero-shot: zero-shot has no training data")
    assert lines[-1] == "- [2] beta, over zero-shot: zero-shot not run on this task"


def test_cross_task_table_on_macro_f1_and_no_overlap():
    rows = [r for r in two_task_store() if r[1]["task"] == "alpha"]
    [alpha] = cross_task_rows(rows, "prompt-lora", metric="macro_f1")
    assert alpha.best[100] == ("prompt-lora", pytest.approx(0.8))  # macro-F1, not accuracy
    assert alpha.over_baseline.advantage == pytest.approx(52.5, abs=0.1)  # same shape, shifted
    low = [stored("alpha", "zero-shot", 0, 0, 0.6, 0.5)]
    base = [r for r in rows if r[1]["method"] != "zero-shot"]
    [row] = cross_task_rows(base + low, "prompt-lora")
    assert row.over_zero_shot.advantage is None and row.over_zero_shot.reason  # never overlap
    [row] = cross_task_rows(rows, "zero-shot")
    assert "zero-shot itself" in row.over_zero_shot.reason


def test_default_prompt_method():
    assert default_prompt_method(["zero-shot", "head", "prompt-lora"]) == "prompt-lora"
    assert default_prompt_method(["zero-shot", "head", "features-lr"]) == "zero-shot"
    with pytest.raises(Exception, match="no prompt method"):
        default_prompt_method(["head", "features-lr"])


def write_csv(path, task):
    labels = [task.label_names[y] for y in task.train.labels]
    pd.DataFrame({"text": task.train.texts, "label": labels}).to_csv(path, index=False)
    return str(path)


def test_suite_cli_on_two_tiny_tasks(tmp_path, tiny_lm_dir, tiny_encoder_dir, capsys):
    alpha = write_csv(tmp_path / "alpha.csv", tiny_task(n_train=60, seed=0))
    beta = write_csv(tmp_path / "beta.csv", tiny_task(n_train=60, seed=1))
    out = tmp_path / "out"
    argv = ["suite", "--tasks", f"{alpha},{beta}", "--model", tiny_lm_dir]
    argv += ["--encoder", tiny_encoder_dir, "--methods", "zero-shot,head,prompt-lora"]
    argv += ["--param", "prompt-lora.max_steps=2", "--sizes", "6,12", "--seeds", "2"]
    argv += ["--test-size", "10", "--dtype", "float32", "--max-text-tokens", "4", "--allow-overlap"]
    code = main([*argv, "--metric", "macro_f1", "--quiet", "--out", str(out)])
    assert code == 0
    document = json.loads((out / "suite.json").read_text())
    assert document["metric"] == "macro_f1" and document["prompt_method"] == "prompt-lora"
    assert [row["task"] for row in document["tasks"]] == ["alpha", "beta"]
    for row in document["tasks"]:
        cell = row["over_baseline"]
        assert (cell["advantage"] is None) != (cell["reason"] is None)  # a number or a reason
        assert set(row["best"]) == {"6", "12"} or set(row["best"]) == {6, 12}
    report = (out / "report.md").read_text()
    assert "| alpha |" in report and "| beta |" in report
    assert "## Data" in report and "> 4" in report  # every tiny text is over 4 tokens
    # the set-up lines `run` writes too (cli.setup_lines)
    assert f"- model: `{tiny_lm_dir}`; encoder: `{tiny_encoder_dir}`; device cpu, " in report
    assert "- methods: zero-shot, head, prompt-lora; sizes [6, 12], " in report
    assert "- prompt: template 0 of each task\n- headline metric: macro_f1\n" in report
    assert (out / "suite.png").stat().st_size > 0
    for task in ("alpha", "beta"):
        assert "Macro-F1 by number" in (out / "tasks" / task / "report.md").read_text()
    results = pd.read_csv(out / "tasks" / "alpha" / "results.csv")
    assert set(results["task"]) == {"alpha"}
    printed = capsys.readouterr().out
    assert "prompt-lora over head" in printed
    for task in ("alpha", "beta"):  # each task's verdict, then its report
        verdict = printed.split(f"\n{task}:\nRecommendation (default scenario")[1]
        assert "\nVerdict: " in verdict.split("Report:")[0]
        assert f"Report: {out / 'tasks' / task / 'report.md'}" in verdict
    assert printed.rstrip().endswith(f"Report: {out / 'report.md'}")


def test_suite_holds_each_task_out_of_the_multitask_pool_in_turn(
    tmp_path, tiny_lm_dir, tiny_encoder_dir, capsys
):
    """`suite --methods … multitask`: on each task the adapter learns the other tasks only, and
    each task's report values it in labelled examples of that task."""
    alpha = write_csv(tmp_path / "alpha.csv", tiny_task(n_train=40, seed=0))
    beta = write_csv(tmp_path / "beta.csv", tiny_task(n_train=40, seed=1))
    out = tmp_path / "out"
    argv = ["suite", "--tasks", f"{alpha},{beta}", "--model", tiny_lm_dir]
    argv += ["--encoder", tiny_encoder_dir, "--methods", "prompt-lora,multitask"]
    argv += ["--param", "prompt-lora.max_steps=2", "--param", "multitask.max_steps=2"]
    argv += ["--param", "multitask.per_task=8", "--param", f"multitask.tasks={alpha},{beta}"]
    argv += ["--sizes", "6,12", "--seeds", "1", "--test-size", "10", "--dtype", "float32"]
    assert main([*argv, "--allow-overlap", "--quiet", "--out", str(out)]) == 0
    rows = RunStore(out / "runs.sqlite").load()
    for task, other in (("alpha", "beta"), ("beta", "alpha")):
        (run,) = [(c, r) for _, c, r in rows if c["method"] == "multitask" and c["task"] == task]
        assert run[0]["n_train"] == 0
        assert [seen["task"] for seen in run[1]["extra"]["seen_tasks"]] == [other]
        pairs = json.loads((out / "tasks" / task / "advantage.json").read_text())["pairs"]
        assert ("multitask", "prompt-lora") in {(p["baseline"], p["method"]) for p in pairs}


def test_suite_refuses_a_bad_task_before_any_run(tmp_path, tiny_lm_dir, capsys):
    alpha = write_csv(tmp_path / "alpha.csv", tiny_task(n_train=60, seed=0))
    argv = ["suite", "--tasks", f"{alpha},no_such_file.csv", "--model", tiny_lm_dir]
    argv += [
        "--methods",
        "zero-shot",
        "--sizes",
        "6",
        "--allow-overlap",
        "--out",
        str(tmp_path / "o"),
    ]
    assert main(argv) == 2
    assert "no such file: no_such_file.csv" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # no task ran, no store was made
    assert main(["suite", "--tasks", "sst2,sst2", "--out", str(tmp_path / "o")]) == 2
    assert "sst2 given more than once" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    again = write_csv(tmp_path / "other" / "alpha.csv", tiny_task(n_train=60, seed=1))
    argv[2] = f"{alpha},{again}"
    assert main(argv) == 2
    assert "are both task 'alpha'" in capsys.readouterr().err


def test_truncation_counts_tokens_cut():
    tokenizer = tiny_tokenizer("causal-lm")
    texts = ["sports", "sports sports sports sports sports sports"]
    lengths = [len(tokenizer(t, add_special_tokens=False).input_ids) for t in texts]
    budget = lengths[0]
    cut = truncation(texts, tokenizer, budget)
    assert (cut.n_texts, cut.n_cut) == (2, 1)
    assert cut.tokens_cut == cut.max_cut == lengths[1] - budget == cut.mean_cut
    assert cut.max_tokens == lengths[1]


def test_data_section_names_rare_classes_and_imbalance():
    pool = Split([f"t{i}" for i in range(103)], np.array([0] * 80 + [1] * 20 + [2] * 3))
    test = Split(["a", "b", "c"], np.array([0, 1, 2]))
    p = profile("messy", ["big", "mid", "tiny"], pool, test, test.texts)
    assert p.rare() == ["tiny"]
    text = "\n".join(data_lines([p]))
    assert "| messy | 3 | 103 | 3 | 26.7 | — | 0 |" in text
    assert "rare classes (under 5% of the training pool): tiny (3)" in text
    assert "imbalanced training pool, largest/smallest class 26.7" in text
    assert "imbalanced test rows" not in text  # 1 of each


def test_macro_f1_interval_and_paired_test_from_stored_predictions():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 200)
    runs = []
    for seed, p in enumerate((0.6, 0.7)):
        predictions = np.where(rng.random(200) < p, labels, rng.integers(0, 3, 200))
        f1 = f1_score(labels, predictions, labels=range(3), average="macro", zero_division=0)
        result = {
            "accuracy": float((labels == predictions).mean()),
            "macro_f1": float(f1),
            "n_test": 200,
            "predictions": predictions.tolist(),
            "test_labels": labels.tolist(),
            "test_digest": "rows",
        }  # no n_labels: recovered from the stored macro-F1
        config = {"n_train": 10, "seed": seed}
        runs.append(unc.ScoredRun.from_store(f"k{seed}", "m", config, result))
    assert runs[0].classes() == 3
    interval = unc.accuracy_interval(runs, "macro_f1")
    assert interval.mean == pytest.approx(np.mean([r.macro_f1 for r in runs]))
    assert interval.low < interval.mean < interval.high and interval.metric == "macro_f1"
    [pair] = [unc.paired_comparison([runs[0]], [runs[1]], "macro_f1")]
    assert pair.difference == pytest.approx(runs[1].macro_f1 - runs[0].macro_f1)
    assert pair.low < pair.difference < pair.high


def test_run_suite_and_report_share_their_flags():
    """suite takes every flag of run but --task, --test-file and the scaling flags (a suite runs
    locally); report its --metric and --compare: one definition each (cli/arguments.py)."""
    from promptworth.cli import build_parser

    (commands,) = [a for a in build_parser()._actions if a.dest == "command"]

    def flags(command: str) -> dict:
        parser = commands.choices[command]
        return {
            a.dest: (a.option_strings, a.default, a.choices, a.help, a.type)
            for a in parser._actions
            if a.dest != "help"
        }

    run, suite, report = flags("run"), flags("suite"), flags("report")
    scaling = {"executor", "ray_address", "ray_timeout", "run_cpus", "run_gpus", "mlflow"}
    assert set(run) - set(suite) == {"task", "test_file", *scaling}
    assert set(suite) - set(run) == {"tasks", "prompt_method"}
    assert all(suite[dest] == run[dest] for dest in set(run) & set(suite))
    assert set(report) == {"out", "metric", "compare", "measure_serving"}
    assert report["metric"] == run["metric"] and report["compare"] == run["compare"]
