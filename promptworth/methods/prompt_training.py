"""Prompt-based fine-tuning (Setup 2): the LM learns to continue the prompt with the label word.

The input is the task's template around the text; the target is the label's first verbaliser
word, tokenized in context; the loss covers the label tokens only. Subclasses decide what is
trainable (all weights, a LoRA adapter, a soft prompt, ...) by overriding `trainable_model`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from promptworth.methods.base import (
    Method,
    Prediction,
    RunContext,
    TrainingCost,
    at_least,
    count_params,
    positive,
    tensor_bytes,
)
from promptworth.methods.prompting import PromptFormat, predict_with_lm
from promptworth.methods.training import Schedule, TrainStats, autocast_for, split_dev, train
from promptworth.tasks.base import Split

IGNORE = -100


@dataclass
class Sequences:
    input_ids: list[list[int]]
    n_prompt: list[int]


def build_sequences(fmt: PromptFormat, split: Split) -> Sequences:
    """prompt + label tokens for each example (first verbaliser word of the gold label)."""
    inputs, n_prompt = [], []
    for text, label in zip(split.texts, split.labels):
        prompt = fmt.prompt(text)
        prompt_ids = fmt.encode_prompt(prompt)
        inputs.append(prompt_ids + fmt.answer_ids(prompt, fmt.task.verbalizers[label][0]))
        n_prompt.append(len(prompt_ids))
    return Sequences(inputs, n_prompt)


def label_only_loss(model, tokenizer, seqs: Sequences, batch: np.ndarray):
    """Cross-entropy on the label tokens only (prompt positions are masked with -100)."""
    import torch

    rows = [seqs.input_ids[i] for i in batch]
    width = max(len(r) for r in rows)
    device = next(model.parameters()).device
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for row, (seq, index) in enumerate(zip(rows, batch)):
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
        labels[row, seqs.n_prompt[index] : len(seq)] = torch.tensor(seq[seqs.n_prompt[index] :])
    out = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device))
    return out.loss, int(mask.sum())


@dataclass(frozen=True)
class TrainingConfig:
    """The training rule's parameters; every prompt-trained method's Config extends it."""

    learning_rate: float = 1e-3
    batch_size: int = 8
    epochs: float = 10.0
    max_steps: int = 150
    # Dev loss is a forward pass per dev example at every evaluation; past ~64 examples it buys
    # little early-stopping signal and, at 1,000 labels, used to cost as much as training.
    max_dev: int = 64

    def __post_init__(self) -> None:
        positive(self, "learning_rate", "epochs")
        at_least(self, 1, "batch_size", "max_steps")
        at_least(self, 0, "max_dev")


def peft_on_copy(backbone, peft_config, seed: int):
    """A PEFT model around a fresh copy of the backbone; random adapter init drawn from `seed`.

    The copy matters even when PEFT injects nothing: wrapping freezes the wrapped weights.
    """
    import torch

    from promptworth.backbones.adapters import peft_model

    torch.manual_seed(seed)
    return peft_model(backbone.fresh_model(), peft_config)


class PromptTrainedMethod(Method):
    """Base of every method trained on the prompt-based objective."""

    # True where the adapter prepends virtual tokens on every forward call (prompt tuning,
    # prefix tuning, p-tuning): predict then scores without a KV cache, generates unpadded.
    virtual_tokens: ClassVar[bool] = False

    def schedule(self) -> Schedule:
        c = self.config
        return Schedule(
            learning_rate=c.learning_rate,
            batch_size=c.batch_size,
            epochs=c.epochs,
            max_steps=c.max_steps,
            max_dev=c.max_dev,
        )

    def trainable_model(self, backbone, context: RunContext):
        """The model to train, built from (never changing) `backbone.model`."""
        raise NotImplementedError

    def produced_tensors(self, model) -> list:
        """What training produced, for the artifact size: by default the trainable weights."""
        return [p for p in model.parameters() if p.requires_grad]

    def for_inference(self, model):
        """The trained model as it would be served (LoRA merges its adapters here)."""
        return model

    def fit(self, train_split: Split, context: RunContext) -> PromptTrainedMethod:
        backbone = context.backbones.get(context.model, "causal-lm")
        self.format_ = PromptFormat(context.task, backbone.tokenizer, context.prompt)
        model = self.trainable_model(backbone, context)
        fit_idx, dev_idx = split_dev(len(train_split), self.schedule(), context.seed)
        fit_seqs = build_sequences(self.format_, train_split.subset(fit_idx))
        dev_seqs = build_sequences(self.format_, train_split.subset(dev_idx))
        params = [p for p in model.parameters() if p.requires_grad]
        model.train()
        stats: TrainStats = train(
            params,
            lambda batch: label_only_loss(model, backbone.tokenizer, fit_seqs, batch),
            (lambda: dev_loss(model, backbone.tokenizer, dev_seqs)) if len(dev_idx) else None,
            len(fit_idx),
            self.schedule(),
            context.seed,
            backbone.placement,
            context.say,
        )
        model.eval()
        trainable, total = count_params(model)
        self.placement_ = backbone.placement
        self.cost_ = TrainingCost(
            trainable,
            total,
            stats.examples,
            stats.tokens,
            stats.steps,
            tensor_bytes(self.produced_tensors(model)),
        )
        self.train_stats_ = stats
        self.model_ = self.for_inference(model)
        return self

    def predict(self, texts: list[str]) -> Prediction:
        self.check_fitted()
        with autocast_for(self.placement_):  # trained weights are fp32; serve at the run's dtype
            n_virtual = self.config.num_virtual_tokens if self.virtual_tokens else 0
            return predict_with_lm(self.model_, self.format_, texts, n_virtual)


def dev_loss(model, tokenizer, seqs: Sequences, batch_size: int = 16) -> float:
    import torch

    model.eval()
    losses = []
    with torch.no_grad():
        for start in range(0, len(seqs.input_ids), batch_size):
            batch = np.arange(start, min(start + batch_size, len(seqs.input_ids)))
            losses.append(label_only_loss(model, tokenizer, seqs, batch)[0].item() * len(batch))
    model.train()
    return float(sum(losses) / len(seqs.input_ids))
