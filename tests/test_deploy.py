"""fit and predict: a fit is the sweep's run at its size and seed, its artifact loads without
running code, and a changed, unlisted or pickle-capable file is refused by name."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from promptworth.analysis.fit_command import param_text
from promptworth.backbones.device import choose_placement
from promptworth.cli import main
from promptworth.methods import method_class
from promptworth.run.artifact import DESCRIPTION, MANIFEST, STATE, TOKENIZERS
from promptworth.run.sweep import Sweep

# Trained weights are kept (cv_folds=0: the step budget), so the comparison is of training.
PARAMS = {
    "prompt-lora": {"max_steps": 2, "batch_size": 4, "cv_folds": 0},
    "encoder-ft": {"max_steps": 3, "batch_size": 4, "cv_folds": 0},
    "pet": {
        "pattern_params": {"max_steps": 2, "batch_size": 4, "cv_folds": 0},
        "templates": [0, 1],
        "unlabelled": 6,
        "student_params": {"max_steps": 3, "batch_size": 4, "cv_folds": 0},
    },
    "distill": {
        "teacher": "head",
        "n_unlabeled": 6,
        "student_params": {"max_steps": 3, "batch_size": 4, "cv_folds": 0},
    },
}
# Models kept by `fit`, by name: the method and its extra fit arguments.
KEPT = {
    "prompt-lora": ("prompt-lora", []),
    "pet": ("pet", []),
    "distill": ("distill", []),
    "random-forest": ("features-lr", ["--param", "features-lr.classifier=random-forest"]),
    "knn": ("features-lr", ["--param", "features-lr.classifier=knn"]),
}


def fit_args(files, lm: str, encoder: str, out: Path, method: str, *extra: str) -> list[str]:
    params = [f"--param={method}.{k}={param_text(v)}" for k, v in PARAMS.get(method, {}).items()]
    task = ["--task", files[0], "--test-file", files[1]]
    models = ["--model", lm, "--encoder", encoder, "--dtype", "float32"]
    return ["fit", "--method", method, *params, *task, *models, "--out", str(out), *extra]


@pytest.fixture(scope="module")
def kept(tmp_path_factory, tiny_task_files, tiny_lm_dir, tiny_encoder_dir):
    """The model of a KEPT name, fit at 8 labels, seed 1, through the CLI (once per module)."""
    models: dict[str, Path] = {}

    def model(name: str) -> Path:
        if name not in models:
            method, extra = KEPT[name]
            out = tmp_path_factory.mktemp(name) / "model"
            args = fit_args(tiny_task_files, tiny_lm_dir, tiny_encoder_dir, out, method, *extra)
            assert main([*args, "--labels", "8", "--seed", "1"]) == 0
            models[name] = out
        return models[name]

    return model


@pytest.fixture(scope="module")
def fitted(kept) -> Path:
    """A prompt-lora model fit at 8 labels, seed 1, through the CLI."""
    return kept("prompt-lora")


def test_artifact_describes_itself(fitted, tiny_lm_dir):
    manifest = json.loads((fitted / MANIFEST).read_text())
    described = json.loads((fitted / DESCRIPTION).read_text())
    assert set(manifest["files"]) >= {DESCRIPTION, STATE, "tokenizers/causal-lm/tokenizer.json"}
    assert described["method"] == "prompt-lora" and described["params"]["max_steps"] == 2
    assert described["params"]["r"] == 8  # the Config defaults, written out in full
    assert described["n_train"] == 8 and described["seed"] == 1
    assert described["task"]["label_names"] == ["business", "science", "sports"]
    assert described["task"]["fingerprint"].startswith(described["task"]["version"])
    assert described["backbones"]["causal-lm"]["spec"] == str(Path(tiny_lm_dir).resolve())
    assert described["backbones"]["causal-lm"]["revision"]
    assert described["state"]["meta"]["adapter_config"]["peft_type"] == "LORA"
    assert not [p for p in fitted.rglob("*") if p.suffix in (".pkl", ".bin", ".pt")]
    umask = os.umask(0)
    os.umask(umask)  # written as a plain mkdir and write would: not private to the writer
    assert fitted.stat().st_mode & 0o777 == 0o777 & ~umask
    assert (fitted / STATE).stat().st_mode & 0o777 == 0o666 & ~umask


def test_predict_writes_labels_and_probabilities(fitted, tiny_task_files, tmp_path, monkeypatch):
    """Nothing is unpickled or torch.load-ed while a model loads and predicts."""

    def refuse(*args, **kwargs):
        raise AssertionError("an artifact was read with pickle")

    import torch

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    rows = pd.read_csv(tiny_task_files[1]).drop(columns="label").assign(id=lambda f: f.index)
    rows.to_json(tmp_path / "new.jsonl", orient="records", lines=True)
    out = tmp_path / "preds.csv"
    args = ["predict", str(fitted), str(tmp_path / "new.jsonl"), "-o", str(out)]
    assert main([*args, "--batch-size", "5", "--quiet"]) == 0
    preds = pd.read_csv(out)
    names = ["business", "science", "sports"]
    assert list(preds.columns) == ["text", "id", "label", *[f"p_{n}" for n in names]]
    assert preds["text"].tolist() == rows["text"].tolist()
    probs = preds[[f"p_{n}" for n in names]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert preds["label"].tolist() == [names[i] for i in probs.argmax(axis=1)]


def test_fit_is_the_sweeps_run_at_its_size_and_seed(
    tiny_task_files, tiny_lm_dir, tiny_encoder_dir, tmp_path
):
    """The artifact predicts the test rows as the sweep's run at 8 labels, seed 1 did."""
    from promptworth.testing import tiny_sweep

    methods = ["head", "prompt-lora", "encoder-ft", "few-shot", "pet", "distill"]
    spec = tiny_sweep(
        tiny_task_files, tiny_lm_dir, tiny_encoder_dir, tmp_path / "sweep", methods, PARAMS
    )
    sweep = Sweep(spec, quiet=True)
    assert not sweep.execute()[1]  # no failed run
    stored = {c["method"]: r for _, c, r in sweep.store.load() if c["n_train"] == 8 and c["seed"]}
    test = pd.read_csv(tiny_task_files[1])
    names = sweep.task.label_names
    for method in methods:
        out = tmp_path / method
        args = fit_args(tiny_task_files, tiny_lm_dir, tiny_encoder_dir, out, method)
        assert main([*args, "--labels", "8", "--seed", "1"]) == 0
        preds = tmp_path / f"{method}.csv"
        assert main(["predict", str(out), tiny_task_files[1], "-o", str(preds), "--quiet"]) == 0
        labels = [names.index(label) for label in pd.read_csv(preds)["label"]]
        assert len(labels) == len(test)
        assert labels == stored[method]["predictions"], method


