"""Backbones: a causal LM or an encoder, its tokenizer, and the revision that enters run keys.

A spec is a packaged alias (the embedded defaults), a local directory, or a Hugging Face id.
Each backbone is loaded once per process (`BackboneCache`); methods that train take a copy.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptworth.backbones.device import Placement, torch_dtype
from promptworth.backbones.packaged import PACKAGED, local_dir

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


def directory_revision(path: Path) -> str:
    """Identify a local model by its config and the names and sizes of its weight files."""
    digest = hashlib.sha256(
        (path / "config.json").read_bytes() if (path / "config.json").exists() else b""
    )
    for weight in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        digest.update(f"{weight.name}:{weight.stat().st_size}".encode())
    return f"dir-{digest.hexdigest()[:16]}"


def resolve(spec: str) -> tuple[str, str]:
    """The path or id transformers loads, and its revision."""
    if spec in PACKAGED:
        path, revision = local_dir(spec)
        return str(path), revision
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"{path}: a model directory needs a config.json")
        return str(path), directory_revision(path)
    return spec, "hub"  # refined from the loaded config's commit hash below


def load(spec: str, kind: str, placement: Placement) -> Backbone:
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    source, revision = resolve(spec)
    auto = AutoModelForCausalLM if kind == "causal-lm" else AutoModel
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = auto.from_pretrained(source, dtype=torch_dtype(placement.dtype))
    except OSError as error:
        raise OSError(
            f"could not load {kind} {spec!r}: {error}\nGive a packaged alias "
            f"({', '.join(PACKAGED)}), a local model directory, or a Hugging Face id you can reach."
        ) from error
    if revision == "hub":
        revision = f"hub-{getattr(model.config, '_commit_hash', None) or 'unknown'}"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(placement.device).eval()
    return Backbone(spec, revision, kind, model, tokenizer, placement)


class BackboneCache:
    """Loads each (spec, kind) once per process."""

    def __init__(self, placement: Placement):
        self.placement = placement
        self._loaded: dict[tuple[str, str], Backbone] = {}

    def get(self, spec: str, kind: str) -> Backbone:
        key = (spec, kind)
        if key not in self._loaded:
            self._loaded[key] = load(spec, kind, self.placement)
        return self._loaded[key]

    def revision(self, spec: str) -> str:
        """The revision without loading weights (the run key needs it before a run starts)."""
        for (loaded_spec, _), backbone in self._loaded.items():
            if loaded_spec == spec:
                return backbone.revision
        _source, revision = resolve(spec)
        return revision if revision != "hub" else f"hub-{spec}"
