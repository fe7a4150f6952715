"""`promptworth tasks` lists the built-in tasks; `tasks new` writes a task file from a data file
and `tasks show` checks one (labels, counts, templates and a rendered prompt)."""

from __future__ import annotations

import argparse
from pathlib import Path

from promptworth.errors import PromptworthError


def add_arguments(p: argparse.ArgumentParser) -> None:
    commands = p.add_subparsers(dest="tasks_command", metavar="{new,show}")
    new = commands.add_parser("new", help="write a starting task file (YAML) from a data file")
    new.add_argument("data", help="a .csv .tsv .jsonl .json or .parquet file")
    new.add_argument(
        "--text-column", default="text", help="the input column (default: %(default)s)"
    )
    new.add_argument(
        "--label-column", default="label", help="the label column (default: %(default)s)"
    )
    new.add_argument("--encoding", default="utf-8", help="of the data file (default: %(default)s)")
    new.add_argument(
        "-o",
        "--out",
        default="task.yaml",
        help="the task file, '-' to print it (default: %(default)s)",
    )
    new.add_argument("--force", action="store_true", help="overwrite an existing task file")
    new.set_defaults(handler=write_new)
    show = commands.add_parser("show", help="labels, counts, templates and a rendered prompt")
    show.add_argument("task", help="a built-in task name, a task file or a data file")
    show.set_defaults(handler=show_task)


def main(_: argparse.Namespace) -> int:
    from promptworth.tasks import BUILTIN_TASKS

    for name, (_, description) in BUILTIN_TASKS.items():
        print(f"{name}  {description}")
    print("\nAlso: a CSV/JSONL/Parquet file (--text-column, --label-column) or a datasets name.")
    return 0


def write_new(args: argparse.Namespace) -> int:
    from promptworth.tasks.taskfile import starter_yaml

    text = starter_yaml(args.data, args.text_column, args.label_column, args.out, args.encoding)
    if args.out == "-":
        print(text, end="")
        return 0
    if Path(args.out).exists() and not args.force:
        raise PromptworthError(f"-o {args.out}: exists; give another name or --force")
    Path(args.out).write_text(text, encoding="utf-8")
    print(
        f"wrote {args.out}: edit its verbaliser words and templates, then "
        f"`promptworth tasks show {args.out}`"
    )
    return 0


def show_task(args: argparse.Namespace) -> int:
    from promptworth.tasks import load_task
    from promptworth.tasks.describe import describe

    print(describe(load_task(args.task)))
    return 0