def test_labels_all_trains_on_the_whole_pool(tiny_task_files, tiny_lm_dir, tiny_encoder_dir, tmp):
    out = tmp / "model"
    args = fit_args(tiny_task_files, tiny_lm_dir, tiny_encoder_dir, out, "features-lr")
    assert main([*args, "--labels", "all"]) == 0
    described = json.loads((out / DESCRIPTION).read_text())
    assert described["n_train"] == len(pd.read_csv(tiny_task_files[0]))


@pytest.fixture
def tmp(tmp_path):
    return tmp_path


@pytest.fixture
def copy(request, kept, tmp_path) -> Path:
    """A copy of a fitted model to damage: prompt-lora's, or (parametrized indirectly) the
    KEPT one named."""
    return Path(shutil.copytree(kept(getattr(request, "param", "prompt-lora")), tmp_path / "copy"))


def refused(capsys, args: list[str]) -> str:
    """The one-line error of a refused command (exit status 2)."""
    assert main(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture
def no_model_loads(monkeypatch):
    """Loading a backbone fails the test: the command must stop before."""
    import promptworth.backbones as backbones

    def load(*args, **kwargs):
        raise AssertionError("a model loaded")

    monkeypatch.setattr(backbones, "load", load)


@pytest.mark.parametrize("name", [STATE, DESCRIPTION, TOKENIZERS])
@pytest.mark.parametrize("copy", KEPT, indirect=True)
def test_one_changed_byte_is_refused(copy, name, tiny_task_files, capsys, no_model_loads):
    changed = copy / name if name != TOKENIZERS else min((copy / name).rglob("tokenizer.json"))
    data = bytearray(changed.read_bytes())
    data[len(data) // 2] ^= 0x01
    changed.write_bytes(bytes(data))
    error = refused(capsys, ["predict", str(copy), tiny_task_files[1]])
    assert str(changed) in error and "sha256 does not match" in error


@pytest.mark.parametrize("name", ["model.pkl", "tokenizers/causal-lm/extra.bin", "notes.txt"])
def test_a_file_outside_the_manifest_is_refused(copy, name, tiny_task_files, capsys):
    (copy / name).write_bytes(pickle.dumps({"not": "loaded"}))
    error = refused(capsys, ["predict", str(copy), tiny_task_files[1]])
    assert str(copy / name) in error


def test_a_pickle_listed_in_the_manifest_is_refused(copy, tiny_task_files, capsys):
    from promptworth.run.artifact import sha256

    (copy / "weights.pkl").write_bytes(pickle.dumps([1, 2]))
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["files"]["weights.pkl"] = sha256(copy / "weights.pkl")
    (copy / MANIFEST).write_text(json.dumps(manifest))
    error = refused(capsys, ["predict", str(copy), tiny_task_files[1]])
    assert str(copy / "weights.pkl") in error and "can carry code" in error


@pytest.mark.skipif(
    method_class("qlora").unavailable(choose_placement().device) is None,
    reason="this machine can load 4-bit weights: the refusal does not apply",
)
def test_a_model_whose_method_cannot_run_here_is_refused_before_any_model_loads(
    copy, tiny_task_files, capsys, no_model_loads
):
    """A qlora model (here the prompt-lora model renamed, its digest updated) needs CUDA."""
    from promptworth.run.artifact import sha256

    described = json.loads((copy / DESCRIPTION).read_text())
    (copy / DESCRIPTION).write_text(json.dumps({**described, "method": "qlora"}))
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["files"][DESCRIPTION] = sha256(copy / DESCRIPTION)
    (copy / MANIFEST).write_text(json.dumps(manifest))
    error = refused(capsys, ["predict", str(copy), tiny_task_files[1]])
    assert str(copy) in error and "qlora needs a CUDA GPU" in error


def test_not_an_artifact(tmp_path, tiny_task_files, capsys):
    error = refused(capsys, ["predict", str(tmp_path), tiny_task_files[1]])
    assert "not a promptworth artifact" in error and str(tmp_path) in error


def test_missing_column_is_refused_before_any_model_loads(fitted, tmp_path, capsys, no_model_loads):
    pd.DataFrame({"review": ["a goal in the final"]}).to_csv(tmp_path / "new.csv", index=False)
    error = refused(capsys, ["predict", str(fitted), str(tmp_path / "new.csv")])
    assert "no column 'text'" in error and "new.csv" in error


def test_a_changed_backbone_is_refused(
    tiny_task_files, tiny_lm_dir, tiny_encoder_dir, tmp_path, capsys
):
    encoder = Path(shutil.copytree(tiny_encoder_dir, tmp_path / "encoder"))
    out = tmp_path / "model"
    assert main([*fit_args(tiny_task_files, tiny_lm_dir, str(encoder), out, "features-lr"),
                 "--labels", "6"]) == 0  # fmt: skip
    config = json.loads((encoder / "config.json").read_text())
    (encoder / "config.json").write_text(json.dumps({**config, "layer_norm_eps": 1e-6}))
    error = refused(capsys, ["predict", str(out), tiny_task_files[1]])
    assert "revision" in error and "fit it again" in error


@pytest.mark.parametrize(
    ("method", "extra", "expected"),
    [
        ("no-such", ["--labels", "8"], "unknown method 'no-such'"),
        ("sft-lora", ["--labels", "8"], "method 'sft-lora' cannot be saved"),
        ("zero-shot", ["--labels", "8"], "zero-shot trains on no labels"),
        ("head", [], "--labels: head trains on labels"),
        ("head", ["--labels", "9999"], "--labels 9999: the training pool has only"),
        ("head", ["--labels", "2"], "--labels [2] are below the 3 classes"),
        ("head", ["--labels", "8", "--param", "head.C=-1"], "head.C=-1"),
        ("head", ["--labels", "8", "--param", "zero-shot.k=1"], "the method fitted is head"),
    ],
)
def test_bad_fit_requests_are_one_line_before_any_model_loads(
    method, extra, expected, tiny_task_files, tiny_lm_dir, tiny_encoder_dir, tmp_path, capsys,
    no_model_loads,
):  # fmt: skip
    out = tmp_path / "model"
    args = fit_args(tiny_task_files, tiny_lm_dir, tiny_encoder_dir, out, method)
    assert expected in refused(capsys, [*args, *extra])
    assert not out.exists()


def test_fit_refuses_a_used_out_directory(
    fitted, tiny_task_files, tiny_lm_dir, tiny_encoder_dir, capsys
):
    args = fit_args(tiny_task_files, tiny_lm_dir, tiny_encoder_dir, fitted, "head")
    assert "not an empty directory" in refused(capsys, [*args, "--labels", "8"])


@pytest.mark.parametrize("classifier", ["logistic-regression", "linear-svc", "ridge"])
@pytest.mark.parametrize("standardize", [False, True])
def test_linear_classifiers_restore_from_arrays(classifier, standardize):
    """No pickle: a classifier is rebuilt from its config and given its learned arrays."""
    from promptworth.methods import make_method
    from promptworth.methods.frozen_features import estimator_state, restore_estimator

    method = make_method("features-lr", classifier=classifier, standardize=standardize)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 5)), np.arange(30) % 3
    fitted = method.make_classifier(0, 1.0).fit(x, y)
    arrays, values = estimator_state(fitted)
    again = restore_estimator(method.make_classifier(0, 1.0), arrays, values)
    test = rng.normal(size=(10, 5))
    np.testing.assert_array_equal(fitted.predict(test), again.predict(test))
    np.testing.assert_allclose(fitted.decision_function(test), again.decision_function(test))


