"""What the sweep itself costs per run, on each executor: claiming the lease, handing the run to
a worker, scoring it and writing it to the store.

Runs N instant runs of the test-only `dies-once` method (its marker made beforehand, so no run
dies: each predicts label 0 at once) on tiny random backbones, and prints the steady rate from
the first recorded run to the last, Ray's start-up left out. A script, never a timed test
(docs/how-to/scale-out.md#ray).

    python scripts/driver_overhead.py [--runs 200] [--executors local,ray]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from promptworth.methods import REGISTRY
from promptworth.run.executors import RayExecutor, RayOptions
from promptworth.run.sweep import Sweep, SweepSpec
from promptworth.testing import save_tiny_causal_lm, save_tiny_encoder, tiny_task, write_task_files


def instant_sweep(folder: Path, runs: int, name: str, executor) -> Sweep:
    """`runs` dies-once runs: 5 seeds x sizes 3, 4, ... on a tiny task."""
    train, test = write_task_files(tiny_task(n_train=runs // 5 + 3, n_test=24), folder)
    marker = folder / "marker"
    marker.touch()
    spec = SweepSpec(
        task=train,
        test_file=test,
        models=[str(save_tiny_causal_lm(folder / "lm"))],
        encoders=[str(save_tiny_encoder(folder / "encoder"))],
        methods=["dies-once"],
        method_params={"dies-once": {"marker": str(marker)}},
        sizes=list(range(3, 3 + runs // 5)),
        seeds=list(range(5)),
        dtype="float32",
        out=folder / f"out-{name}",
    )
    return Sweep(spec, quiet=True, executor=executor)


def measure(sweep: Sweep) -> tuple[int, float]:
    """(runs recorded, seconds from the first recorded run to the last)."""
    stamps = []
    record = sweep.record

    def timed(done, *args):
        lost = record(done, *args)
        stamps.extend(time.perf_counter() for _ in done)
        return lost

    sweep.record = timed
    plan, failures = sweep.execute()
    assert not failures and len(stamps) == len(plan), failures
    return len(stamps) - 1, stamps[-1] - stamps[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--executors", default="local,ray")
    args = parser.parse_args()
    REGISTRY["dies-once"] = ("promptworth.testing:DiesOnce", "test-only")
    for name in args.executors.split(","):
        executor = RayExecutor(RayOptions(run_cpus=1)) if name == "ray" else None
        with tempfile.TemporaryDirectory() as folder:
            runs, seconds = measure(instant_sweep(Path(folder), args.runs, name, executor))
        print(
            f"{name}: {runs} runs in {seconds:.1f} s after the first: "
            f"{runs / seconds:.1f} runs/s, {1000 * seconds / runs:.0f} ms per run"
        )


if __name__ == "__main__":
    main()
