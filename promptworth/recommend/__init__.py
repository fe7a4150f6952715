"""Which method to use, at what cost: the recommendation from a store's measured runs.

`Inputs`, `Recommendation` and `recommend` are loaded on first use, so the CLI can read the
inputs' declarations for `--help` without importing the analysis stack."""

from __future__ import annotations

import importlib

__all__ = ["Inputs", "Recommendation", "recommend"]
HOMES = {
    "Inputs": "promptworth.recommend.inputs",
    "Recommendation": "promptworth.recommend.recommendation",
    "recommend": "promptworth.recommend.recommendation",
}


def __getattr__(name: str):
    if name not in HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(HOMES[name]), name)