def test_prompt_options_survive_the_artifact(tiny_task_files, tiny_lm_dir, tiny_encoder_dir, tmp):
    """A literal template and a verbaliser given to fit are what the restored model reads."""
    from promptworth.run.deploy import open_artifact, restore

    out = tmp / "model"
    args = fit_args(tiny_task_files, tiny_lm_dir, tiny_encoder_dir, out, "zero-shot")
    template, word = "News: {text}\\nSection:", "science=research"
    assert main([*args, "--template", template, "--verbalizer", word]) == 0
    deployed = restore(open_artifact(out))
    assert deployed.method.format_.task.templates[-1] == "News: {text}\nSection:"
    assert deployed.task.verbalizers[deployed.task.label_names.index("science")] == ["research"]
    assert (
        dataclasses.asdict(deployed.method.format_.options)["template"]
        == len(deployed.task.templates) - 1
    )


def test_fit_command_reads_back_as_the_runs_options():
    """The recommendation's command, parsed by `fit`, gives the stored run's parameters and
    prompt options (only those differing from the defaults are written)."""
    from promptworth.analysis.fit_command import fit_argv
    from promptworth.cli import build_parser

    config = {
        "task": "ag_news",
        "model": "smollm2-135m-instruct",
        "encoder": "all-minilm-l6-v2",
        "dtype": "bfloat16",
        "method": "prompt-lora",
        "method_params": {"r": 4, "alpha": 16, "target_modules": "all-linear", "merge": False},
        "n_train": 100,
        "seed": 2,
        "sampling": "random",
        "prompt": {"template": "Q: {text}\nA:", "chat": True, "verbalizer": [["World", ["w"]]]},
    }
    argv = fit_argv(config, 100)
    assert "prompt-lora.alpha=16" not in " ".join(argv)  # a default
    args = build_parser().parse_args(argv[1:])
    assert (args.method, args.labels, args.seed, args.sampling) == ("prompt-lora", 100, 2, "random")
    assert sorted(args.param) == sorted(
        [("prompt-lora", "r", "4"), ("prompt-lora", "target_modules", "all-linear"),
         ("prompt-lora", "merge", "false")]
    )  # fmt: skip
    assert (args.template, args.chat, args.dtype) == ("Q: {text}\nA:", True, "bfloat16")
    assert args.verbalizer == [("World", ("w",))]
    assert str(args.out) == "MODEL"


