"""Where converted weights and other derived files live: outside the repository."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """$PROMPTWORTH_CACHE, else $XDG_CACHE_HOME/promptworth, else ~/.cache/promptworth."""
    explicit = os.environ.get("PROMPTWORTH_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "promptworth"
