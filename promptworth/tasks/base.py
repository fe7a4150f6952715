"""What a task is: labelled texts, label names, verbaliser words and prompt templates."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

TEXT_SLOT = "{text}"


@dataclass(frozen=True)
class Split:
    """Texts with integer labels; the unit every method fits and predicts on."""

    texts: list[str]
    labels: np.ndarray

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: np.ndarray | list[int]) -> Split:
        idx = np.asarray(indices, dtype=int)
        return Split([self.texts[i] for i in idx], self.labels[idx])


@dataclass
class Task:
    """A text-classification task.

    `version` names where the data came from (a file digest, a package version); `fingerprint`
    adds a digest of everything that decides a run's result and enters every run key, so a
    changed file, label name, verbaliser or template never mixes with earlier results.
    """

    name: str
    version: str
    label_names: list[str]
    verbalizers: list[list[str]]
    templates: list[str]
    train: Split
    test: Split
    description: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.verbalizers) != len(self.label_names):
            raise ValueError(
                f"task {self.name}: {len(self.label_names)} labels but "
                f"{len(self.verbalizers)} verbaliser lists"
            )
        for template in self.templates:
            if TEXT_SLOT not in template:
                raise ValueError(f"task {self.name}: template {template!r} has no {TEXT_SLOT} slot")

    @cached_property
    def fingerprint(self) -> str:
        """`version` + a digest of the texts, labels, label names, verbalisers and templates."""
        digest = hashlib.sha256()
        described = [self.label_names, self.verbalizers, self.templates, self.extra]
        digest.update(json.dumps(described, sort_keys=True, default=str).encode())
        for split in (self.train, self.test):
            digest.update(len(split).to_bytes(8, "little"))
            digest.update(np.asarray(split.labels, dtype=np.int64).tobytes())
            for text in split.texts:
                digest.update(text.encode())
                digest.update(b"\0")
        return f"{self.version}+{digest.hexdigest()[:12]}"

    @property
    def n_labels(self) -> int:
        return len(self.label_names)

    def render(self, template_index: int, text: str) -> str:
        return self.templates[template_index].replace(TEXT_SLOT, text)