def test_the_recommendation_gives_no_fit_command_for_a_method_fit_refuses():
    from promptworth.analysis.fit_command import fit_command

    config = {"method": "sft-lora", "method_params": {}, "task": "ag_news", "seed": 0}
    fit = fit_command(config, 100)
    assert fit["command"] is None and fit["note"].startswith("sft-lora cannot be kept: ")


@pytest.mark.parametrize("method", ["pet", "distill"])
def test_the_recommendation_gives_a_fit_command_for_the_semi_supervised_methods(method):
    """Their stored recipes (nested parameters resolved in full) read back as the run's; a
    default made by a factory (pet's templates=[]) is left out as the others are."""
    from promptworth.analysis.fit_command import fit_command
    from promptworth.cli import build_parser
    from promptworth.methods import make_method

    recipe = {k: v for k, v in PARAMS[method].items() if k != "templates"}
    params = make_method(method, **recipe).get_params()
    config = {"method": method, "method_params": params, "task": "ag_news", "seed": 2}
    fit = fit_command(config, 50)
    assert fit["command"].startswith(f"promptworth fit --task ag_news --method {method} ")
    assert (
        f"{method}.templates" not in fit["command"]
        and f"{method}.temperature" not in fit["command"]
    )
    args = build_parser().parse_args(fit["argv"][1:])
    given = {key: value for _, key, value in args.param}
    assert make_method(method, **given).get_params() == params
    assert (args.labels, args.seed) == (50, 2)
