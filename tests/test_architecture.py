"""The package's layout keeps the pipeline's order: import-linter's contracts (pyproject.toml)
hold, no module imports itself through others, and the CLI's help imports no heavy library."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "torch", "scipy", "sklearn", "transformers", "matplotlib")


def test_every_import_linter_contract_is_kept() -> None:
    from importlinter.api import read_configuration  # noqa: F401  (the package is installed)

    out = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports; lint_imports()"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert "BROKEN" not in out.stdout and out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def strongly_connected(graph: grimp.ImportGraph) -> list[set[str]]:
    """Tarjan's algorithm: the groups of modules that import each other, directly or not."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == module:
                    break
            groups.append(group)

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return groups


def test_no_import_cycles() -> None:
    graph = grimp.build_graph("promptworth", exclude_type_checking_imports=True)
    cycles = [sorted(group) for group in strongly_connected(graph) if len(group) > 1]
    assert cycles == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("a", "a.x", "a.y", "a.z"):
        graph.add_module(module)
    graph.add_import(importer="a.x", imported="a.y")
    graph.add_import(importer="a.y", imported="a.x")
    graph.add_import(importer="a.y", imported="a.z")
    assert [sorted(g) for g in strongly_connected(graph) if len(g) > 1] == [["a.x", "a.y"]]


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["suite", "--help"]])
def test_help_imports_no_heavy_library(argv: list[str]) -> None:
    code = (
        "import sys\nfrom promptworth.cli import main\ntry:\n    main(sys.argv[1:])\n"
        "finally:\n    loaded = {m.split('.')[0] for m in sys.modules}\n"
        f"    print(sorted(loaded & set({HEAVY!r})), file=sys.stderr)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *argv], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip().splitlines()[-1] == "[]"


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    found = {}
    for name, command in commands.choices.items():
        found[name] = command
        nested = [a for a in command._actions if isinstance(a, argparse._SubParsersAction)]
        if nested:
            found |= {f"{name} {k}": v for k, v in subcommands(command).items()}
    return found


def test_every_flag_of_every_command_says_what_it_does() -> None:
    from promptworth.cli import build_parser

    missing = [
        f"{name} {action.option_strings or action.dest}"
        for name, command in subcommands(build_parser()).items()
        for action in command._actions
        if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))
        and not action.help
    ]
    assert missing == []


def test_a_flag_with_a_value_names_its_default() -> None:
    """A flag that takes a value and has a default says it (`default:`) in its help."""
    from promptworth.cli import build_parser

    silent = [
        f"{name} {action.option_strings}"
        for name, command in subcommands(build_parser()).items()
        for action in command._actions
        if action.option_strings
        and action.nargs != 0
        and not action.required
        and "default" not in (action.help or "")
    ]
    assert silent == []


def test_suite_lists_only_the_flags_it_accepts(capsys) -> None:
    from promptworth.cli import main

    assert main(["suite", "--tasks", "sst2", "--executor", "ray"]) == 2
    assert "unrecognized arguments: --executor" in capsys.readouterr().err


def test_version_is_the_installed_one(capsys) -> None:
    from importlib.metadata import version

    from promptworth.cli import main

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"promptworth {version('promptworth')}"
