"""Keep a store's prompt-trained runs after the step cap's default rose from 150 to 300.

Runs whose 150-step cap did not bind (10 epochs of at most 120 examples at batch 8: every
10- and 100-label run) are the same experiment under the new cap and move to its key; runs
the cap stopped (e.g. 1,000 labels) stay under their old key, as the different experiments
they are, and are rerun by the next sweep (docs/concepts/reproducibility.md#changed-defaults).

Usage: .venv/bin/python scripts/rekey_step_cap.py STORE_DIR [STORE_DIR ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

from promptworth.methods import prompt_started
from promptworth.methods.prompt_training import TrainingConfig
from promptworth.store.database import RunStore
from promptworth.store.rekey import rekey_unbound

OLD_CAP, NEW_CAP = 150, TrainingConfig.max_steps


def main() -> None:
    for out in map(Path, sys.argv[1:]):
        store = RunStore(out / "runs.sqlite")
        done = rekey_unbound(store, prompt_started(), OLD_CAP, NEW_CAP)
        store.close()
        print(
            f"{out}: {done.moved} moved to max_steps={NEW_CAP}, {done.bound} stopped by the "
            f"old cap kept, {done.clash} kept (new key already stored)"
        )


if __name__ == "__main__":
    main()
