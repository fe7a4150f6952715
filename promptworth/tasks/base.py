"""What a task is: labelled examples, label names, verbaliser words and prompt templates.

An example is one string for a task with one input (the usual case, slot `{text}`), or a tuple
of strings, one per input slot in `Task.inputs` order, for a task with several inputs (BoolQ's
`{passage}` and `{question}`). Methods pass examples through untouched; only the places that
turn one into model input look inside: prompt rendering (`Task.fill`), the tokenizers of feature
and encoder methods (backbones.embed.tokenize_examples) and the keys of caches and overlap checks
(`example_key`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from promptworth.errors import quoted

Example = str | tuple[str, ...]
DEFAULT_INPUTS = ("text",)
TEXT_SLOT = "{text}"
SLOT = re.compile(r"\{(\w+)\}")
TASK_TYPES = ("classification", "generation")
# What a generation task may be scored by (analysis/metrics.py maps each to its metrics)
GENERATION_METRIC_NAMES = ("exact_match", "token_f1", "rouge", "numeric", "bertscore", "judge")
UNLABELLED = -1  # the label of every row of a generation task: its answer is its references
# A template may list the answer options here: the labels' first verbaliser words (`Task.fill`).
OPTIONS_SLOT = "options"


def template_slots(template: str) -> list[str]:
    """The `{name}` slots of a template, in order of appearance, each once."""
    return list(dict.fromkeys(SLOT.findall(template)))


def example_slots(example: Example) -> tuple[str, ...]:
    return (example,) if isinstance(example, str) else tuple(example)


def example_key(example: Example) -> str:
    """One string per example: the text itself, or the inputs as a JSON list (so a pair never
    equals a single text, nor another pair whose boundary falls elsewhere)."""
    if isinstance(example, str):
        return example
    return json.dumps(list(example), ensure_ascii=False)


def example_length(example: Example) -> int:
    return sum(len(part) for part in example_slots(example))


def verbalizer_problem(label_names: list[str], verbalizers: list[list[str]]) -> str | None:
    """What is wrong with the labels' verbaliser words, or None: a label needs at least one
    non-blank word, and a word (in any case) may stand for one label only, else the answer
    could not tell them apart."""
    owner: dict[str, str] = {}
    for name, words in zip(label_names, verbalizers):
        if not words or any(not isinstance(w, str) or not w.strip() for w in words):
            return f"label {quoted(name)} needs non-empty verbaliser words, got {quoted(words)}"
        for word in words:
            first = owner.setdefault(word.strip().lower(), name)
            if first != name:
                return (
                    f"verbaliser word {quoted(word)} is given to labels {quoted(first)} and "
                    f"{quoted(name)}"
                )
    return None


# A chain step (a generation task's `chain`): its name (a slot later steps may use), its template
# (slots: the inputs and earlier steps) and, optionally, its longest output in tokens.
CHAIN_STEP_FIELDS = ("name", "template", "max_new_tokens")


def chain_problem(steps: object, inputs: tuple[str, ...]) -> str | None:
    """What is wrong with a chain of steps for a task with `inputs`, or None: a non-empty list of
    steps, each named by a new slot name, each template using only the inputs and the steps
    before it."""
    if not isinstance(steps, list) or not steps:
        return f"expected a list of steps, each {{name, template}}, got {quoted(steps)}"
    known = list(inputs)
    for number, step in enumerate(steps, start=1):
        where = f"step {number}"
        if not isinstance(step, dict):
            return f"{where}: expected a mapping with name and template, got {quoted(step)}"
        unknown = [str(key) for key in step if key not in CHAIN_STEP_FIELDS]
        if unknown:
            return f"{where}: unknown field {quoted(unknown[0])}; a step has {CHAIN_STEP_FIELDS}"
        name, template = step.get("name"), step.get("template")
        if not isinstance(name, str) or not SLOT.fullmatch("{" + name + "}"):
            return f"{where}: name {quoted(name)} must be a name of letters, digits and _"
        where = f"step {number} ({name})"
        if name in known:
            return f"{where}: the name is already an input or an earlier step's; rename it"
        if not isinstance(template, str) or not template.strip():
            return f"{where}: expected a template (text), got {quoted(template)}"
        slots = template_slots(template)
        if not slots:
            return f"{where}: the template has no slot; use an input or an earlier step"
        later = [slot for slot in slots if slot not in known]
        if later:
            shown = ", ".join("{" + slot + "}" for slot in known)
            return (
                f"{where}: slot {{{later[0]}}} is neither an input nor an earlier step "
                f"(known here: {shown})"
            )
        tokens = step.get("max_new_tokens")
        if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, int)):
            return f"{where}: max_new_tokens must be a whole number >= 1, got {quoted(tokens)}"
        if tokens is not None and tokens < 1:
            return f"{where}: max_new_tokens must be a whole number >= 1, got {tokens}"
        known.append(name)
    return None


@dataclass(frozen=True)
class Split:
    """Examples with integer labels; the unit every method fits and predicts on. `texts` holds
    strings for a one-input task, tuples of strings (one per input) for a several-input task.
    A generation task's rows hold their acceptable answers in `references` (one tuple of
    strings per row) and UNLABELLED labels."""

    texts: list[Example]
    labels: np.ndarray
    references: list[tuple[str, ...]] | None = None

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.labels):
            raise ValueError(f"{len(self.texts)} texts but {len(self.labels)} labels")
        if self.references is not None and len(self.references) != len(self.texts):
            raise ValueError(f"{len(self.texts)} texts but {len(self.references)} references")

    @classmethod
    def generation(cls, texts: list[Example], references: list) -> Split:
        """Rows of a generation task; a reference is one string or a list of acceptable ones."""
        refs = [(r,) if isinstance(r, str) else tuple(r) for r in references]
        return cls(texts, np.full(len(texts), UNLABELLED, dtype=int), refs)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: np.ndarray | list[int]) -> Split:
        idx = np.asarray(indices, dtype=int)
        refs = None if self.references is None else [self.references[i] for i in idx]
        return Split([self.texts[i] for i in idx], self.labels[idx], refs)


@dataclass
class Task:
    """A text-classification task, or (`type` "generation") a task whose answer is free text
    scored against references by `metrics` (GENERATION_METRIC_NAMES, the first the headline).

    `version` names where the data came from (a file digest, a package version); `fingerprint`
    adds a digest of everything that decides a run's result and enters every run key, so a
    changed file, input, label name, verbaliser or template never mixes with earlier results.
    """

    name: str
    version: str
    label_names: list[str]
    verbalizers: list[list[str]]
    templates: list[str]
    train: Split
    test: Split
    description: str = ""
    extra: dict = field(default_factory=dict)
    inputs: tuple[str, ...] = DEFAULT_INPUTS  # the slot names; examples are tuples when several
    type: str = "classification"  # TASK_TYPES
    metrics: tuple[str, ...] = ()  # generation: GENERATION_METRIC_NAMES, headline first
    # input tokens a prompt keeps of each row unless --max-text-tokens says otherwise (None: the
    # prompt options' default); long documents (XSum) need more than a classification text
    max_text_tokens: int | None = None
    max_new_tokens: int = 64  # generation: the longest answer a method may write, in tokens
    # generation: the steps of the `chain` method (CHAIN_STEP_FIELDS), the last one's output the
    # answer. Not in the fingerprint: the chain method's runs key the steps as their parameters.
    chain: list[dict] = field(default_factory=list)
    # generation: the cue a reasoning chain's answer follows, naming what the answer is, as
    # Kojima et al. name the format ("Therefore, the summary is"); empty: ANSWER_TRIGGER. Not in
    # the fingerprint: the methods that read it key it as their parameter.
    answer_trigger: str = ""

    def __post_init__(self) -> None:
        self.inputs = tuple(self.inputs)
        self.metrics = tuple(self.metrics)
        self.check_type()
        if len(self.verbalizers) != len(self.label_names):
            raise ValueError(
                f"task {self.name}: {len(self.label_names)} labels but "
                f"{len(self.verbalizers)} verbaliser lists"
            )
        problem = verbalizer_problem(self.label_names, self.verbalizers)
        if problem:
            raise ValueError(f"task {self.name}: {problem}")
        for template in self.templates:
            problem = self.template_problem(template)
            if problem:
                raise ValueError(f"task {self.name}: template {template!r} {problem}")
        for split in (self.train, self.test):
            self.check_examples(split)
        if self.chain:
            problem = chain_problem(self.chain, self.inputs)
            if problem:
                raise ValueError(f"task {self.name}: chain: {problem}")

    @property
    def generates(self) -> bool:
        return self.type == "generation"

    def check_type(self) -> None:
        if self.type not in TASK_TYPES:
            raise ValueError(f"task {self.name}: type {self.type!r}; use one of {TASK_TYPES}")
        if not self.generates:
            return
        unknown = [m for m in self.metrics if m not in GENERATION_METRIC_NAMES]
        if not self.metrics or unknown:
            raise ValueError(
                f"task {self.name}: metrics {list(self.metrics)}; a generation task needs one "
                f"or more of {', '.join(GENERATION_METRIC_NAMES)}"
            )
        for name, split in (("train", self.train), ("test", self.test)):
            if split.references is None or any(not r for r in split.references):
                raise ValueError(f"task {self.name}: every {name} row needs a reference")

    def template_problem(self, template: str) -> str | None:
        """What is wrong with `template` for this task's inputs, or None."""
        slots = [s for s in template_slots(template) if s in self.inputs or s != OPTIONS_SLOT]
        unknown = [slot for slot in slots if slot not in self.inputs]
        if unknown:
            return (
                f"has slot(s) {', '.join('{' + s + '}' for s in unknown)}; the task's inputs "
                f"are {self.slot_list()}"
            )
        if not slots:
            return f"has no slot; put the input where it goes: {self.slot_list()}"
        return None

    def slot_list(self) -> str:
        return ", ".join("{" + slot + "}" for slot in self.inputs)

    def check_examples(self, split: Split) -> None:
        several = len(self.inputs) > 1
        for example in split.texts:
            shaped = isinstance(example, tuple) and len(example) == len(self.inputs)
            if (several and not shaped) or (not several and not isinstance(example, str)):
                raise ValueError(
                    f"task {self.name}: example {example!r} does not match inputs {self.inputs}"
                )

    @cached_property
    def fingerprint(self) -> str:
        """`version` + a digest of the inputs, texts, labels, label names, verbalisers and
        templates. One-input tasks named `text` leave the inputs out, so their fingerprints
        are those they had before tasks could have several."""
        digest = hashlib.sha256()
        described = [self.label_names, self.verbalizers, self.templates, self.extra]
        if self.inputs != DEFAULT_INPUTS:
            described.append(list(self.inputs))
        if self.generates:  # classification tasks keep the fingerprints they had
            described += [self.type, list(self.metrics), self.max_text_tokens]
            described.append(self.max_new_tokens)
            described += [s.references for s in (self.train, self.test)]
        digest.update(json.dumps(described, sort_keys=True, default=str).encode())
        for split in (self.train, self.test):
            digest.update(len(split).to_bytes(8, "little"))
            digest.update(np.asarray(split.labels, dtype=np.int64).tobytes())
            for example in split.texts:
                digest.update(example_key(example).encode())
                digest.update(b"\0")
        return f"{self.version}+{digest.hexdigest()[:12]}"

    @property
    def n_labels(self) -> int:
        return len(self.label_names)

    def lists_options(self, template: str) -> bool:
        """Whether `template` has the `{options}` slot (and no input is named so)."""
        return OPTIONS_SLOT not in self.inputs and OPTIONS_SLOT in template_slots(template)

    def options_text(self) -> str:
        """The answer options as a prompt lists them: each label's first verbaliser word."""
        return ", ".join(words[0] for words in self.verbalizers)

    def fill(self, template: str, example: Example) -> str:
        """`template` with its `{options}` slot replaced by the answer options and each input's
        slot by that input of `example`."""
        if OPTIONS_SLOT not in self.inputs:
            template = template.replace("{" + OPTIONS_SLOT + "}", self.options_text())
        for slot, value in zip(self.inputs, example_slots(example)):
            template = template.replace("{" + slot + "}", value)
        return template

    def render(self, template_index: int, example: Example) -> str:
        return self.fill(self.templates[template_index], example)

    def blank(self, value: str) -> Example:
        """An example whose every input is `value` (content-free inputs, probes)."""
        return value if len(self.inputs) == 1 else (value,) * len(self.inputs)

    def template_for(self, choice: int | str) -> str:
        """The template a prompt option names: a literal one, or the task's by index."""
        return choice if isinstance(choice, str) else self.templates[choice]

    def with_prompt(
        self, choice: int | str, verbalizer: tuple[tuple[str, tuple[str, ...]], ...] = ()
    ) -> tuple[Task, int]:
        """This task as a method shown `choice` and `verbalizer` sees it: a literal template
        added after the task's own (methods read templates by index; PET uses them all) and
        the labels named in `verbalizer` read as its words; and the index of the template."""
        if isinstance(choice, int) and not verbalizer:
            return self, choice
        templates = list(self.templates)
        if isinstance(choice, str) and choice not in templates:
            templates.append(choice)
        words = dict(verbalizer)
        verbalizers = [list(words.get(n, v)) for n, v in zip(self.label_names, self.verbalizers)]
        task = replace(self, templates=templates, verbalizers=verbalizers)
        return task, templates.index(choice) if isinstance(choice, str) else choice
