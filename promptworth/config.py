"""A run is fully described by its config; the hash of that config is the run's key.

The key covers the task's data version and the backbones' revisions, so a new data file or
model version never reuses results computed on the old one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from promptworth.methods.base import PromptOptions


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def key(self) -> str:
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:20]
