"""Generation tasks as data: task type and references, task files, the built-in xsum, nq_open
and asdiv, and a sweep over a generation task through the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from promptworth.analysis import uncertainty as unc
from promptworth.cli import main
from promptworth.errors import PromptworthError
from promptworth.methods import make_method
from promptworth.report.outputs import report_metric
from promptworth.run import runner
from promptworth.tasks import load_task
from promptworth.tasks.base import UNLABELLED, Split, Task, example_key
from promptworth.testing import tiny_generation_task, write_generation_task_file


def test_a_generation_task_needs_metrics_and_a_reference_per_row():
    task = tiny_generation_task()
    assert task.generates and (task.train.labels == UNLABELLED).all()
    assert task.train.subset([1, 0]).references == [task.train.references[i] for i in (1, 0)]
    fields = dict(name="t", version="v", label_names=[], verbalizers=[], templates=["{text}:"])
    rows = Split.generation(["a"], ["x"])
    with pytest.raises(ValueError, match="needs one or more of"):
        Task(**fields, train=rows, test=rows, type="generation", metrics=("bleu",))
    unreferenced = Split(["a"], np.array([UNLABELLED]))
    with pytest.raises(ValueError, match="every train row needs a reference"):
        Task(**fields, train=unreferenced, test=rows, type="generation", metrics=("rouge",))
    assert Split.generation(["a", "b"], ["x", ["y", "z"]]).references == [("x",), ("y", "z")]


def test_references_enter_the_fingerprint():
    task = tiny_generation_task()
    changed = tiny_generation_task()
    changed.test.references[0] = ("other",)
    assert task.fingerprint != changed.fingerprint


def write_generation_files(folder, extra: str = "") -> str:
    rows = [("who wrote hamlet", ["Shakespeare", "William Shakespeare"]), ("2 + 2", "4")]
    with open(folder / "train.jsonl", "w") as handle:
        for question, answer in rows:
            handle.write(json.dumps({"question": question, "answer": answer}) + "\n")
    pd.DataFrame({"question": ["capital of france"], "answer": ["Paris"]}).to_csv(
        folder / "test.csv", index=False
    )
    path = folder / "task.yaml"
    path.write_text(
        "name: qa\ntype: generation\ntrain: train.jsonl\ntest: test.csv\n"
        "text_column: question\nreference_column: answer\nmetrics: [exact_match, token_f1]\n"
        "max_new_tokens: 8\ntemplates: ['Q: {text}\\nA:']\n" + extra
    )
    return str(path)


def test_task_file_of_a_generation_task(tmp_path):
    task = load_task(write_generation_files(tmp_path))
    assert task.type == "generation" and task.metrics == ("exact_match", "token_f1")
    assert task.train.references == [("Shakespeare", "William Shakespeare"), ("4",)]
    assert task.test.references == [("Paris",)]
    assert task.max_new_tokens == 8 and task.label_names == []
    assert task.answer_trigger == ""  # ANSWER_TRIGGER
    named = load_task(write_generation_files(tmp_path, "answer_trigger: Therefore, A is\n"))
    assert named.answer_trigger == "Therefore, A is"


@pytest.mark.parametrize(
    "extra, message",
    [
        ("labels: {a: [a], b: [b]}\n", "labels: not a field of a generation task"),
        ("max_text_tokens: 0\n", "max_text_tokens: expected a whole number"),
        ("answer_trigger: 3\n", "answer_trigger: expected the cue after a reasoning chain"),
    ],
)
def test_task_file_refuses_bad_generation_fields(tmp_path, extra, message):
    with pytest.raises(PromptworthError, match=message):
        load_task(write_generation_files(tmp_path, extra))


def test_task_file_refuses_unknown_metrics_and_missing_references(tmp_path):
    path = Path(write_generation_files(tmp_path))
    text = path.read_text()
    path.write_text(text.replace("[exact_match, token_f1]", "[exact_match, bleu]"))
    with pytest.raises(PromptworthError, match="metrics: unknown metric 'bleu'"):
        load_task(str(path))
    path.write_text(text)
    pd.DataFrame({"question": ["q"], "answer": [""]}).to_csv(tmp_path / "test.csv", index=False)
    with pytest.raises(PromptworthError, match=r"test.csv: row 1: field 'answer' is missing"):
        load_task(str(path))


def test_classification_task_files_refuse_generation_fields(tmp_path):
    pd.DataFrame({"text": ["a b", "c d"], "label": ["x", "y"]}).to_csv(
        tmp_path / "d.csv", index=False
    )
    (tmp_path / "t.yaml").write_text("name: t\ntrain: d.csv\nmetrics: [rouge]\n")
    with pytest.raises(PromptworthError, match="metrics: not a field of a classification task"):
        load_task(str(tmp_path / "t.yaml"))


@pytest.mark.parametrize(
    "name, n_train, n_test, metrics",
    [
        ("xsum", 500, 500, ("rouge", "bertscore")),
        ("nq_open", 1_800, 1_769, ("exact_match", "token_f1")),
        ("asdiv", 1_089, 999, ("numeric",)),
    ],
)
def test_builtin_generation_tasks(name, n_train, n_test, metrics):
    task = load_task(name)
    assert (len(task.train), len(task.test), task.metrics) == (n_train, n_test, metrics)
    pool = {example_key(text) for text in task.train.texts}
    assert not any(example_key(text) in pool for text in task.test.texts)  # no overlap
    assert all(refs and all(r.strip() for r in refs) for refs in task.test.references)
    assert task.fingerprint == load_task(name).fingerprint  # the carving is fixed


def test_builtin_references_are_what_the_metrics_read():
    from promptworth.analysis.text_scores import reference_number

    asdiv = load_task("asdiv")
    assert all(reference_number(refs[0]) is not None for refs in asdiv.test.references)
    nq = load_task("nq_open")
    assert max(len(refs) for refs in nq.test.references) > 1  # aliases kept
    assert load_task("xsum").max_text_tokens == 512


def test_runner_scores_answers_per_row_and_runs_pair(make_context):
    task = tiny_generation_task()
    context = make_context(task=task)
    result = runner.execute(make_method("zero-shot"), task.train.subset([]), task.test, context)
    assert result["headline_metric"] == "exact_match"
    assert len(result["predictions"]) == len(task.test)
    assert result["exact_match"] == pytest.approx(np.mean(result["row_scores"]["exact_match"]))
    assert 0 <= result["exact_match_unparsed"] <= 1
    low, high = result["token_f1_ci95"]
    assert low <= result["token_f1"] <= high
    config = {"n_train": 0, "seed": 0}
    run = unc.ScoredRun.from_store("k", "zero-shot", config, result)
    assert run.score("token_f1") == pytest.approx(result["token_f1"])
    interval = unc.accuracy_interval([run], "token_f1")
    assert interval.metric == "token_f1" and interval.low <= interval.mean <= interval.high
    with pytest.raises(PromptworthError, match="not accuracy"):
        run.score("accuracy")


def test_report_metric_defaults_to_the_runs_headline():
    generation = ("a", {}, {"headline_metric": "rougeL", "rougeL": 0.2})
    classification = ("b", {}, {"accuracy": 0.5, "macro_f1": 0.4})
    assert report_metric([generation], None) == "rougeL"
    assert report_metric([classification], None) == "accuracy"
    with pytest.raises(PromptworthError, match="different headline metrics"):
        report_metric([generation, classification], None)
    with pytest.raises(PromptworthError, match="--metric accuracy: not every run"):
        report_metric([generation], "accuracy")


def test_sweep_over_a_generation_task_file_writes_the_report(
    tmp_path, tiny_lm_dir, tiny_encoder_dir, capsys
):
    write_generation_task_file(tmp_path, "[token_f1, exact_match]")
    out = tmp_path / "out"
    args = ["run", "--task", str(tmp_path / "task.yaml"), "--model", tiny_lm_dir]
    args += ["--encoder", tiny_encoder_dir, "--methods", "zero-shot,few-shot", "--quiet"]
    args += ["--param", "few-shot.calibrate=false", "--sizes", "2,4", "--seeds", "2"]
    assert main([*args, "--dtype", "float32", "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "## Token F1 by number of labelled examples" in report
    assert "### Generation: every metric, and the answers it could not read" in report
    results = pd.read_csv(out / "results.csv")
    assert {"token_f1", "token_f1_unparsed", "exact_match"} <= set(results.columns)
    assert len(results) == 5
    capsys.readouterr()
    refused = main([*args, "--methods", "head", "--dtype", "float32", "--out", str(out)])
    assert refused != 0
    assert capsys.readouterr().err.strip().splitlines() == [
        "promptworth: error: --methods head: it learns classification tasks; task 'topics' is a "
        "generation task"
    ]
