"""Methods grouped into the report's panels by family (Method.family), a few lines per panel so
that 17 methods can be told apart."""

from __future__ import annotations

from promptworth.methods import REGISTRY, method_class
from promptworth.methods.base import FAMILIES

MAX_LINES = 6  # methods per learning-curve panel
# The panel of methods a store holds but this promptworth does not register (renamed, removed):
# shown, under that title, rather than failing the whole report over a grouping.
UNREGISTERED = "not a registered method"


def base_name(label: str) -> str:
    """The registered method of a results label: `few-shot[selection=knn]` -> `few-shot`."""
    return label.partition("[")[0]


def method_family(label: str) -> str:
    name = base_name(label)
    return method_class(name).family if name in REGISTRY else UNREGISTERED


def family_panels(labels: list[str], max_lines: int = MAX_LINES) -> list[tuple[str, list[str]]]:
    """(title, labels) per panel in FAMILIES order, each family's labels sorted; a family with
    more than `max_lines` methods is split into numbered panels of at most that many."""
    grouped: dict[str, list[str]] = {}
    for label in sorted(labels):
        grouped.setdefault(method_family(label), []).append(label)
    panels = []
    for family in (*FAMILIES, UNREGISTERED):
        members = grouped.get(family, [])
        chunks = [members[i : i + max_lines] for i in range(0, len(members), max_lines)]
        for number, chunk in enumerate(chunks, 1):
            panels.append((family if len(chunks) == 1 else f"{family} ({number})", chunk))
    return panels


def flat_methods(frame) -> list[str]:
    """Methods measured only without training data (zero-shot): reference lines in every panel."""
    most = frame.groupby("method")["n_train"].max()
    return sorted(most[most == 0].index)
