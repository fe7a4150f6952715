"""What a sweep leaves in its store for the report (`meta` entries), so that `promptworth report`
rewrites the sweep's report exactly: its header and data section (which need the task and the
tokenizer, not the store), the run keys they describe, and the test texts with the task's label
names (the disagreements table quotes them)."""

from __future__ import annotations

import json
from pathlib import Path

HEADER = "report_header"
TEST_ROWS = "test_rows:"  # + the runs' test_digest


def save_report_inputs(
    store, description: list[str], keys: list[str], digest: str, texts: list[str], names: list[str]
) -> None:
    """Keep the report's header (`description`, for the finished runs `keys`) and the test rows
    the runs were scored on (identified by their `digest`)."""
    store.save_meta(
        {
            HEADER: json.dumps({"description": description, "keys": sorted(keys)}),
            TEST_ROWS + digest: json.dumps({"texts": texts, "label_names": names}),
        }
    )


def saved_description(store, keys: set[str]) -> list[str] | None:
    """The header the last sweep wrote, when it described exactly these finished runs; else
    None (another sweep added runs, or the store predates saved headers)."""
    saved = store.meta().get(HEADER)
    if saved is None:
        return None
    header = json.loads(saved)
    return header["description"] if set(header["keys"]) == keys else None


def saved_test_rows(out: Path) -> dict[str, dict]:
    """test_digest -> {texts, label_names} from the store in `out`, empty without one."""
    from promptworth.store.database import RunStore

    database = out / "runs.sqlite"
    if not database.is_file():
        return {}
    store = RunStore(database)
    try:
        meta = store.meta()
    finally:
        store.close()
    return {
        name.removeprefix(TEST_ROWS): json.loads(value)
        for name, value in meta.items()
        if name.startswith(TEST_ROWS)
    }
