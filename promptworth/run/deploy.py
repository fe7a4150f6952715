"""From an answer to a model: fit one method on the user's labels into an artifact, and label
new data with it.

`fit` is one run of a sweep: the same Method class, Config defaults and parameters, the same
nested subset of N labels for the seed (tasks/subsets.py), the same context (task as the method
is shown it, prompt options, backbones); so a fit at N labels and seed S trains what the sweep's
run at N and S trained, and predicts what it predicted. Its result is kept (run/artifact.py)
instead of scored.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from promptworth.errors import PromptworthError
from promptworth.methods import make_method, method_class
from promptworth.methods.base import NO_LABEL, Method, PromptOptions, RunContext
from promptworth.run.artifact import Artifact, ArtifactError, read_artifact, write_artifact
from promptworth.tasks.base import Split, Task
from promptworth.tasks.subsets import check_sizes

log = logging.getLogger("promptworth")
ALL_LABELS = "all"
PROBABILITY_PREFIX = "p_"  # the output column of each label's probability: p_<label>


def check_fit_request(method: str, params: dict[str, Any], labels: int | str | None, out: Path):
    """What needs no data and no model: the method is known, takes these parameters and can be
    saved; the label count fits the method; MODEL/ is free."""
    cls = method_class(method)
    make_method(method, **params)
    reason = cls.unsaveable(cls.converted(params))
    if reason:
        raise PromptworthError(f"fit: method {method!r} cannot be saved as a model: {reason}")
    if not cls.trains and labels is not None:
        raise PromptworthError(f"--labels: {method} trains on no labels; leave the flag out")
    if cls.trains and labels is None:
        raise PromptworthError(
            f"--labels: {method} trains on labels; give a number or {ALL_LABELS}"
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PromptworthError(f"--out {out}: exists and is not an empty directory")


def fit(spec, labels: int | str | None, out: Path) -> Path:
    """Train the one method of `spec` (a SweepSpec with one method and seed) on `labels` rows
    of its training pool (a count, or ALL_LABELS) and write the artifact to `out`."""
    from promptworth.run.executors import Workbench
    from promptworth.run.sweep import Sweep
    from promptworth.run.validate import spec_task

    (name,) = spec.methods
    check_fit_request(name, spec.params(name), labels, out)
    task = spec_task(spec)
    size = len(task.train) if labels in (ALL_LABELS, None) else labels
    check_sizes(task.train.labels, [size], spec.sampling, "--labels")
    with tempfile.TemporaryDirectory(prefix="promptworth-fit-") as scratch:
        # the sweep's store and feature files are scratch: a fit keeps only its artifact
        spec = dataclasses.replace(spec, sizes=[size], out=Path(scratch), test_size=1)
        sweep = Sweep(spec, quiet=True, task=task)
        (run,) = sweep.plan()
        bench = Workbench(sweep.task, sweep.test, sweep.backbones, sweep.features)
        context = bench.context(run)
        method = method_class(name)(**run.config.method_params)
        train = sweep.task.train.subset(run.train_indices)
        log.info("fitting %s on %d labels, seed %d", name, len(train), run.config.seed)
        method.fit(train, context)
        state = method.state()
        backbones = {
            kind: {"spec": spec_, "revision": sweep.backbones.revision(spec_)}
            for kind, spec_ in state.backbones.items()
        }
        tokenizers = {
            kind: sweep.backbones.get(spec_, kind).tokenizer
            for kind, spec_ in state.backbones.items()
        }
        config = run.config.to_dict()
        del config["test_size"]  # the sweep's evaluation, not part of what was fit
        description = {
            "method": name,
            "params": method.get_params(),
            "task": task_description(context.task, sweep.task.fingerprint),
            "prompt": asdict(context.prompt),
            "dtype": sweep.placement.dtype,
            "seed": run.config.seed,
            "n_train": len(train),
            "backbones": backbones,
            "run_config": config,
            "promptworth_version": installed_version(),
        }
        write_artifact(out, description, state, tokenizers)
    return out


def installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("promptworth")
    except PackageNotFoundError:
        return "unknown"


def task_description(task: Task, fingerprint: str) -> dict[str, Any]:
    """The task as the method was shown it, without its rows; `fingerprint` names its data."""
    return {
        "name": task.name,
        "version": task.version,
        "fingerprint": fingerprint,
        "label_names": task.label_names,
        "verbalizers": task.verbalizers,
        "templates": task.templates,
        "inputs": list(task.inputs),
        "description": task.description,
        "extra": task.extra,
    }


def described_task(described: dict[str, Any]) -> Task:
    """A task without rows from `task_description`: what a restored method reads of it."""
    empty = Split([], np.zeros(0, dtype=int))
    fields = {k: v for k, v in described.items() if k != "fingerprint"}
    return Task(**fields, train=empty, test=empty)


@dataclass
class Deployed:
    """A restored method and what its artifact says about its labels and inputs."""

    method: Method
    task: Task
    artifact: Artifact


def open_artifact(path: Path) -> Artifact:
    """The verified artifact, its method known and restorable on this machine; no model is
    loaded yet."""
    from promptworth.backbones.device import choose_placement

    artifact = read_artifact(path)
    name = artifact.description["method"]
    try:
        cls = method_class(name)
    except PromptworthError as error:
        raise ArtifactError(f"{path}: {error}") from None
    reason = cls.unsaveable(artifact.description["params"])
    if reason:
        raise ArtifactError(f"{path}: method {name!r} cannot be restored: {reason}")
    reason = cls.unavailable(choose_placement(artifact.description["dtype"]).device)
    if reason:  # qlora without CUDA
        raise ArtifactError(f"{path}: {reason}")
    return artifact


def restore(artifact: Artifact) -> Deployed:
    """Load the artifact's backbones (refusing any whose revision changed since the fit), put
    its tokenizers in their place and restore the method."""
    from promptworth.backbones import BackboneCache
    from promptworth.backbones.device import choose_placement
    from promptworth.backbones.features import FeatureCache
    from promptworth.backbones.preflight import check_backbone

    described = artifact.description
    cache = BackboneCache(choose_placement(described["dtype"]))
    for kind, backbone in described["backbones"].items():
        check_backbone(backbone["spec"], f"{artifact.path}: its {kind}")
        revision = cache.revision(backbone["spec"])
        if revision != backbone["revision"]:
            raise ArtifactError(
                f"{artifact.path}: the {kind} {backbone['spec']!r} is at revision {revision}, "
                f"not {backbone['revision']} as when the model was fit; fit it again"
            )
    for kind, backbone in described["backbones"].items():
        cache.get(backbone["spec"], kind).tokenizer = saved_tokenizer(artifact.tokenizer_dir(kind))
    task = described_task(described["task"])
    config = described["run_config"]
    context = RunContext(
        task=task,
        seed=described["seed"],
        backbones=cache,
        model=described["backbones"].get("causal-lm", {}).get("spec", config["model"]),
        encoder=described["backbones"].get("encoder", {}).get("spec", config["encoder"]),
        prompt=PromptOptions(**{**described["prompt"], "verbalizer": ()}),
        features=FeatureCache(),
    )
    method = make_method(described["method"], **described["params"])
    return Deployed(method.restore(artifact.state, context), task, artifact)


def saved_tokenizer(directory: Path):
    from transformers import AutoTokenizer

    from promptworth.backbones.loading import load_pretrained

    return load_pretrained(AutoTokenizer, directory, "tokenizer")


def read_inputs(path: Path, task: Task, text_column: str | None, encoding: str = "utf-8"):
    """The rows of a CSV or JSONL file and the task's examples from them: one column per input
    (`text_column` for a one-input task, default "text"; a several-input task's own names)."""
    from promptworth.tasks.files import TaskDataError, frame_to_rows, read_table

    if not path.is_file():
        raise TaskDataError(f"no such file: {path}")
    if len(task.inputs) > 1 and text_column is not None:
        raise TaskDataError(
            f"--text-column: this model reads {len(task.inputs)} inputs, from the columns "
            f"{', '.join(task.inputs)}"
        )
    columns = (text_column or "text") if len(task.inputs) == 1 else task.inputs
    frame = read_table(path, encoding)
    examples, _ = frame_to_rows(frame, str(path), columns, None)
    return frame, examples


def predict_rows(deployed: Deployed, examples: list, batch_size: int, quiet: bool = False):
    """Labels (NO_LABEL where a generated answer names none) and [n, n_labels] probabilities
    (NaN where the method gives none: generation), predicted `batch_size` rows at a time."""
    from tqdm.auto import tqdm

    n_labels = deployed.task.n_labels
    labels = np.full(len(examples), NO_LABEL)
    probs = np.full((len(examples), n_labels), np.nan)
    with tqdm(total=len(examples), unit="row", disable=quiet) as bar:
        for start in range(0, len(examples), batch_size):
            rows = slice(start, start + batch_size)
            prediction = deployed.method.predict(examples[rows])
            labels[rows] = prediction.labels
            if prediction.scores is not None:
                probs[rows] = softmax(np.asarray(prediction.scores, dtype=np.float64))
            bar.update(len(prediction.labels))
    return labels, probs


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax; a label scored -inf gets probability 0."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    weights = np.exp(shifted)
    return weights / weights.sum(axis=1, keepdims=True)


def predictions_frame(frame, task: Task, labels: np.ndarray, probs: np.ndarray):
    """The input columns, `label` (empty where no label was given) and p_<label> per label."""
    out = frame.copy()
    out["label"] = [task.label_names[y] if y != NO_LABEL else "" for y in labels]
    for index, name in enumerate(task.label_names):
        out[f"{PROBABILITY_PREFIX}{name}"] = probs[:, index]
    return out
