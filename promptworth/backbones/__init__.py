"""Backbones: a causal LM or an encoder, its tokenizer, and the revision that enters run keys.

A spec is a packaged alias (the embedded defaults), a local directory, or a Hugging Face id.
Each spec is resolved once per process (`BackboneCache.source`: its canonical form and revision)
and each backbone is loaded once (`BackboneCache.get`); methods that train take a copy.
Code shipped inside a model directory or repository is never run: every load goes through
backbones/loading.py (`trust_remote_code=False`, no prompt; docs/concepts/reliability.md#models).
"""

from __future__ import annotations

import copy
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from promptworth.backbones.device import Placement, torch_dtype
from promptworth.backbones.loading import load_pretrained
from promptworth.backbones.packaged import PACKAGED, local_dir
from promptworth.backbones.revision import directory_revision, hub_commit
from promptworth.errors import PromptworthError

DEFAULT_CAUSAL_LM = "smollm2-135m-instruct"
DEFAULT_ENCODER = "all-minilm-l6-v2"


@dataclass
class Backbone:
    spec: str
    revision: str
    kind: str  # "causal-lm" or "encoder"
    model: Any
    tokenizer: Any
    placement: Placement

    def fresh_model(self):
        """A trainable copy, so the shared frozen model is never changed by a training run."""
        return copy.deepcopy(self.model)


@dataclass(frozen=True)
class Source:
    """What transformers loads for a spec and the revision that enters run keys."""

    path: str  # a local directory or a hub id
    revision: str
    commit: str | None = None  # a hub model's resolved commit, loaded exactly


def canonical_spec(spec: str) -> str:
    """One spelling per model, so `models/x`, `models/x/` and `~/models/x` make one key: a local
    directory becomes its resolved absolute path; aliases and hub ids stay as given."""
    if spec in PACKAGED:
        return spec
    path = Path(spec).expanduser()
    return str(path.resolve()) if path.is_dir() else spec


def resolve(spec: str) -> Source:
    """The path or id transformers loads, and its revision (see backbones/revision.py)."""
    if spec in PACKAGED:
        path, revision = local_dir(spec)
        return Source(str(path), revision)
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise PromptworthError(f"{path}: a model directory needs a config.json")
        return Source(str(path.resolve()), directory_revision(path.resolve()))
    commit = hub_commit(spec)
    return Source(spec, f"hub-{commit}", commit)


def load(spec: str, source: Source, kind: str, placement: Placement) -> Backbone:
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    auto = AutoModelForCausalLM if kind == "causal-lm" else AutoModel
    try:
        tokenizer = load_pretrained(AutoTokenizer, source.path, revision=source.commit)
        model = load_pretrained(
            auto, source.path, revision=source.commit, dtype=torch_dtype(placement.dtype)
        )
    except OSError as error:
        raise PromptworthError(
            f"could not load {kind} {spec!r}: {error}".replace("\n", " ")
            + f"; give a packaged alias ({', '.join(PACKAGED)}), a local model directory, "
            "or a Hugging Face id you can reach"
        ) from error
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(placement.device).eval()
    return Backbone(spec, source.revision, kind, model, tokenizer, placement)


class BackboneCache:
    """Resolves each spec once and loads each (spec, kind) once per process, keeping a loaded
    model only while it serves runs of one experiment after another, so that what a run's
    memory measures is its own models (runner.execute)."""

    def __init__(self, placement: Placement):
        self.placement = placement
        self._sources: dict[str, Source] = {}
        self._loaded: dict[tuple[str, str], Backbone] = {}
        self._experiment: object = None  # what the runs since the cache was last emptied share
        self.load_seconds = 0.0  # spent loading weights from disk, which runs are not charged

    def source(self, spec: str) -> Source:
        spec = canonical_spec(spec)
        if spec not in self._sources:
            self._sources[spec] = resolve(spec)
        return self._sources[spec]

    def get(self, spec: str, kind: str) -> Backbone:
        spec = canonical_spec(spec)
        key = (spec, kind)
        if key not in self._loaded:
            start = time.perf_counter()
            self._loaded[key] = load(spec, self.source(spec), kind, self.placement)
            self.load_seconds += time.perf_counter() - start
        return self._loaded[key]

    def begin(self, experiment: object) -> None:
        """A run of `experiment` starts: the models runs of another experiment left loaded are
        freed (this one may need none of them); those of a run of the same one are reused."""
        if experiment != self._experiment:
            self._loaded.clear()
        self._experiment = experiment

    @contextmanager
    def held_only(self) -> Iterator[None]:
        """Inside, the cache holds no model: only those a method holds stay resident. After, it
        takes back the ones still alive (what the method served with), for the next run."""
        parked = {
            key: (weakref.ref(backbone.model), replace(backbone, model=None))
            for key, backbone in self._loaded.items()
        }
        self._loaded.clear()
        try:
            yield
        finally:
            for key, (model, shell) in parked.items():
                if model() is not None:
                    self._loaded.setdefault(key, replace(shell, model=model()))

    def revision(self, spec: str) -> str:
        """The revision without loading weights (the run key needs it before a run starts)."""
        return self.source(spec).revision
