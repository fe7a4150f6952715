"""The benchmark pages of the documentation and the README's benchmark table are what
scripts/docs_benchmarks.py writes from the committed stores now: never typed, never stale."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def docs_benchmarks(load_script):
    return load_script("docs_benchmarks")


def test_committed_pages_and_readme_table_are_current(docs_benchmarks):
    for path, text in docs_benchmarks.expected().items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path} is out of date: run .venv/bin/python scripts/docs_benchmarks.py"
        )


def test_environment_block_is_read_from_the_store(docs_benchmarks):
    """CPU and package versions come from the runs and the store's meta, with counts."""
    rows = [
        ("k1", {"task": "t", "model": "m", "encoder": "e", "dtype": "float32"}, {"cpu": "cpu-a"}),
        ("k2", {"task": "t", "model": "m", "encoder": "e", "dtype": "float32"}, {"cpu": ""}),
        ("k3", {"task": "t", "model": "m", "encoder": "e", "dtype": "float32"}, {"cpu": "cpu-a"}),
    ]
    lines = docs_benchmarks.environment(rows, {"torch": "9.9", "schema_version": "3"})
    assert "- CPU: `cpu-a` (2 runs), `not recorded` (1 run)" in lines
    assert "- causal LM: `m`; encoder: `e`" in lines
    assert "- packages that created the store: torch 9.9" in lines


def test_a_readme_without_markers_is_refused(docs_benchmarks):
    with pytest.raises(SystemExit, match="no '<!-- quality-table -->'"):
        docs_benchmarks.readme_with_table("# a README without the table\n")
