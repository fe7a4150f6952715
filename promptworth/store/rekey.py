"""Re-key stored runs that a raised step cap cannot change.

A run's key hashes every resolved parameter, so raising a default `max_steps` gives every run of
those methods a new key, and a store would rerun them all. Where the old cap did not bind - the
budget of `epochs` passes over the subset stayed below it in every phase - the run with the new
cap takes the same steps, evaluates at the same steps and selects the same weights: it is the
same experiment. `rekey_unbound` stores exactly those runs under the new cap's key and leaves
every run the cap stopped (a genuinely different experiment) as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

from promptworth.methods.training import FULL_BATCH_SIZES, Schedule, planned_steps
from promptworth.store.config import config_key
from promptworth.store.database import RunStore


def cap_binds(params: dict, n_train: int, cap: int) -> bool:
    """Whether `cap` could have stopped any phase of a run with these method parameters: folds,
    dev-split training and the tuning grid all train on at most `n_train` rows, at the
    parameters' batch size or, with tune=full, the grid's smallest. The training rule's own
    budget (`planned_steps`) decides, given one step more than `cap`."""
    batch = params["batch_size"]
    if params.get("tune") == "full":
        batch = min(batch, *FULL_BATCH_SIZES)
    schedule = Schedule(
        params["learning_rate"], batch_size=batch, epochs=params["epochs"], max_steps=cap + 1
    )
    return planned_steps(n_train, schedule) > cap


@dataclass
class Rekeyed:
    moved: int = 0  # stored under the new cap's key
    bound: int = 0  # the old cap stopped them: left as they were
    clash: int = 0  # the new key was already stored: left as they were


def rekey_unbound(store: RunStore, methods: list[str], old_cap: int, new_cap: int) -> Rekeyed:
    """Runs of `methods` stored with `max_steps` = `old_cap` whose cap did not bind move to the
    key of the same config with `new_cap`."""
    out = Rekeyed()
    for key, config in store.configs():
        params = config["method_params"]
        if config["method"] not in methods or params.get("max_steps") != old_cap:
            continue
        if cap_binds(params, config["n_train"], old_cap):
            out.bound += 1
            continue
        config["method_params"] = {**params, "max_steps": new_cap}
        if store.rekey(key, config_key(config), config):
            out.moved += 1
        else:
            out.clash += 1
    return out
