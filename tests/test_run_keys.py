"""Run keys mean what they say: model bytes, tokenizer files, one spelling per path, only the
prompt options a method reads, a task version over its data, labels, verbalisers and templates,
and a hub model's commit."""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from promptworth.backbones import BackboneCache, canonical_spec, resolve
from promptworth.backbones import revision as revisions
from promptworth.backbones.device import Placement
from promptworth.backbones.revision import directory_revision
from promptworth.errors import PromptworthError
from promptworth.methods.base import PromptOptions
from promptworth.run.sweep import Sweep, SweepSpec
from promptworth.testing import tiny_task

HOUR_AGO = time.time() - 3600


@pytest.fixture(autouse=True)
def digest_cache(tmp_path, monkeypatch):
    """A private promptworth cache, so file digests cached here are this test's alone."""
    monkeypatch.setenv("PROMPTWORTH_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def model_dir(tiny_lm_dir, tmp_path) -> Path:
    """A copy of the tiny LM whose files are an hour old: their digests get cached."""
    copy = Path(shutil.copytree(tiny_lm_dir, tmp_path / "models" / "lm"))
    for file in copy.iterdir():
        os.utime(file, (HOUR_AGO, HOUR_AGO))
    return copy


@pytest.fixture
def cached_digests(monkeypatch):
    """Every file's digest is cached, as a large weight file's is in use: the tiny files are
    under ALWAYS_HASH_BELOW and were copied just now (a ctime within RACY_SECONDS)."""
    monkeypatch.setattr(revisions, "ALWAYS_HASH_BELOW", 0)
    monkeypatch.setattr(revisions, "RACY_SECONDS", 0)


def flip_last_byte(data: bytearray) -> None:  # the last bytes of a safetensors file are data
    data[-1] ^= 0xFF


def rewrite_in_place(path: Path, change) -> None:
    """Rewrite `path` through `change(bytearray)`, keeping its size, inode and (optionally) its
    timestamps."""
    data = bytearray(path.read_bytes())
    change(data)
    with path.open("r+b") as handle:
        handle.write(data)


def test_weights_retrained_in_place_at_the_same_size_make_a_new_revision(model_dir):
    before = directory_revision(model_dir)
    weights = model_dir / "model.safetensors"
    size = weights.stat().st_size
    rewrite_in_place(weights, flip_last_byte)
    assert weights.stat().st_size == size
    assert directory_revision(model_dir) != before


def test_a_rewrite_within_the_timestamp_tick_is_never_served_from_the_cache(model_dir):
    """A file modified just before hashing is not cached: a rewrite in the same tick, same size
    and same mtime, must still be seen (git's racy-clean rule)."""
    weights = model_dir / "model.safetensors"
    os.utime(weights)  # modified now
    stamp = weights.stat().st_mtime_ns
    before = directory_revision(model_dir)
    rewrite_in_place(weights, lambda data: data.__setitem__(-1, data[-1] ^ 0xFF))
    os.utime(weights, ns=(stamp, stamp))  # same size, same mtime: only the bytes differ
    assert directory_revision(model_dir) != before


def test_weights_rewritten_with_their_mtime_restored_make_a_new_revision(
    model_dir, cached_digests, monkeypatch
):
    """Same size, inode and mtime (restored with os.utime): the ctime still tells."""
    weights = model_dir / "model.safetensors"
    before, old = directory_revision(model_dir), weights.stat()
    hashed = []
    real = revisions.sha256_file
    monkeypatch.setattr(revisions, "sha256_file", lambda p: hashed.append(p.name) or real(p))
    assert directory_revision(model_dir) == before and hashed == []  # served from the cache
    time.sleep(0.05)  # the next timestamp tick, as any later rewrite is
    rewrite_in_place(weights, flip_last_byte)
    os.utime(weights, ns=(old.st_atime_ns, old.st_mtime_ns))
    new = weights.stat()
    assert (new.st_size, new.st_ino, new.st_mtime_ns) == (old.st_size, old.st_ino, old.st_mtime_ns)
    assert directory_revision(model_dir) != before
    assert hashed == ["model.safetensors"]


def test_a_rewrite_with_the_mtime_restored_changes_the_run_key(model_dir, base_spec):
    """The same through a sweep's plan, with the digest settings as shipped."""
    weights = model_dir / "model.safetensors"
    before, old = plan_keys(**base_spec), weights.stat()
    rewrite_in_place(weights, flip_last_byte)
    os.utime(weights, ns=(old.st_atime_ns, old.st_mtime_ns))
    assert set(plan_keys(**base_spec).values()).isdisjoint(before.values())


def test_a_second_plan_reads_digests_from_the_cache(model_dir, cached_digests, monkeypatch):
    directory_revision(model_dir)
    hashed = []
    real = revisions.sha256_file
    monkeypatch.setattr(revisions, "sha256_file", lambda p: hashed.append(p) or real(p))
    directory_revision(model_dir)
    assert hashed == []
    (model_dir / "config.json").touch()  # a changed mtime is hashed again
    directory_revision(model_dir)
    assert [p.name for p in hashed] == ["config.json"]


def test_tokenizer_files_enter_the_revision_documentation_does_not(model_dir):
    before = directory_revision(model_dir)
    (model_dir / "README.md").write_text("# a model card")
    assert directory_revision(model_dir) == before
    config = model_dir / "tokenizer_config.json"
    config.write_text(config.read_text().replace("}", ', "model_max_length": 77}', 1))
    assert directory_revision(model_dir) != before


def test_a_directory_has_one_spelling(model_dir, monkeypatch):
    monkeypatch.chdir(model_dir.parent.parent)
    monkeypatch.setenv("HOME", str(model_dir.parent))
    spellings = ["models/lm", "models/lm/", "./models//lm", "~/lm", str(model_dir) + "/"]
    assert {canonical_spec(s) for s in spellings} == {str(model_dir)}
    assert canonical_spec("smollm2-135m-instruct") == "smollm2-135m-instruct"


@pytest.fixture
def task_files(tmp_path):
    task, folder = tiny_task(n_train=24, n_test=8), tmp_path / "data"
    folder.mkdir()
    for name, split in (("train", task.train), ("test", task.test)):
        pd.DataFrame(
            {"text": split.texts, "label": [task.label_names[y] for y in split.labels]}
        ).to_csv(folder / f"{name}.csv", index=False)
    return folder / "train.csv", folder / "test.csv"


def plan_keys(**spec) -> dict[tuple[str, int, int], str]:
    plan = Sweep(SweepSpec(**spec), quiet=True).plan()
    return {(r.config.method, r.config.n_train, r.config.seed): r.config.key() for r in plan}


@pytest.fixture
def base_spec(task_files, model_dir, tiny_encoder_dir, tmp_path):
    return dict(
        task=str(task_files[0]),
        test_file=str(task_files[1]),
        models=[str(model_dir)],
        encoders=[tiny_encoder_dir],
        methods=["zero-shot", "head"],
        sizes=[4],
        seeds=[0],
        dtype="float32",
        out=tmp_path / "out",
    )


def test_a_sweep_plans_the_same_keys_for_every_spelling(base_spec, model_dir, monkeypatch):
    monkeypatch.chdir(model_dir.parent.parent)
    keys = plan_keys(**base_spec)
    assert plan_keys(**{**base_spec, "models": ["models/lm/"]}) == keys
    data = Path(base_spec["task"]).parent
    relative = {"task": os.path.relpath(data / "train.csv"), "test_file": "data/../data/test.csv"}
    assert plan_keys(**{**base_spec, **relative}) == keys


def test_prompt_options_enter_only_the_keys_of_methods_that_read_them(base_spec):
    methods = ["zero-shot", "few-shot", "head", "features-lr", "encoder-ft", "distill"]
    params = {"distill": {"teacher": "head"}}
    default = plan_keys(**{**base_spec, "methods": methods, "method_params": params})
    other = PromptOptions(template=1, chat=True, max_text_tokens=64)
    changed = plan_keys(
        **{**base_spec, "methods": methods, "method_params": params, "prompt": other}
    )
    same = {k[0] for k in default if default[k] == changed[k]}
    assert same == {"head", "features-lr", "encoder-ft", "distill"}
    # distill reads what its teacher reads
    params = {"distill": {"teacher": "prompt-lora"}}
    default = plan_keys(**{**base_spec, "methods": ["distill"], "method_params": params})
    changed = plan_keys(
        **{**base_spec, "methods": ["distill"], "method_params": params, "prompt": other}
    )
    assert default != changed


def test_task_version_covers_data_labels_verbalisers_and_templates():
    task = tiny_task()
    assert tiny_task().fingerprint == task.fingerprint
    assert task.fingerprint.startswith(task.version + "+")
    changes = {
        "verbalizers": [["sport"], *task.verbalizers[1:]],
        "templates": [task.templates[0] + " ", *task.templates[1:]],
        "label_names": list(reversed(task.label_names)),
        "train": task.train.subset(np.arange(len(task.train) - 1)),
        "test": dataclasses.replace(task.test, texts=[t + "!" for t in task.test.texts]),
    }
    fingerprints = {
        field: dataclasses.replace(task, **{field: value}).fingerprint
        for field, value in changes.items()
    }
    assert task.fingerprint not in fingerprints.values()
    assert len(set(fingerprints.values())) == len(changes)


def test_the_task_version_enters_the_sweep_key(base_spec, task_files):
    before = plan_keys(**base_spec)
    frame = pd.read_csv(task_files[0])
    frame.loc[0, "text"] = frame.loc[0, "text"] + " again"
    frame.to_csv(task_files[0], index=False)
    after = plan_keys(**base_spec)
    assert all(before[k] != after[k] for k in before)


# -- hub models --------------------------------------------------------------------------

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_cache(tmp_path, monkeypatch, tiny_lm_dir):
    """A Hugging Face cache holding one snapshot of `org/tiny`."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    snapshot = cache / "models--org--tiny" / "snapshots" / COMMIT
    shutil.copytree(tiny_lm_dir, snapshot)
    (cache / "models--org--tiny" / "refs").mkdir()
    (cache / "models--org--tiny" / "refs" / "main").write_text(COMMIT)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def test_offline_a_hub_id_is_keyed_by_its_cached_commit(hub_cache):
    source = resolve("org/tiny")
    assert (source.path, source.revision, source.commit) == ("org/tiny", f"hub-{COMMIT}", COMMIT)


def test_online_the_hub_answers_and_a_failure_falls_back_to_the_cache(hub_cache, monkeypatch):
    from huggingface_hub import HfApi, constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(HfApi, "model_info", lambda self, repo, **kw: SimpleNamespace(sha="f" * 40))
    assert resolve("org/tiny").commit == "f" * 40

    def unreachable(self, repo, **kw):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(HfApi, "model_info", unreachable)
    assert resolve("org/tiny").commit == COMMIT


def test_a_hub_id_without_a_commit_is_a_one_line_error_before_planning(hub_cache, base_spec):
    with pytest.raises(PromptworthError, match=r"'org/missing'.*offline") as error:
        BackboneCache(Placement("cpu", "float32")).revision("org/missing")
    assert "\n" not in str(error.value)
    with pytest.raises(PromptworthError, match="models/nowhere"):
        Sweep(SweepSpec(**{**base_spec, "models": ["models/nowhere"]}), quiet=True)


def test_backbones_named_by_method_parameters_are_canonical_and_keyed(base_spec, model_dir):
    """distill's teacher_model (and an encoder-ft `encoder`, even inside student_params) gets
    the same treatment as --model: one spelling, and its revision in the key."""
    teacher = Path(shutil.copytree(model_dir, model_dir.parent / "teacher"))
    params = {"teacher": "zero-shot", "teacher_model": str(teacher) + "/"}
    params["student_params"] = {"encoder": base_spec["encoders"][0] + "/"}
    spec = {**base_spec, "methods": ["distill", "head"], "method_params": {"distill": params}}
    keys = plan_keys(**spec)
    plan = Sweep(SweepSpec(**spec), quiet=True).plan()
    config = next(r.config for r in plan if r.config.method == "distill")
    assert config.method_params["teacher_model"] == str(teacher)
    assert config.method_params["student_params"]["encoder"] == str(Path(base_spec["encoders"][0]))
    assert set(config.backbone_revisions) == {str(teacher), str(Path(base_spec["encoders"][0]))}
    plain = {**params, "teacher_model": str(teacher)}
    assert plan_keys(**{**spec, "method_params": {"distill": plain}}) == keys
    (teacher / "config.json").write_text((teacher / "config.json").read_text() + "\n")
    changed = plan_keys(**spec)
    assert {k[0] for k in keys if keys[k] != changed[k]} == {"distill"}
