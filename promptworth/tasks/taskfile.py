"""Task files: a task described in YAML, in the spirit of lm-evaluation-harness task configs.

```yaml
name: bbc_news
description: BBC News articles by topic     # optional
train: data/bbc_train.csv                   # relative to this file; or a `datasets` name
test: data/bbc_test.csv                     # optional: else HELD_OUT of the train rows
text_column: article                        # or inputs: {passage: passage, question: question}
label_column: category                      # default: label
encoding: utf-8                             # of the data files (default utf-8)
labels:                                     # label value -> verbaliser words (first primary)
  business: [business, finance]
  sport: [sport, sports]
templates:                                  # one or more; slots named by the inputs
  - "Article: {text}\\nTopic:"
```

A generation task gives `type: generation`, the column of its references instead of labels
(a text, or in JSON Lines a list of acceptable texts), the metrics it is scored by (the first is
the headline) and, optionally, how many tokens of each input a prompt keeps:

```yaml
type: generation
reference_column: answer                    # default: reference
metrics: [exact_match, token_f1]            # of GENERATION_METRIC_NAMES (tasks/base.py)
max_text_tokens: 512                        # default: --max-text-tokens
max_new_tokens: 32                          # the longest answer (default 64)
templates: ["Question: {text}\\nAnswer:"]
chain:                                      # optional: the steps of the chain method
  - name: facts                             # a new slot name: later steps use {facts}
    template: "Question: {text}\\nWhat facts answer it?\\nFacts:"
    max_new_tokens: 64                      # default: max_new_tokens
  - name: answer                            # the last step's output is the answer
    template: "Facts: {facts}\\nQuestion: {text}\\nAnswer:"
answer_trigger: "Therefore, the answer is"  # optional: the cue after a chain of thought
```

Everything is checked when the file is read, before any model loads, and each problem is one
PromptworthError naming the file and field. The task's fingerprint covers the data, inputs,
label names, verbalisers and templates (tasks.base.Task.fingerprint).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

from promptworth.errors import QUOTE_LIMIT, PromptworthError, did_you_mean, quoted
from promptworth.paths import looks_like_path
from promptworth.tasks import files
from promptworth.tasks.base import (
    GENERATION_METRIC_NAMES,
    OPTIONS_SLOT,
    SLOT,
    TASK_TYPES,
    Split,
    Task,
    chain_problem,
    template_slots,
    verbalizer_problem,
)

SUFFIXES = (".yaml", ".yml")
FIELDS: dict[str, str] = {  # field -> what it holds, for the messages
    "name": "a task name (text)",
    "description": "text",
    "train": "a data file (.csv .tsv .jsonl .json .parquet) relative to the task file, or a "
    "datasets name",
    "test": "a data file relative to the task file",
    "text_column": "a column name",
    "inputs": "a mapping slot -> column, e.g. {passage: passage, question: question}",
    "label_column": "a column name",
    "encoding": "an encoding name, e.g. utf-8",
    "labels": "a mapping label value -> list of verbaliser words",
    "templates": "a list of templates with slots, e.g. ['Text: {text}\\nLabel:']",
    "type": f"one of {', '.join(TASK_TYPES)}",
    "reference_column": "a column name",
    "metrics": f"a list of metrics of {', '.join(GENERATION_METRIC_NAMES)}, the headline first",
    "max_text_tokens": "a whole number of tokens >= 1",
    "max_new_tokens": "a whole number of tokens >= 1",
    "chain": "a list of steps {name, template, max_new_tokens} for the chain method",
    "answer_trigger": "the cue after a reasoning chain, e.g. 'Therefore, the summary is'",
}
CLASSIFICATION_ONLY = ("labels", "label_column")
GENERATION_ONLY = (
    "reference_column",
    "metrics",
    "max_text_tokens",
    "max_new_tokens",
    "chain",
    "answer_trigger",
)
REQUIRED = ("name", "train")
TASK_NAME = re.compile(r"[\w.-]+")  # letters (any script), digits, _ . - : no path separator


class TaskFileError(PromptworthError):
    """A task file that cannot be used: the message names the file and field."""


def is_task_file(spec: str) -> bool:
    return Path(spec).suffix.lower() in SUFFIXES


class AmbiguousYaml(yaml.YAMLError):
    """YAML that says two things: a key given twice, or an anchor/alias (a value repeated by
    reference, which also lets a few hundred bytes expand to gigabytes)."""

    def __init__(self, problem: str, mark):
        super().__init__(problem)
        self.problem, self.line = problem, mark.line + 1


def yaml_loader():
    """PyYAML's safe loader with YAML 1.2 booleans: only true/false are booleans, so labels
    such as yes/no or on/off stay the words they are (YAML 1.1 reads them as True/False).
    A key given twice in one mapping and any anchor or alias are refused (AmbiguousYaml)."""
    bool_tag = "tag:yaml.org,2002:bool"

    class Loader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                sign = "*" if isinstance(event, yaml.AliasEvent) else "&"
                raise AmbiguousYaml(
                    f"{sign}{quoted(event.anchor)[1:-1]}: anchors and aliases are not accepted "
                    "in task files; write the value out where it is used",
                    event.start_mark,
                )
            return super().compose_node(parent, index)

        def construct_mapping(self, node, deep=False):
            first_line: dict = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, Hashable) and key in first_line:
                    raise AmbiguousYaml(
                        f"key {quoted(key)} given twice (first on line {first_line[key]}); "
                        "keep one",
                        key_node.start_mark,
                    )
                if isinstance(key, Hashable):
                    first_line[key] = key_node.start_mark.line + 1
            return super().construct_mapping(node, deep)

    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != bool_tag]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(
        bool_tag, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )
    return Loader


def read_yaml(path: Path) -> dict[str, Any]:
    """The file's top-level mapping, or a TaskFileError naming the line YAML stopped at."""
    if not path.is_file():
        raise TaskFileError(f"no such task file: {path}")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml_loader())
    except UnicodeDecodeError:
        raise TaskFileError(f"{path}: a task file must be UTF-8 text") from None
    except AmbiguousYaml as error:
        raise TaskFileError(f"{path}: line {error.line}: {error.problem}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise TaskFileError(f"{path}: not valid YAML{where}: {problem[:QUOTE_LIMIT]}") from None
    if not isinstance(data, dict):
        raise TaskFileError(
            f"{path}: expected a mapping of fields (name, train, labels, ...), "
            f"got {type(data).__name__}"
        )
    return data


class Fields:
    """The checked fields of one task file; `fail` names the file and field."""

    def __init__(self, path: Path, data: dict[str, Any]):
        self.path, self.data = path, data
        for key in data:
            if key not in FIELDS:
                self.fail(str(key), f"unknown field{did_you_mean(str(key), FIELDS)}")
        for key in REQUIRED:
            if data.get(key) is None:
                self.fail(key, f"missing; give {FIELDS[key]}")
        if "text_column" in data and "inputs" in data:
            self.fail("inputs", "give either text_column (one input) or inputs, not both")
        self.type = self.text("type", "classification")
        if self.type not in TASK_TYPES:
            self.fail("type", f"expected {FIELDS['type']}, got {quoted(self.type)}")
        wrong = GENERATION_ONLY if self.type == "classification" else CLASSIFICATION_ONLY
        for key in wrong:
            if key in data:
                self.fail(key, f"not a field of a {self.type} task (type: {self.type})")

    def fail(self, field: str, problem: str):
        raise TaskFileError(f"{self.path}: {field[:QUOTE_LIMIT]}: {problem}")

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.data.get(key, default)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            self.fail(key, f"expected {FIELDS[key]}, got {quoted(value)}")
        return value

    def task_name(self) -> str:
        """The name, which names the task's folder in a suite's output: one path component."""
        name = self.text("name")
        if not TASK_NAME.fullmatch(name) or name in (".", ".."):
            self.fail(
                "name",
                f"{quoted(name)} is not a task name; use letters, digits, '-', '_' and '.' "
                "(no '/' or '\\'), e.g. bbc_news",
            )
        return name

    def inputs(self) -> dict[str, str]:
        """slot -> column; one slot `text` when only text_column (or nothing) is given."""
        if "inputs" not in self.data:
            return {"text": self.text("text_column", "text")}
        given = self.data["inputs"]
        if not isinstance(given, dict) or not given:
            self.fail("inputs", f"expected {FIELDS['inputs']}, got {quoted(given)}")
        for slot, column in given.items():
            if not isinstance(slot, str) or not SLOT.fullmatch("{" + slot + "}"):
                self.fail("inputs", f"slot {quoted(slot)} must be a name of letters, digits and _")
            if not isinstance(column, str) or not column.strip():
                self.fail(f"inputs.{slot}", f"expected a column name, got {quoted(column)}")
        return dict(given)

    def metrics(self) -> list[str]:
        given = self.data.get("metrics")
        given = [given] if isinstance(given, str) else given
        if not isinstance(given, list) or not given:
            self.fail("metrics", f"missing or empty; give {FIELDS['metrics']}")
        for name in given:
            if name not in GENERATION_METRIC_NAMES:
                self.fail(
                    "metrics",
                    f"unknown metric {quoted(name)}; "
                    f"choose from {', '.join(GENERATION_METRIC_NAMES)}"
                    f"{did_you_mean(str(name), GENERATION_METRIC_NAMES)}",
                )
        return given

    def tokens(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            self.fail(key, f"expected {FIELDS[key]}, got {quoted(value)}")
        return value

    def chain(self, slots: list[str]) -> list[dict]:
        """The chain method's steps (none when not given), checked against the inputs."""
        given = self.data.get("chain")
        if given is None:
            return []
        problem = chain_problem(given, tuple(slots))
        if problem:
            self.fail("chain", problem)
        return given

    def labels(self) -> dict[str, list[str]] | None:
        """Label value (spelled as text) -> verbaliser words; None: the data's labels."""
        given = self.data.get("labels")
        if given is None:
            return None
        if not isinstance(given, dict) or len(given) < 2:
            self.fail("labels", f"expected {FIELDS['labels']} with two or more labels")
        spelled = files.spelled(list(given))[0]
        if len(set(spelled)) < len(spelled):
            self.fail("labels", f"labels {quoted(list(given))} name one label twice")
        words = {}
        for value, name in zip(given.values(), spelled):
            listed = [value] if isinstance(value, str) else value
            if not isinstance(listed, list) or not listed:
                self.fail(f"labels.{name}", "expected a non-empty list of verbaliser words")
            if not all(isinstance(word, str) and word.strip() for word in listed):
                self.fail(
                    f"labels.{name}",
                    f"verbaliser words must be non-empty text: {quoted(listed)} (quote a word YAML "
                    "reads as a number or true/false)",
                )
            words[name] = listed
        problem = verbalizer_problem(list(words), list(words.values()))
        if problem:
            self.fail("labels", problem)
        return words

    def templates(self, slots: list[str]) -> list[str] | None:
        given = self.data.get("templates")
        if given is None:
            return None
        if isinstance(given, str):
            given = [given]
        if not isinstance(given, list) or not given:
            self.fail("templates", f"expected {FIELDS['templates']}")
        for i, template in enumerate(given):
            where = f"templates[{i}]"
            if not isinstance(template, str):
                self.fail(where, f"expected a template (text), got {quoted(template)}")
            named = [s for s in template_slots(template) if s in slots or s != OPTIONS_SLOT]
            unknown = [s for s in named if s not in slots]
            if unknown:
                self.fail(
                    where,
                    f"slot {{{unknown[0]}}} is not an input (inputs: "
                    f"{', '.join('{' + s + '}' for s in slots)})"
                    f"{did_you_mean(unknown[0], slots)}",
                )
            if not named:
                self.fail(
                    where, f"{quoted(template)} has no slot; put {{{slots[0]}}} where it goes"
                )
        return given

    def encoding(self) -> str:
        encoding = self.text("encoding", "utf-8")
        try:
            files.checked_encoding(encoding)
        except files.TaskDataError:
            self.fail(
                "encoding", f"unknown encoding {quoted(encoding)} (e.g. utf-8, cp1252, latin-1)"
            )
        return encoding

    @staticmethod
    def text_columns(inputs: dict[str, str]) -> str | tuple[str, ...]:
        columns = tuple(inputs.values())
        return columns[0] if len(columns) == 1 else columns

    def data_path(self, key: str) -> Path | None:
        """A data file named relative to the task file, checked to exist."""
        value = self.text(key)
        if value is None:
            return None
        path = (self.path.parent / value).expanduser()
        if not path.is_file():
            self.fail(key, f"no such data file: {path}")
        return path


def generic_templates(slots: list[str]) -> list[str]:
    """files.GENERIC_TEMPLATES for a task's inputs: each slot on its own line."""
    if slots == ["text"]:
        return list(files.GENERIC_TEMPLATES)
    lines = "\n".join(f"{slot.capitalize()}: {{{slot}}}" for slot in slots)
    return [f"{lines}\nLabel:", f"{lines}\nThe answer is"]


def load(path_text: str, allow_overlap: bool = False) -> Task:
    """The task a task file describes, its data read and checked."""
    path = Path(path_text)
    fields = Fields(path, read_yaml(path))
    if fields.type == "generation":
        return load_generation(fields, allow_overlap)
    name = fields.task_name()
    inputs = fields.inputs()
    slots = list(inputs)
    labels = fields.labels()
    templates = fields.templates(slots) or generic_templates(slots)
    description = fields.text("description")
    encoding = fields.encoding()
    label_column = fields.text("label_column", "label")
    text_column = fields.text_columns(inputs)
    rows, version = read_rows(fields, text_column, label_column, encoding)
    train, test = rows["train"], rows["test"]
    spelled_train, spelled_test, _ = files.spelled(train[1], test[1], list(labels or []))
    label_names = list(labels) if labels else None
    if labels:
        check_labels(fields, labels, rows, spelled_train, spelled_test, label_column)
    return files.build_task(
        name,
        version,
        (train[0], spelled_train),
        (test[0], spelled_test),
        label_names,
        templates,
        rows["train_source"],
        rows["test_source"],
        allow_overlap,
        inputs=tuple(slots),
        description=description or f"task file {path}",
        **({"verbalizers": list(labels.values())} if labels else {}),
    )


def load_generation(fields: Fields, allow_overlap: bool) -> Task:
    """A generation task: inputs, references, metrics and templates; no labels."""
    inputs = fields.inputs()
    slots = list(inputs)
    templates = fields.templates(slots) or [
        generic_templates(slots)[0].replace("Label:", "Answer:")
    ]
    rows, version = read_rows(
        fields,
        fields.text_columns(inputs),
        fields.text("reference_column", "reference"),
        fields.encoding(),
        references=True,
    )
    (train_texts, train_refs), (test_texts, test_refs) = rows["train"], rows["test"]
    try:
        files.check_overlap(train_texts, test_texts, rows["test_source"], allow_overlap)
    except files.TaskDataError as error:
        raise TaskFileError(str(error)) from None
    return Task(
        name=fields.task_name(),
        version=version,
        label_names=[],
        verbalizers=[],
        templates=templates,
        train=Split.generation(train_texts, train_refs),
        test=Split.generation(test_texts, test_refs),
        description=fields.text("description") or f"task file {fields.path}",
        inputs=tuple(slots),
        type="generation",
        metrics=tuple(fields.metrics()),
        max_text_tokens=fields.tokens("max_text_tokens"),
        chain=fields.chain(slots),
        answer_trigger=(fields.text("answer_trigger") or "").strip(),
        **(
            {"max_new_tokens": fields.tokens("max_new_tokens")}
            if "max_new_tokens" in fields.data
            else {}
        ),
    )


def read_rows(
    fields: Fields, text_column, label_column: str, encoding: str, references: bool = False
):
    """Train and test rows (a held-out share of train without a test file) and the version;
    with `references` the label column holds a generation task's references."""
    train_spec = fields.text("train")
    train_path = fields.path.parent / train_spec
    if not train_path.exists() and not looks_like_path(train_spec):
        if references:
            fields.fail("train", f"a generation task reads data files; no such file: {train_path}")
        if "test" in fields.data:
            fields.fail("test", "a datasets name brings its own test split; remove test")
        rows, _, version = files.hf_rows(train_spec, text_column, label_column)
        rows |= {"train_source": f"{train_spec}[train]", "test_source": f"{train_spec}[test]"}
        return rows, version
    train = fields.data_path("train")
    test = fields.data_path("test")
    read = lambda p: files.frame_to_rows(  # noqa: E731
        files.read_table(p, encoding), str(p), text_column, label_column, references
    )
    rows = {"train": read(train), "train_source": str(train)}
    if test:
        rows |= {"test": read(test), "test_source": str(test)}
    else:
        rows["train"], rows["test"] = files.split_off_test(*rows["train"])
        rows["test_source"] = f"{train} (the {files.HELD_OUT:.0%} held out as test)"
    version = f"sha256-{files.file_digest(*[p for p in (train, test) if p])}"
    codec = files.checked_encoding(encoding)
    return rows, version + ("" if codec == "utf-8" else f"-{codec}")


def check_labels(
    fields: Fields,
    labels: dict[str, list[str]],
    rows: dict,
    spelled_train: list[str],
    spelled_test: list[str],
    label_column: str,
) -> None:
    """Every data label is one of the file's labels, and each of those occurs in training."""
    for spelled, source in ((spelled_train, "train_source"), (spelled_test, "test_source")):
        for row, label in enumerate(spelled, start=1):
            if label not in labels:
                raise TaskFileError(
                    f"{rows[source]}: row {row}: {label_column} {quoted(label)} is not one of the "
                    f"labels of {fields.path} ({', '.join(labels)}); add it under labels"
                )
    absent = [label for label in labels if label not in set(spelled_train)]
    if absent:
        fields.fail(
            "labels",
            f"{', '.join(map(quoted, absent))} never occur(s) in the {quoted(label_column)} "
            f"column of {rows['train_source']}{did_you_mean(absent[0], set(spelled_train))}",
        )


def starter_yaml(
    data: str, text_column: str, label_column: str, out: str, encoding: str = "utf-8"
) -> str:
    """A task file for `data` to edit: its label set with row counts, verbaliser words proposed
    from the label values, generic templates; `train` relative to where `out` is written."""
    path = Path(data)
    if not path.is_file():
        raise TaskFileError(f"no such file: {path}")
    texts, labels = files.frame_to_rows(
        files.read_table(path, encoding), str(path), text_column, label_column
    )
    spelled = files.spelled(labels)[0]
    counts = Counter(spelled)
    relative = os.path.relpath(path.resolve(), Path(out).resolve().parent)
    q = lambda value: json.dumps(value, ensure_ascii=False)  # noqa: E731  # a YAML scalar
    lines = [
        f"# promptworth task file written from {path.name}; edit the verbaliser words and the",
        f"# templates, then: promptworth run --task {Path(out).name}",
        f"name: {q(path.stem)}",
        f"description: {q(f'{path.stem}: {len(texts)} rows, {len(counts)} labels')}",
        f"train: {q(relative)}  # relative to this file",
        f"# test: test.csv  # optional; without it {files.HELD_OUT:.0%} of the rows are test",
        f"text_column: {q(text_column)}",
        f"label_column: {q(label_column)}",
    ]
    if encoding != "utf-8":
        lines.append(f"encoding: {q(encoding)}")
    lines.append("labels:  # label value -> verbaliser words (the first is the primary word)")
    for label in files.label_order(set(counts)):
        note = "; a number: replace with words" if files.as_number(label) is not None else ""
        lines.append(f"  {q(label)}: [{q(proposed_word(label))}]  # {counts[label]} rows{note}")
    lines.append("templates:  # one or more; {text} is where the text goes")
    lines += [f"  - {q(template)}" for template in files.GENERIC_TEMPLATES]
    return "\n".join(lines) + "\n"


def proposed_word(label: str) -> str:
    """A verbaliser word from a label value: `sci_tech` -> `sci tech`, `SPORT` -> `sport`."""
    return " ".join(label.replace("_", " ").replace("-", " ").split()).lower() or label
