"""mkdocs hook: method tables generated from the method registry and each method's Config.

`<!-- generated: method-params NAME -->` becomes the parameter table of method NAME: every field
of its Config with its type, its default and the comment written beside it in the source, so
the table is what `promptworth methods --params NAME` prints and what `--param NAME.KEY=VALUE`
accepts. `<!-- generated: method-list -->` becomes the table of every registered method, and
`<!-- generated: saved-methods -->` the table of what `promptworth fit` keeps of each: the first
paragraph of its `state` docstring, or why it cannot be saved (its `unsaveable`).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import re
import textwrap
import tokenize
import typing

PARAMS = re.compile(r"<!-- generated: method-params ([\w-]+) -->")
LIST_MARKER = "<!-- generated: method-list -->"
SAVED_MARKER = "<!-- generated: saved-methods -->"


def on_page_markdown(markdown: str, page, config, files) -> str:
    markdown = PARAMS.sub(lambda match: parameter_table(match.group(1)), markdown)
    if LIST_MARKER in markdown:
        markdown = markdown.replace(LIST_MARKER, method_list())
    if SAVED_MARKER in markdown:
        markdown = markdown.replace(SAVED_MARKER, saved_methods())
    return markdown


def saved_methods() -> str:
    """Per method, with its default parameters: what its artifact keeps, or why it has none."""
    from promptworth.methods import REGISTRY, method_class

    lines = ["| method | what `fit` keeps |", "|---|---|"]
    for name in REGISTRY:
        cls = method_class(name)
        reason = cls.unsaveable({})
        kept = f"cannot be saved: {reason}" if reason else first_paragraph(cls.state)
        lines.append(f"| [`{name}`](../reference/methods/{name}.md) | {kept} |")
    return "\n".join(lines)


def first_paragraph(function) -> str:
    doc = inspect.getdoc(function) or ""
    return " ".join(doc.split("\n\n")[0].split()).replace("|", "\\|")


def method_list() -> str:
    from promptworth.methods import REGISTRY, method_class

    lines = ["| method | family | what it does |", "|---|---|---|"]
    for name, (_, summary) in REGISTRY.items():
        family = method_class(name).family
        lines.append(f"| [`{name}`]({name}.md) | {family} | {summary} |")
    return "\n".join(lines)


def parameter_table(name: str) -> str:
    from promptworth.methods import method_class

    config = method_class(name).Config
    fields = dataclasses.fields(config)
    if not fields:
        return "This method has no parameters of its own."
    defaults, hints, notes = config(), typing.get_type_hints(config), field_comments(config)
    lines = ["| parameter | type | default | notes |", "|---|---|---|---|"]
    for field in fields:
        value = getattr(defaults, field.name)
        lines.append(
            f"| `{field.name}` | {type_name(hints[field.name])} | `{value!r}` "
            f"| {notes.get(field.name, '')} |"
        )
    return "\n".join(lines)


def type_name(hint) -> str:
    text = hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")
    return f"`{text}`"


def field_comments(config: type) -> dict[str, str]:
    """The comment written beside each field in the source: the nearest class's that has one
    (a subclass that only changes a default keeps its base class's comment)."""
    notes: dict[str, str] = {}
    for klass in reversed(config.__mro__):
        if dataclasses.is_dataclass(klass) and klass.__module__.startswith("promptworth"):
            notes.update({name: text for name, text in class_comments(klass).items() if text})
    return notes


def class_comments(klass: type) -> dict[str, str]:
    source = textwrap.dedent(inspect.getsource(klass))
    comments = {
        token.start[0]: token.string.lstrip("# ").strip()
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    }
    body = ast.parse(source).body[0].body
    notes = {}
    for statement in body:
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            lines = range(statement.lineno, statement.end_lineno + 1)
            text = " ".join(comments[line] for line in lines if line in comments)
            notes[statement.target.id] = text.replace("|", "\\|")
    return notes
