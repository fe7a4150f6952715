"""The documentation site builds with `mkdocs build --strict` (broken links and anchors fail it),
and the pages generated at build time hold what the code declares."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MISSING = [
    name
    for name in ("mkdocs", "material", "mkdocstrings_handlers.python")
    if importlib.util.find_spec(name.split(".")[0]) is None
]
pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"{', '.join(MISSING)} not installed: pip install -e '.[docs]' (scripts/setup.sh does)",
)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env["NO_MKDOCS_2_WARNING"] = "1"
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-q"]
    build = subprocess.run(
        [*command, "-f", str(ROOT / "mkdocs.yml"), "-d", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-4000:]
    return out


def test_the_cli_reference_is_generated_from_the_parser(site):
    from promptworth.cli import build_parser

    page = (site / "reference" / "cli" / "index.html").read_text()
    commands = build_parser()._subparsers._group_actions[0].choices
    for name in commands:
        assert f"promptworth {name}</code>" in page, name
    assert "--max-text-tokens" in page and "generated: cli-reference" not in page


def test_each_method_page_holds_its_parameter_table(site):
    from dataclasses import fields

    from promptworth.methods import REGISTRY, method_class

    for name in REGISTRY:
        page = (site / "reference" / "methods" / name / "index.html").read_text()
        assert "generated: method-params" not in page, name
        for field in fields(method_class(name).Config):
            assert f"<code>{field.name}</code>" in page, (name, field.name)


def test_the_deploy_page_says_what_fit_keeps_of_each_method(site):
    from promptworth.methods import REGISTRY, method_class

    page = (site / "how-to" / "deploy" / "index.html").read_text()
    assert "generated: saved-methods" not in page
    for name in REGISTRY:
        assert f'methods/{name}/"><code>{name}</code></a>' in page, name
        saveable = method_class(name).unsaveable({}) is None
        assert saveable != (f"<code>{name}</code></a></td>\n<td>cannot be saved" in page), name


def test_the_changelog_page_is_the_repositorys_changelog(site):
    page = (site / "changelog" / "index.html").read_text()
    first_entry = (ROOT / "CHANGELOG.md").read_text().split("\n## ")[1].splitlines()[0]
    assert first_entry in page


def test_the_build_fails_on_broken_links_and_anchors():
    """Strict mode turns these validation warnings into a failed build (and a failed test)."""
    import yaml

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert config["strict"] is True
    assert config["validation"]["anchors"] == "warn"
    assert config["validation"]["unrecognized_links"] == "warn"
