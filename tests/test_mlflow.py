"""--mlflow on a real local MLflow store: one MLflow run per finished run with its config, run
key, scores, costs and tags, the report as the parent run's artifacts, nothing logged twice,
and a tracker that fails is reported once without touching the sweep."""

from __future__ import annotations

import pytest

from promptworth.cli import main
from promptworth.store.database import RunStore

pytest.importorskip("mlflow", reason="--mlflow needs mlflow: pip install 'promptworth[mlflow]'")


@pytest.fixture
def run_args(tiny_task_files, tiny_lm_dir, tiny_encoder_dir, tmp_path):
    def args(sizes: str, *extra: str) -> list[str]:
        return [
            "run",
            *("--task", tiny_task_files[0], "--test-file", tiny_task_files[1]),
            *("--model", tiny_lm_dir, "--encoder", tiny_encoder_dir, "--dtype", "float32"),
            *("--methods", "zero-shot,head", "--sizes", sizes, "--seeds", "2"),
            *("--quiet", "--out", str(tmp_path / "out"), *extra),
        ]

    return args


def logged_runs(out):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{out.resolve()}/mlflow.db")
    experiment = client.get_experiment_by_name(f"promptworth {out.resolve()}")
    runs = client.search_runs([experiment.experiment_id])
    return client, runs


def test_one_mlflow_run_per_finished_run_with_config_scores_and_costs(run_args, tmp_path):
    out = tmp_path / "out"
    assert main(run_args("4")) == 0  # without --mlflow: 3 runs the tracker has not seen
    assert main(run_args("4,8", "--mlflow")) == 0
    assert main(run_args("4,8", "--mlflow")) == 0  # a resumed sweep logs nothing twice
    rows = RunStore(out / "runs.sqlite").load()
    client, runs = logged_runs(out)
    (parent,) = [r for r in runs if r.data.tags["promptworth.role"] == "sweep"]
    children = {r.data.tags["promptworth.run_key"]: r for r in runs if r is not parent}
    assert len(rows) == len(children) == len(runs) - 1 == 5
    for key, config, result in rows:
        run = children[key]
        params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
        assert params["run_key"] == key and params["method"] == config["method"]
        assert (
            params["model"] == config["model"] and params["task_version"] == config["task_version"]
        )
        assert params["n_train"] == str(config["n_train"]) and params["seed"] == str(config["seed"])
        assert params["prompt.template"] == "0"
        for name in ("accuracy", "macro_f1", "train_seconds", "eval_seconds", "peak_rss_mb"):
            assert metrics[name] == pytest.approx(result[name])
        assert metrics["total_params"] == result["total_params"] > 0
        assert tags["task"] == config["task"] and tags["method"] == config["method"]
        assert (tags["size"], tags["seed"]) == (str(config["n_train"]), str(config["seed"]))
        assert tags["mlflow.parentRunId"] == parent.info.run_id
    head = [r for r in children.values() if r.data.params["method"] == "head"]
    assert all("method_params.C" in r.data.params for r in head)
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"report.md", "results.csv", "learning_curves.png"} <= artifacts


def test_a_tracker_error_is_reported_once_and_the_sweep_goes_on(run_args, tmp_path, caplog):
    assert main(run_args("4", "--mlflow", "nosuch://nowhere")) == 0
    warnings = [r.getMessage() for r in caplog.records if "MLflow" in r.getMessage()]
    assert len(warnings) == 1 and "MLflow tracking stopped (nosuch://nowhere)" in warnings[0]
    assert "\n" not in warnings[0]
    assert len(RunStore(tmp_path / "out" / "runs.sqlite").load()) == 3
