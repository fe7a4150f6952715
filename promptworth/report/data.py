"""The report's data section: what the texts and labels a sweep uses look like.

Real data is long and messy. A text longer than the token budget (--max-text-tokens) is cut
before it reaches a prompt, so a score on long texts is a score on their beginnings: how many
texts are cut, and by how much, is counted with the causal LM's tokenizer over the rows the sweep
uses (the test subset and every planned training row). Classes with few examples, or far fewer
than the largest class, are named: accuracy hides them (macro-F1, `--metric macro_f1`, does not).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from promptworth.tasks.base import Split

RARE_SHARE = 0.05  # a class under this share of the training pool is named as rare
IMBALANCE = 3.0  # largest / smallest class count at or above which a split is called imbalanced


@dataclass
class Truncation:
    """Texts longer than `budget` tokens: how many, and the tokens cut from them."""

    budget: int
    n_texts: int
    n_cut: int
    tokens_cut: int
    mean_cut: float  # over the cut texts
    max_cut: int
    max_tokens: int  # the longest text, in tokens


@dataclass
class DataProfile:
    task: str
    label_names: list[str]
    pool_counts: list[int]  # training pool, per class
    test_counts: list[int]  # the test subset the sweep scores, per class
    truncation: Truncation | None

    def rare(self) -> list[str]:
        total = sum(self.pool_counts)
        return [n for n, c in zip(self.label_names, self.pool_counts) if c < RARE_SHARE * total]

    def to_dict(self) -> dict:
        return {**asdict(self), "rare": self.rare()}


def ratio(counts: list[int]) -> float:
    """Largest / smallest class count (inf when a class is absent)."""
    return max(counts) / min(counts) if min(counts) else float("inf")


def truncation(texts: list[str], tokenizer, budget: int) -> Truncation:
    """How `texts` fare under PromptFormat.truncate's rule: over `budget` tokens (no special
    tokens) the text is cut to its first `budget`."""
    lengths = np.array(
        [len(ids) for ids in tokenizer(texts, add_special_tokens=False).input_ids], dtype=int
    )
    cut = lengths[lengths > budget] - budget
    return Truncation(
        budget=budget,
        n_texts=len(texts),
        n_cut=len(cut),
        tokens_cut=int(cut.sum()),
        mean_cut=float(cut.mean()) if len(cut) else 0.0,
        max_cut=int(cut.max()) if len(cut) else 0,
        max_tokens=int(lengths.max()) if len(lengths) else 0,
    )


def profile(
    name: str,
    label_names: list[str],
    pool: Split,
    test: Split,
    used: list[str],
    tokenizer=None,
    budget: int = 128,
) -> DataProfile:
    """`used`: the texts the sweep reads (its test subset and planned training rows); without a
    tokenizer no truncation is counted. A generation task (no labels) counts its rows as one."""
    counts = lambda split: (  # noqa: E731
        np.bincount(split.labels, minlength=len(label_names)).tolist()
        if label_names
        else [len(split)]
    )
    cut = truncation(used, tokenizer, budget) if tokenizer is not None else None
    return DataProfile(name, label_names, counts(pool), counts(test), cut)


def data_lines(profiles: list[DataProfile]) -> list[str]:
    """The "Data" section: one table row per task, then a line per rare or imbalanced task."""
    lines = [
        "## Data",
        "",
        "| task | classes | training pool | test rows | largest/smallest class (pool) | texts "
        "over the token budget | tokens cut: total, mean, max |",
        "|---|---|---|---|---|---|---|",
    ]
    notes = []
    for p in profiles:
        t = p.truncation
        over = f"{t.n_cut} of {t.n_texts} ({t.n_cut / t.n_texts:.1%}) > {t.budget}" if t else "—"
        cut = f"{t.tokens_cut}, {t.mean_cut:.1f}, {t.max_cut}" if t and t.n_cut else "0"
        lines.append(
            f"| {p.task} | {len(p.label_names)} | {sum(p.pool_counts)} | {sum(p.test_counts)} | "
            f"{ratio(p.pool_counts):.1f} | {over} | {cut} |"
        )
        notes += class_notes(p)
    lines += [
        "",
        "Texts are counted with the causal LM's tokenizer over the rows the sweep uses (test "
        "subset and planned training rows); prompt methods read the first --max-text-tokens of "
        "each, encoder methods their own max_tokens.",
    ]
    return [*lines, "", *notes, *([""] if notes else [])]


def class_notes(p: DataProfile) -> list[str]:
    """What accuracy hides on this task: rare classes, imbalance, classes the test rows lack."""

    def listed(names: list[str], counts: list[int]) -> str:
        return ", ".join(f"{n} ({c})" for n, c in zip(names, counts))

    notes = []
    rare = p.rare()
    if rare:
        counts = [p.pool_counts[p.label_names.index(n)] for n in rare]
        notes.append(
            f"- {p.task}: rare classes (under {RARE_SHARE:.0%} of the training pool): "
            f"{listed(rare, counts)}"
        )
    for split, counts in (("training pool", p.pool_counts), ("test rows", p.test_counts)):
        if ratio(counts) >= IMBALANCE:
            notes.append(
                f"- {p.task}: imbalanced {split}, largest/smallest class {ratio(counts):.1f}: "
                f"{listed(p.label_names, counts)}; macro-F1 (`--metric macro_f1`) weighs every "
                "class equally"
            )
    return notes


def sweep_profile(sweep) -> DataProfile:
    """The profile of a Sweep's task: its pool, test subset, and the rows its plan uses, with
    the tokenizer of the sweep's (first) causal LM and --max-text-tokens."""
    from transformers import AutoTokenizer

    from promptworth.backbones.loading import load_pretrained

    taken = sorted({i for run in sweep.plan() for i in run.train_indices})
    used = sweep.test.texts + [sweep.task.train.texts[i] for i in taken]
    source = sweep.backbones.source(sweep.spec.models[0])
    tokenizer = load_pretrained(AutoTokenizer, source.path, "--model", revision=source.commit)
    task = sweep.task
    return profile(
        task.name,
        task.label_names,
        task.train,
        sweep.test,
        used,
        tokenizer,
        sweep.spec.prompt.max_text_tokens,
    )
