"""Serving times that disagree with their serving family: a method whose batched time per
example is more than OUTLIER_RATIO times off the median of the methods that serve the same
backbone on the same device with about the same prompt is flagged, so the answer never prices
it as if the figure were sound.

The family here is what sets serving cost, not the recipe's family (Method.family groups the
report's panels by how a method trains): the stored parameter count (the backbone, adapters
being a small share of it), the device and the prompt tokens per example.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from promptworth.recommend.measured import Measured

OUTLIER_RATIO = 5.0  # × the family's median time per example
SAME_BACKBONE = 0.05  # parameter counts within 5 % of each other: the same backbone
SAME_PROMPT = 0.25  # prompt tokens per example within 25 %: the same prompt length
MIN_PEERS = 2  # with a single peer the outlier of the two cannot be told


@dataclass(frozen=True)
class Outlier:
    method: str
    ms_per_example: float
    family_ms: float  # the median of its peers' time per example
    peers: tuple[str, ...]

    @property
    def ratio(self) -> float:
        return self.ms_per_example / self.family_ms

    def text(self) -> str:
        side = "slower" if self.ratio > 1 else "faster"
        times = self.ratio if self.ratio > 1 else 1 / self.ratio
        return (
            f"{self.method}'s serving time, {self.ms_per_example:,.1f} ms per example, is "
            f"{times:,.0f}× {side} than the {self.family_ms:,.1f} ms median of the methods "
            f"serving the same backbone with the same prompt length ({', '.join(self.peers)}): "
            "likely a measurement outlier; its serving cost and latency are not to be trusted "
            "until it is measured again (a sweep into a fresh --out)"
        )


def peers_of(name: str, measured: dict[str, Measured]) -> list[str]:
    """The other methods serving the same backbone on the same device with the same prompt."""
    mine = measured[name].serving
    return [
        other
        for other, m in measured.items()
        if other != name
        and m.serving.device == mine.device
        and close(m.serving.parameters, mine.parameters, SAME_BACKBONE)
        and close(m.serving.prompt_tokens, mine.prompt_tokens, SAME_PROMPT)
        and not math.isnan(m.serving.ms_per_example)
    ]


def close(a: float, b: float, share: float) -> bool:
    return not (math.isnan(a) or math.isnan(b)) and abs(a - b) <= share * max(a, b)


def serving_outliers(measured: dict[str, Measured]) -> dict[str, Outlier]:
    """Each method whose time per example is more than OUTLIER_RATIO × off its peers' median."""
    found = {}
    for name, m in measured.items():
        peers = peers_of(name, measured)
        ms = m.serving.ms_per_example
        if len(peers) < MIN_PEERS or math.isnan(ms) or ms <= 0:
            continue
        family = float(np.median([measured[p].serving.ms_per_example for p in peers]))
        if family > 0 and max(ms / family, family / ms) > OUTLIER_RATIO:
            found[name] = Outlier(name, ms, family, tuple(sorted(peers)))
    return found
