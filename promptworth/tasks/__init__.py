"""Task registry: built-in tasks by name (imported lazily), or a user's files / `datasets` name."""

from __future__ import annotations

import importlib
from pathlib import Path

from promptworth.tasks.base import Split, Task

# name -> (module, one-line description). Registering a task is one line here.
BUILTIN_TASKS: dict[str, tuple[str, str]] = {
    "ag_news": (
        "promptworth.tasks.ag_news",
        "AG News topics, 120,000/7,600, from the StaICC package",
    ),
}

__all__ = ["BUILTIN_TASKS", "Split", "Task", "load_task"]


def load_task(
    spec: str, test_file: str | None = None, text_column: str = "text", label_column: str = "label"
) -> Task:
    """Resolve `spec`: a built-in name, a CSV/JSONL/Parquet path, or a `datasets` name."""
    if spec in BUILTIN_TASKS:
        return importlib.import_module(BUILTIN_TASKS[spec][0]).load()
    from promptworth.tasks import files

    if Path(spec).suffix.lower() in files.READERS or Path(spec).exists():
        return files.load_files(spec, test_file, text_column, label_column)
    return files.load_hf_dataset(spec, text_column, label_column)
