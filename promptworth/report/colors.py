"""One colour per method for every figure of a report, matplotlib's and Plotly's alike: a method
keeps its colour from panel to panel and from the PNGs to report.html."""

from __future__ import annotations

import re
import zlib

from promptworth.methods import REGISTRY

# Distinct hues first (matplotlib's tab10), then darker ones: a registered method takes the entry
# of its place in the sorted registry, so its colour never depends on which methods a report holds.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#637939",
    "#8c6d31",
    "#843c39",
    "#7b4173",
    "#3182bd",
    "#e6550d",
    "#31a354",
    "#756bb1",
    "#636363",
    "#a55194",
)
UNTRAINED_COLOR = "#7f7f7f"  # zero-shot: the grey reference line of every panel
REGISTERED = [name for name in sorted(REGISTRY) if name != "zero-shot"]
# A label that names only its backbone (a store of several models): `head[model=m]`
ON_A_BACKBONE = re.compile(r"(?P<method>[^\[]+)\[(?:model|encoder)=[^,]*\]")


def method_color(label: str) -> str:
    """The colour of a results label: by its registered name's place, else (a variant such as
    `few-shot[selection=knn]`, or a method this version does not register) a stable pick among
    the palette's entries no registered method takes. A method on one of several models keeps
    its method's colour (the figures tell the models apart by line style or panel)."""
    on_a_backbone = ON_A_BACKBONE.fullmatch(label)
    if on_a_backbone:
        label = on_a_backbone["method"]
    if label == "zero-shot":
        return UNTRAINED_COLOR
    if label in REGISTERED:
        return PALETTE[REGISTERED.index(label) % len(PALETTE)]
    spare = PALETTE[len(REGISTERED) :] or PALETTE
    return spare[zlib.crc32(label.encode()) % len(spare)]


def method_colors(labels) -> dict[str, str]:
    """`method_color` of each label."""
    return {label: method_color(label) for label in labels}
