"""A raised step cap keeps the stored runs it cannot change (promptworth.store.rekey), and only
those."""

from __future__ import annotations

from promptworth.run.sweep import Sweep
from promptworth.store.rekey import cap_binds, rekey_unbound
from promptworth.testing import tiny_sweep

# sizes 4 and 8 at batch 4, one epoch: budgets of 1 and 2 steps, so an old cap of 1 stops only
# the 8-row runs, and a new cap of 3 stops none
RECIPE = {"epochs": 1.0, "batch_size": 4}
OLD, NEW = 1, 3


def predictions(sweep: Sweep) -> dict:
    return {
        (c["n_train"], c["seed"]): r["predictions"]
        for _, c, r in sweep.store.load()
        if c["method_params"]["max_steps"] == NEW
    }


def test_runs_the_old_cap_did_not_stop_move_to_the_new_caps_key_unchanged(
    tiny_task_files, tiny_lm_dir, tiny_encoder_dir, tmp_path
):
    def sweep(out, cap: int) -> Sweep:
        params = {"prompt-lora": {**RECIPE, "max_steps": cap}}
        spec = tiny_sweep(
            tiny_task_files, tiny_lm_dir, tiny_encoder_dir, out, ["prompt-lora"], params
        )
        return Sweep(spec, quiet=True)

    old = sweep(tmp_path / "kept", OLD)
    old.execute()
    done = rekey_unbound(old.store, ["prompt-lora"], OLD, NEW)
    assert (done.moved, done.bound, done.clash) == (2, 2, 0)  # n=4 moved, n=8 kept

    resumed = sweep(tmp_path / "kept", NEW)
    plan = resumed.plan()
    finished = {
        (r.config.n_train, r.config.seed) for r in plan if resumed.store.finished(r.config.key())
    }
    assert finished == {(4, 0), (4, 1)}
    resumed.execute()  # runs n=8 under the new cap
    fresh = sweep(tmp_path / "fresh", NEW)
    fresh.execute()
    assert predictions(resumed) == predictions(fresh)  # the moved runs are the new cap's runs
    assert rekey_unbound(resumed.store, ["prompt-lora"], OLD, NEW).moved == 0  # idempotent


def test_the_cap_binds_at_the_grids_smallest_batch_with_full_tuning():
    params = {"learning_rate": 1e-3, "epochs": 10.0, "batch_size": 8, "tune": "none"}
    assert not cap_binds(params, 100, 150)  # 125 steps
    assert cap_binds(params, 130, 150)  # 163 steps
    assert cap_binds({**params, "tune": "full"}, 100, 150)  # batch 4: 250 steps
