"""A run is fully described by its config; the hash of that config is the run's key.

The key means what it says (docs/concepts/reproducibility.md#run-keys): model specs are
canonical (a local directory is its resolved absolute path), revisions are a digest of a
directory's loaded bytes or a hub commit, the task version covers data, labels, verbalisers and
templates, and the prompt options are those the method reads. A new data file, template or
model version never reuses results computed on the old one, and one experiment spelt two ways is
one key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from promptworth.methods.base import PromptOptions
from promptworth.methods.registry import REGISTRY, method_class

# The fields that vary along one learning curve; every other field tells experiments apart, so
# runs that differ in any of them are never averaged together (analysis/results.py).
CURVE_FIELDS = ("n_train", "seed")
# Prompt options added after stores of runs existed; left out of a config (and so of its key)
# when empty, so the configs and keys of those runs (and of every run that does not use them)
# stay what they were, and the report never tells them apart.
LATER_PROMPT_FIELDS = ("verbalizer",)
# What the memory columns of a run cover (`memory_scope`): "run" = models cached for other runs
# were freed (BackboneCache.begin, .held_only) and the high-water mark was reset; runs stored
# without it (or where the mark cannot be reset: not Linux) measured upper bounds.
MEMORY_SCOPE = "run"
# How `--predict generate` prompts and reads answers: the prompt lists the answer options and
# the answer may take the longest verbaliser word's tokens (methods/generation.py). Generating
# runs carry it in their config, so runs stored before, whose prompts listed no options and
# whose answers were cut at 5 tokens, keep their own keys and are never mixed with these.
GENERATION_PROTOCOL = "options-listed"
# How a method that shows demonstrations lays them out under a chat template: one user turn
# and the assistant's answer each (methods/few_shot.py). Such runs carry it in their config, so
# runs stored before, whose demonstrations were pasted into the one user message, keep their
# own keys.
CHAT_DEMONSTRATIONS = "turns"


@dataclass(frozen=True)
class RunConfig:
    task: str
    task_version: str
    model: str
    model_revision: str
    encoder: str
    encoder_revision: str
    method: str
    method_params: dict[str, Any]
    n_train: int
    seed: int
    test_size: int
    sampling: str  # subsets.SAMPLINGS
    dtype: str
    prompt: PromptOptions = field(default_factory=PromptOptions)
    # backbones named by method parameters (distill's teacher_model, ...) -> their revisions
    backbone_revisions: dict[str, str] = field(default_factory=dict)
    # a task scored by the judge metric: the judge's model, revision and prompt protocol
    # (run/model_scores.py); left out of the config, and so of the key, when empty
    judge: dict[str, str] = field(default_factory=dict)
    # the serving precisions each run also measures (run/serve_dtype.py); left out when none,
    # so runs that measure none keep the keys they had
    serve_dtypes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        described = asdict(self)
        if not described["judge"]:
            del described["judge"]
        if not self.serve_dtypes:
            del described["serve_dtypes"]
        for name in LATER_PROMPT_FIELDS:  # unused, they leave the config as it was
            if not described["prompt"].get(name, True):
                del described["prompt"][name]
        if described["prompt"].get("chat") is None:  # not chosen is off, as it always read
            described["prompt"]["chat"] = False
        if described["prompt"].get("predict") == "generate":
            described["prompt"]["generation"] = GENERATION_PROTOCOL
        if described["prompt"]["chat"] and shows_demonstrations(self.method):
            described["prompt"]["demonstrations"] = CHAT_DEMONSTRATIONS
        return described

    def key(self) -> str:
        return config_key(self.to_dict())


def shows_demonstrations(method: str) -> bool:
    """Whether `method` shows labelled examples in its prompts (a name no longer registered,
    from an old store: no)."""
    return method in REGISTRY and method_class(method).shows_demonstrations


def config_key(described: dict[str, Any]) -> str:
    """The key of a described config (RunConfig.to_dict(), or a stored run's config)."""
    canonical = json.dumps(described, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]
