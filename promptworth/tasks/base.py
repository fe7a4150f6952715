"""What a task is: labelled texts, label names, verbaliser words and prompt templates."""

from __future__ import annotations

from dataclasses import dataclass, field

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

    `version` identifies the data itself (it enters every run key), so a changed file or
    package version never mixes with earlier results.
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

    @property
    def n_labels(self) -> int:
        return len(self.label_names)

    def render(self, template_index: int, text: str) -> str:
        return self.templates[template_index].replace(TEXT_SLOT, text)
