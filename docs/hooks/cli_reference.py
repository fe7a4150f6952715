"""mkdocs hook: the CLI reference, rendered from promptworth's own argparse parser at build time.

A page that holds the marker `<!-- generated: cli-reference -->` gets, in its place, one section
per command (and sub-command) with its usage line and a table of its arguments, so the reference
can never drift from `promptworth COMMAND --help`. A page holding `<!-- generated: changelog -->`
gets the repository's CHANGELOG.md in its place.
"""

from __future__ import annotations

import argparse
from pathlib import Path

CLI_MARKER = "<!-- generated: cli-reference -->"
CHANGELOG_MARKER = "<!-- generated: changelog -->"
ROOT = Path(__file__).resolve().parents[2]


def on_page_markdown(markdown: str, page, config, files) -> str:
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_reference())
    if CHANGELOG_MARKER in markdown:
        markdown = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    return markdown


def cli_reference() -> str:
    from promptworth.cli import build_parser

    parser = build_parser()
    return "\n".join(command_sections(parser, "promptworth"))


def command_sections(parser: argparse.ArgumentParser, name: str) -> list[str]:
    """This command's section, then one per sub-command, depth first."""
    lines = [f"## `{name}`", ""]
    summary = parser.description or ""
    if summary:
        lines += [summary, ""]
    lines += ["```text", parser.format_usage().strip(), "```", ""]
    rows = [argument_row(action) for action in parser._actions if shown(action)]
    if rows:
        lines += ["| argument | values | default | what it does |", "|---|---|---|---|", *rows, ""]
    for sub_name, sub_parser, help_text in subcommands(parser):
        section = command_sections(sub_parser, f"{name} {sub_name}")
        if help_text and not sub_parser.description:
            section[2:2] = [help_text, ""]
        lines += section
    return lines


def subcommands(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for sub_name, sub_parser in action.choices.items():
                yield sub_name, sub_parser, helps.get(sub_name, "")


def shown(action: argparse.Action) -> bool:
    return not isinstance(action, argparse._HelpAction | argparse._SubParsersAction) and (
        action.help != argparse.SUPPRESS
    )


def argument_row(action: argparse.Action) -> str:
    name = ", ".join(f"`{option}`" for option in action.option_strings) or f"`{action.dest}`"
    help_text = argparse.HelpFormatter("promptworth")._expand_help(action) if action.help else ""
    return f"| {name} | {values(action)} | {default(action)} | {cell(help_text)} |"


def values(action: argparse.Action) -> str:
    if action.choices is not None:
        return ", ".join(f"`{choice}`" for choice in action.choices)
    if action.nargs == 0:
        return "flag"
    metavar = action.metavar or action.dest.upper()
    if isinstance(metavar, tuple):
        metavar = " ".join(metavar)
    suffix = " (repeatable)" if isinstance(action, argparse._AppendAction) else ""
    return f"`{metavar}`{suffix}"


def default(action: argparse.Action) -> str:
    if action.nargs == 0 or action.default in (None, [], argparse.SUPPRESS) or action.required:
        return "required" if action.required and action.option_strings else ""
    return f"`{action.default}`"


def cell(text: str) -> str:
    """One markdown table cell: white space folded, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")
