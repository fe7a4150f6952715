"""Every pointer from code or program output to the documentation names a page that exists and
a heading on it; so does every relative link of the README.

A pointer is a repository path of a docs page with an optional anchor,
`docs/concepts/uncertainty.md#the-bootstrap`. Anchors are computed as the site's table of
contents computes them (Python-Markdown's toc extension, `slugify`), and a test checks that
computation against Python-Markdown itself where it is installed.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
POINTER = re.compile(r"\bdocs/(?:[\w-]+/)*[\w.-]+\.md(?:#[\w-]+)?")
SOURCES = [*sorted((ROOT / "promptworth").rglob("*.py")), *sorted((ROOT / "scripts").glob("*"))]
SOURCES += [ROOT / "pyproject.toml", ROOT / "mkdocs.yml"]
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
EXPLICIT_ANCHOR = re.compile(r'<a id="([\w-]+)"></a>')
MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")


def slugify(value: str, separator: str = "-") -> str:
    """Python-Markdown's toc.slugify: ASCII-fold, drop punctuation, lower-case, join with '-'."""
    value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    value = re.sub(r"[^\w\s-]", "", value).strip().lower()
    return re.sub(rf"[{separator}\s]+", separator, value)


def heading_text(markdown: str) -> str:
    """What the heading renders to, as text: links by their text, code and emphasis marks gone."""
    text = MARKDOWN_LINK.sub(r"\1", markdown)
    return re.sub(r"[`*]", "", text)


def anchors(page: Path) -> set[str]:
    """The ids of a page's headings (duplicates get _1, _2, ... as in the toc) and explicit
    anchors, outside code blocks."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    in_code = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            in_code = not in_code
            continue
        if in_code:
            continue
        found.update(EXPLICIT_ANCHOR.findall(line))
        match = HEADING.match(line)
        if match:
            slug = slugify(heading_text(match.group(2)))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}_{count}")
    return found


def pointers() -> list[tuple[str, str]]:
    """(where, pointer) for every docs pointer in the package, the scripts and the configs."""
    found = []
    for source in SOURCES:
        if not source.is_file():
            continue
        for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
            found += [(f"{source.relative_to(ROOT)}:{number}", p) for p in POINTER.findall(line)]
    return found


def check(target: Path, anchor: str | None, where: str) -> str | None:
    name = target.relative_to(ROOT) if target.is_relative_to(ROOT) else target
    if not target.exists():
        return f"{where}: {name} does not exist"
    if anchor and target.suffix == ".md" and anchor not in anchors(target):
        return f"{where}: {name} has no heading #{anchor}"
    return None


def test_the_package_points_to_the_documentation():
    """A guard against the collector finding nothing: the report's notes point to the docs."""
    assert len(pointers()) >= 25


def test_every_pointer_names_an_existing_page_and_anchor():
    problems = []
    for where, pointer in pointers():
        page, _, anchor = pointer.partition("#")
        problems.append(check(ROOT / page, anchor or None, where))
    assert not [p for p in problems if p], "\n".join(p for p in problems if p)


def test_every_relative_link_of_the_readme_resolves():
    problems = []
    for number, line in enumerate((ROOT / "README.md").read_text().splitlines(), 1):
        for _, target in MARKDOWN_LINK.findall(line):
            if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            page = ROOT / "README.md" if not path else ROOT / path
            problems.append(check(page, anchor or None, f"README.md:{number}"))
    assert not [p for p in problems if p], "\n".join(p for p in problems if p)


def test_a_missing_anchor_is_caught(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n## The bootstrap\n\n```\n# not a heading\n```\n")
    assert anchors(page) == {"title", "the-bootstrap"}
    assert check(page, "not-a-heading", "here") is not None
    assert check(tmp_path / "absent.md", None, "here") is not None


def test_anchors_match_python_markdowns_table_of_contents():
    markdown = pytest.importorskip("markdown", reason="Python-Markdown is in the docs extra")
    for page in sorted(DOCS.rglob("*.md")):
        md = markdown.Markdown(extensions=["toc", "tables", "attr_list", "pymdownx.superfences"])
        md.convert(page.read_text(encoding="utf-8"))
        expected = set()
        stack = list(md.toc_tokens)
        while stack:
            token = stack.pop()
            expected.add(token["id"])
            stack += token["children"]
        assert expected <= anchors(page), (page, expected - anchors(page))
