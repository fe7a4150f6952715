"""Tiny random-weight backbones and a tiny task, for fast deterministic tests.

They go through the same loading path as real models (a local directory with config,
weights and tokenizer), so tests exercise the real code, only smaller.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from promptworth.methods.base import Method, Prediction, RunContext, TrainingCost
from promptworth.tasks.base import Split, Task

TOPICS = {
    "sports": [
        "the team won the match",
        "a late goal decided the game",
        "the coach praised players",
        "fans cheered the striker",
        "the league title race",
        "a record in the final",
    ],
    "business": [
        "shares rose after profits",
        "the bank cut interest rates",
        "the company hired staff",
        "markets fell on oil prices",
        "investors bought bonds",
        "quarterly sales grew",
    ],
    "science": [
        "the telescope found a planet",
        "researchers sequenced the genome",
        "a new chip runs faster",
        "the rocket reached orbit",
        "software fixes a bug",
        "scientists measured the climate",
    ],
}
LABELS = ["sports", "business", "science"]
# The tiny sweep of the sweep and Ray tests (tests/conftest.py `tiny_sweep_spec`): one method of
# each kind (no training, frozen features, gradient-trained), two LoRA steps.
TINY_SWEEP_METHODS = ["zero-shot", "head", "prompt-lora"]
TINY_SWEEP_PARAMS = {"prompt-lora": {"max_steps": 2, "batch_size": 4}}
SPECIAL = ["<pad>", "<s>", "</s>", "<unk>"]
CHAT_TEMPLATE = (  # ChatML-like: the assistant's answer starts after a newline, with no space
    "{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant\n{% endif %}"
)


def tiny_task(n_train: int = 48, n_test: int = 24, seed: int = 0) -> Task:
    """Three topics; each text is a topic phrase plus filler, so a model can learn it."""
    rng = np.random.default_rng(seed)

    def split(n: int) -> Split:
        labels = np.arange(n) % len(LABELS)
        texts = [f"{rng.choice(TOPICS[LABELS[y]])} on day {rng.integers(1, 30)}" for y in labels]
        return Split(texts, labels)

    return Task(
        name="tiny",
        version="tiny-v1",
        label_names=LABELS,
        # A second, multi-token word per label exercises multi-token scoring.
        verbalizers=[[name, f"{name} news"] for name in LABELS],
        templates=["Text: {text}\nTopic:", "{text} is about"],
        train=split(n_train),
        test=split(n_test),
    )


def tiny_pool_task(name: str) -> Task:
    """multitask's tiny pool: `tiny-pool-a` asks the tiny task's topics through another
    template; any other name is a yes/no task: is the text about sports?"""
    base = tiny_task(n_train=24, n_test=12, seed=len(name))
    if name == "tiny-pool-a":
        return replace(base, name=name, version=name, templates=["Headline: {text}\nSubject:"])

    def sports(split: Split) -> Split:
        return Split(split.texts, (np.asarray(split.labels) == 0).astype(int))

    return replace(
        base,
        name=name,
        version=name,
        label_names=["other", "sports"],
        verbalizers=[["no"], ["yes"]],
        templates=["{text}\nAbout sports?"],
        train=sports(base.train),
        test=sports(base.test),
    )


def tiny_generation_task(n_train: int = 24, n_test: int = 12, seed: int = 0) -> Task:
    """Name a phrase's topic in free text, scored by exact match and token F1 against the topic
    and its alias "<topic> news": a generation task for the methods that write their answer."""
    rng = np.random.default_rng(seed)

    def split(n: int) -> Split:
        topics = [LABELS[i % len(LABELS)] for i in range(n)]
        texts = [f"{rng.choice(TOPICS[t])} on day {rng.integers(1, 30)}" for t in topics]
        return Split.generation(texts, [[t, f"{t} news"] for t in topics])

    return Task(
        name="tiny-generation",
        version="tiny-generation-v1",
        label_names=[],
        verbalizers=[],
        templates=["Text: {text}\nTopic:", "{text} is about"],
        train=split(n_train),
        test=split(n_test),
        type="generation",
        metrics=("exact_match", "token_f1"),
        max_new_tokens=6,
        chain=[
            {"name": "words", "template": "Text: {text}\nKey words:", "max_new_tokens": 4},
            {"name": "topic", "template": "Key words: {words}\nText: {text}\nTopic:"},
        ],
    )


def tiny_pair_task(n_train: int = 48, n_test: int = 24, seed: int = 0) -> Task:
    """Two inputs, a passage and a question: is the passage about the topic the question names
    (yes/no)? Exercises every method on examples with several inputs."""
    rng = np.random.default_rng(seed)

    def split(n: int) -> Split:
        labels = np.arange(n) % 2
        examples = []
        for answer in labels:
            topic = int(rng.integers(len(LABELS)))
            asked = topic if answer else (topic + int(rng.integers(1, len(LABELS)))) % 3
            passage = f"{rng.choice(TOPICS[LABELS[topic]])} on day {rng.integers(1, 30)}"
            examples.append((passage, f"is it about {LABELS[asked]}"))
        return Split(examples, labels)

    return Task(
        name="tiny-pair",
        version="tiny-pair-v1",
        label_names=["no", "yes"],
        verbalizers=[["no"], ["yes", "yes indeed"]],
        templates=[
            "Passage: {passage}\nQuestion: {question}?\nAnswer:",
            "Question: {question} {passage} is",
        ],
        train=split(n_train),
        test=split(n_test),
        inputs=("passage", "question"),
    )


def tiny_sweep(
    task_files: tuple[str, str],
    model: Path,
    encoder: Path,
    out: Path,
    methods: list[str] = TINY_SWEEP_METHODS,
    method_params: dict | None = None,
):
    """The tests' tiny sweep over task files (`write_task_files`): sizes 4 and 8, seeds 0 and
    1, float32."""
    from promptworth.run.sweep import SweepSpec

    return SweepSpec(
        task=task_files[0],
        test_file=task_files[1],
        models=[model],
        encoders=[encoder],
        methods=list(methods),
        method_params=method_params or {},
        sizes=[4, 8],
        seeds=[0, 1],
        dtype="float32",
        out=out,
    )


def write_task_files(task: Task, folder: Path) -> tuple[str, str]:
    """train.csv and test.csv of `task` (labels by name), without the test rows whose text is
    also a training text: the loader refuses such overlap (tasks/files.py)."""
    import pandas as pd

    known = set(task.train.texts)
    keep = [i for i, text in enumerate(task.test.texts) if text not in known]
    paths = [folder / "train.csv", folder / "test.csv"]
    for path, split in zip(paths, (task.train, task.test.subset(keep))):
        labels = [task.label_names[y] for y in split.labels]
        pd.DataFrame({"text": split.texts, "label": labels}).to_csv(path, index=False)
    return str(paths[0]), str(paths[1])


def write_generation_task_file(folder: Path, metrics: str) -> Path:
    """task.yaml over train.jsonl and test.jsonl of `tiny_generation_task(16, 8)`, scored by
    `metrics` (as a task file writes them, e.g. "[token_f1, exact_match]")."""
    import json

    task = tiny_generation_task(16, 8)
    for name, split in (("train", task.train), ("test", task.test)):
        with open(folder / f"{name}.jsonl", "w") as handle:
            for text, refs in zip(split.texts, split.references):
                handle.write(json.dumps({"text": text, "reference": list(refs)}) + "\n")
    path = folder / "task.yaml"
    path.write_text(
        "name: topics\ntype: generation\ntrain: train.jsonl\ntest: test.jsonl\n"
        f"metrics: {metrics}\nmax_new_tokens: 4\n"
    )
    return path


def corpus() -> list[str]:
    words = [p for phrases in TOPICS.values() for p in phrases]
    # Label words are frequent, so that (like real vocabularies) " sports" and "sports" become
    # distinct single tokens: the rank-classification tests rely on it.
    labels = [f"{w} {w}\n{w}:{w}" for w in LABELS for _ in range(200)]
    return words + labels + ["Text: Topic: is about on day"] + [str(i) for i in range(40)]


def tiny_tokenizer(kind: str):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if kind == "causal-lm":
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        trainer = trainers.BpeTrainer(
            vocab_size=400,
            special_tokens=SPECIAL,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )
    else:
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        trainer = trainers.WordPieceTrainer(
            vocab_size=200, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
        )
    tok.train_from_iterator(corpus(), trainer)
    if kind == "causal-lm":
        from tokenizers import decoders

        tok.decoder = decoders.ByteLevel()
        wrapped = PreTrainedTokenizerFast(
            tokenizer_object=tok,
            bos_token="<s>",
            eos_token="</s>",
            pad_token="<pad>",
            unk_token="<unk>",
        )
        wrapped.chat_template = CHAT_TEMPLATE
        return wrapped
    from tokenizers import processors

    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
    )


def save_tiny_causal_lm(directory: Path, hidden_size: int = 32, layers: int = 2) -> Path:
    """A Llama (2 layers of width 32 by default) with random weights and a byte-level BPE
    tokenizer; a wider or deeper one stands for a larger model beside it."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tiny_tokenizer("causal-lm")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def save_tiny_encoder(directory: Path) -> Path:
    """A 2-layer BERT with random weights and a WordPiece tokenizer."""
    import torch
    from transformers import BertConfig, BertModel

    tokenizer = tiny_tokenizer("encoder")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
    )
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


class DiesOnce(Method):
    """A test-only method (not registered; tests add it as "dies-once"): its first run kills
    its own process, as a segfault or the OOM killer would, so a test can lose a Ray worker
    deterministically; once `marker` exists its runs predict label 0 at once (an instant run,
    to measure what the sweep itself costs per run)."""

    name = "dies-once"
    summary = "test-only: the first run kills its process; later runs predict label 0"
    family = "prompting"  # trains nothing

    @dataclass(frozen=True)
    class Config:
        marker: str = ""  # a file; while it is absent, a run creates it and kills its process

    def fit(self, train: Split, context: RunContext) -> DiesOnce:
        marker = Path(self.config.marker)
        if not marker.exists():
            marker.touch()
            os._exit(1)
        self.cost_ = TrainingCost(train_examples=len(train))
        return self

    def predict(self, texts: list[str]) -> Prediction:
        self.check_fitted()
        return Prediction(np.zeros(len(texts), dtype=int))
