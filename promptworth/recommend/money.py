"""Money as the answer writes it: always with its currency, and a total with its period."""

from __future__ import annotations

from promptworth.recommend.inputs import Inputs

YEAR_DAYS = 365


def money(value: float) -> str:
    """$782, $1,234, $0.43, < $0.01: dollars and cents below $100, whole dollars above."""
    if 0 < abs(value) < 0.005:
        return "< $0.01"
    return f"${value:,.0f}" if abs(value) >= 100 else f"${value:,.2f}"


def period(days: float) -> str:
    """The period a total covers: "a year" for the default horizon, else "over N days"."""
    return "a year" if days == YEAR_DAYS else f"over {days:g} days"


def over(inputs: Inputs) -> str:
    return period(inputs.horizon_days)


def size(mb: float) -> str:
    """Megabytes as people read them: 90.9 MB, 46.1 kB, 16 B."""
    for unit, scale in (("MB", 1.0), ("kB", 1e-3)):
        if mb >= scale:
            return f"{mb / scale:,.3g} {unit}"
    return f"{mb * 1e6:,.0f} B"
