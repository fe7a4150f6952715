"""The `promptworth` command: a thin layer over the library, one module per command. Heavy
imports happen inside commands, so `--help` and `promptworth methods` never import torch.

A user error (PromptworthError, or a usage error argparse finds) is one line `promptworth: error:
...` and exit status 2; any other exception is a bug in promptworth: it keeps its traceback and
the exit status is 1.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import textwrap
import traceback
from typing import NoReturn

from promptworth.cli import (
    advantage,
    fit,
    judge,
    methods,
    predict,
    recommend,
    report,
    run,
    suite,
    tasks,
)
from promptworth.errors import PromptworthError
from promptworth.run.presets import DEFAULT_PRESET, preset_text


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors read like every other user error: one line, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"promptworth: error: {message} (see `{self.prog} --help`)\n")


EXAMPLES = "\n".join(
    [
        "examples:",
        *textwrap.wrap(
            f"the main job, AG News on the packaged models ({preset_text(DEFAULT_PRESET)}):",
            width=88,
            initial_indent="  # ",
            subsequent_indent="  # ",
        ),
        "  promptworth run",
        "  # your own CSV, with your own prompt: write a task file, edit it, check it, run it",
        "  promptworth tasks new reviews.csv -o reviews.yaml",
        "  promptworth tasks show reviews.yaml && promptworth run --task reviews.yaml",
        "  # which method to use, at what cost, for your label budget and query volume",
        "  promptworth recommend promptworth-out --labels 100 --queries-per-day 50000",
    ]
)
# name -> (help line, module with add_arguments and main); `compare` is report.py's second.
COMMANDS = {
    "run": ("run a sweep (default: the AG News main job)", run),
    "suite": ("the same sweep over several tasks, then the cross-task verdict", suite),
    "report": ("rewrite the report of an output directory from its store", report),
    "recommend": ("which method to use for a scenario, with costs and break-even", recommend),
    "advantage": ("how many data points one method is worth over another", advantage),
    "fit": ("train one method on your labels into a model directory, as a sweep ran it", fit),
    "predict": ("label a CSV or JSONL file with a model `fit` wrote", predict),
    "judge": ("check an LLM judge, or judge two methods' stored answers pairwise", judge),
    "methods": ("list the adaptation methods, or one method's parameters", methods),
    "tasks": ("list the built-in tasks; write or check a task file", tasks),
}


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("promptworth")
    except PackageNotFoundError:  # run from a source tree without installing
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="promptworth",
        description="Prompt or fine-tune? Learning curves, data-point advantage and costs of "
        "LM adaptation methods.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"promptworth {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (line, module) in COMMANDS.items():
        command = commands.add_parser(name, help=line, description=line)
        module.add_arguments(command)
        command.set_defaults(handler=module.main)
        if name == "run":
            command.epilog = EXAMPLES
            command.formatter_class = argparse.RawDescriptionHelpFormatter
        if name == "report":  # beside it, for the same output directory
            compare = commands.add_parser("compare", help="paired test of two methods in OUT")
            report.add_compare_arguments(compare)
            compare.set_defaults(handler=report.compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit:  # --help (0) or a usage error (2), already printed
        return exit.code if isinstance(exit.code, int) else 2
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    quiet_libraries()
    try:
        code = args.handler(args)
        sys.stdout.flush()  # here, so that a reader gone (`| head -1`) is seen below
        return code
    except PromptworthError as error:
        print(f"promptworth: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    except Exception as error:
        if isinstance(error, BrokenPipeError) and stdout_reader_gone():
            return quiet_exit_on_closed_pipe()
        traceback.print_exc()
        print(
            "promptworth: internal error: this is a bug in promptworth; please report it with "
            "the traceback above",
            file=sys.stderr,
        )
        return 1


def stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has gone (poll reports an error or hang-up on
    it), so the BrokenPipeError being handled is stdout's: one on a pipe of promptworth's
    own, to a worker or a server, is an internal error. Without poll (Windows): assumed."""
    import select

    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by an object without a file
        return False
    if not hasattr(select, "poll"):
        return True
    poller = select.poll()
    poller.register(descriptor, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def quiet_exit_on_closed_pipe() -> int:
    """`promptworth ... | head -1`: the reader has gone, so exit without a word, as programs
    killed by SIGPIPE do (status 128 + 13). Python's recipe (the `signal` module's docs on
    SIGPIPE): stdout goes to devnull, so the interpreter's last flush has nowhere to fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 128 + 13


def quiet_libraries() -> None:
    """Keep transformers' per-load progress bars and advice out of the user's terminal."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
