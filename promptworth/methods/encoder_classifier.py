"""An encoder with a classification head (transformers' AutoModelForSequenceClassification).

Subclasses choose what trains: the head only (encoder-head) or every layer (encoder-ft). The
model is loaded from the encoder's own files once per fit, in fp32 (master weights; autocast
does the speed), so the shared frozen encoder of the BackboneCache is never touched. The loop
learns label *distributions*: gold labels are one-hot, and distill's soft teacher labels go
through the same code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

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
from promptworth.methods.prompting import length_batches
from promptworth.methods.training import Schedule, TrainStats, autocast_for, split_dev, train
from promptworth.tasks.base import Split

EVAL_BATCH_SIZE = 32


@dataclass
class Targets:
    """Texts, the label distribution each should predict, and the temperature its logits are
    divided by: 1 for gold labels, distillation's T for a teacher's soft labels."""

    texts: list[str]
    probs: np.ndarray  # [n, n_labels]
    temperature: np.ndarray  # [n]

    @classmethod
    def gold(cls, split: Split, n_labels: int) -> Targets:
        return cls(list(split.texts), np.eye(n_labels)[split.labels], np.ones(len(split)))

    def __add__(self, other: Targets) -> Targets:
        return Targets(
            self.texts + other.texts,
            np.concatenate([self.probs, other.probs]),
            np.concatenate([self.temperature, other.temperature]),
        )

    def __len__(self) -> int:
        return len(self.texts)


def soft_cross_entropy(logits, probs, temperature):
    """Mean of T^2 * cross-entropy(probs, softmax(logits / T)): plain cross-entropy for one-hot
    targets at T=1; the T^2 keeps soft-label gradients on the scale of gold ones (Hinton et al.)."""
    import torch

    log_q = torch.log_softmax(logits.float() / temperature[:, None], dim=-1)
    return (-(probs * log_q).sum(-1) * temperature**2).mean()


class Tokenized:
    """Texts tokenized once; batches are padded on demand."""

    def __init__(self, tokenizer, texts: list[str], max_tokens: int):
        self.tokenizer = tokenizer
        self.encoded = tokenizer(texts, truncation=True, max_length=max_tokens)

    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.encoded["input_ids"]]

    def batch(self, indices: np.ndarray, device):
        rows = {key: [values[i] for i in indices] for key, values in self.encoded.items()}
        return self.tokenizer.pad(rows, return_tensors="pt").to(device)


class EncoderClassifier(Method):
    """Fine-tune an encoder's sequence-classification model; `train_all_layers` says how much."""

    train_all_layers: ClassVar[bool]
    test_params: ClassVar[dict[str, Any]] = {"max_steps": 3, "batch_size": 4}
    prompt_fields: ClassVar[tuple[str, ...]] = ()  # raw texts in, a class out: no prompt
    backbone_params: ClassVar[tuple[str, ...]] = ("encoder",)

    @dataclass(frozen=True)
    class Config:
        learning_rate: float  # each subclass sets its default
        encoder: str = ""  # "" = the sweep's --encoder; else an alias, directory or HF id
        batch_size: int = 8
        epochs: float = 10.0
        max_steps: int = 150
        max_tokens: int = 128

        def __post_init__(self) -> None:
            positive(self, "learning_rate", "epochs")
            at_least(self, 1, "batch_size", "max_steps", "max_tokens")

    def backbone_specs(self) -> dict[str, str]:
        return {f"{self.name}.encoder": self.config.encoder} if self.config.encoder else {}

    def schedule(self) -> Schedule:
        c = self.config
        return Schedule(c.learning_rate, c.batch_size, c.epochs, c.max_steps)

    def fit(self, train_split: Split, context: RunContext) -> EncoderClassifier:
        fit_idx, dev_idx = split_dev(len(train_split), self.schedule(), context.seed)
        gold = Targets.gold(train_split.subset(fit_idx), context.task.n_labels)
        return self.fit_targets(gold, train_split.subset(dev_idx), context)

    def fit_targets(self, targets: Targets, dev: Split, context: RunContext) -> EncoderClassifier:
        """Learn `targets`; early-stop on cross-entropy over the gold-labelled `dev` split."""
        import torch

        backbone = context.backbones.get(self.config.encoder or context.encoder, "encoder")
        self.tokenizer_, self.placement_ = backbone.tokenizer, backbone.placement
        source = context.backbones.source(backbone.spec)
        model = self.load_model(source, context.task.n_labels, context.seed)
        device = backbone.placement.device
        data = Tokenized(self.tokenizer_, targets.texts, self.config.max_tokens)
        probs = torch.tensor(targets.probs, dtype=torch.float32, device=device)
        temperature = torch.tensor(targets.temperature, dtype=torch.float32, device=device)

        def step_loss(batch: np.ndarray):
            encoded = data.batch(batch, device)
            logits = model(**encoded).logits
            loss = soft_cross_entropy(logits, probs[batch], temperature[batch])
            return loss, int(encoded["attention_mask"].sum())

        params = [p for p in model.parameters() if p.requires_grad]
        self.train_mode(model)
        stats: TrainStats = train(
            params,
            step_loss,
            self.dev_cross_entropy(model, dev) if len(dev) else None,
            len(targets),
            self.schedule(),
            context.seed,
            backbone.placement,
            context.say,
        )
        model.eval()
        trainable, total = count_params(model)
        self.model_, self.train_stats_ = model, stats
        self.cost_ = TrainingCost(
            trainable, total, stats.examples, stats.tokens, stats.steps, tensor_bytes(params)
        )
        return self

    def dev_cross_entropy(self, model, dev: Split) -> Callable[[], float]:
        """Cross-entropy on the gold-labelled dev split, for the early-stopping rule."""
        import torch

        data = Tokenized(self.tokenizer_, dev.texts, self.config.max_tokens)
        labels = torch.tensor(dev.labels, dtype=torch.long)

        def loss() -> float:
            model.eval()
            logits = torch.from_numpy(self.logits(model, data))
            self.train_mode(model)
            return float(torch.nn.functional.cross_entropy(logits, labels))

        return loss

    def load_model(self, source, n_labels: int, seed: int):
        """A fresh fp32 sequence-classification model from the encoder's files, with the
        trainable part chosen by `train_all_layers`; the new head's init follows `seed`."""
        import torch
        from transformers import AutoModelForSequenceClassification

        torch.manual_seed(seed)
        model = AutoModelForSequenceClassification.from_pretrained(
            source.path,
            revision=source.commit,
            trust_remote_code=False,
            num_labels=n_labels,
            dtype=torch.float32,
        ).to(self.placement_.device)
        if not self.train_all_layers:
            for param in model.base_model.parameters():
                param.requires_grad_(False)
        return model

    def train_mode(self, model) -> None:
        """Dropout where weights learn; a frozen encoder gives the features it gives at test."""
        model.train()
        if not self.train_all_layers:
            model.base_model.eval()

    def logits(self, model, data: Tokenized) -> np.ndarray:
        import torch

        out = np.zeros((len(data.lengths()), model.config.num_labels), dtype=np.float32)
        device = self.placement_.device
        with torch.inference_mode(), autocast_for(self.placement_):
            for batch in length_batches(data.lengths(), EVAL_BATCH_SIZE):
                out[batch] = model(**data.batch(batch, device)).logits.float().cpu().numpy()
        return out

    def predict(self, texts: list[str]) -> Prediction:
        self.check_fitted()
        data = Tokenized(self.tokenizer_, texts, self.config.max_tokens)
        scores = self.logits(self.model_, data).astype(np.float64)
        return Prediction(scores.argmax(axis=1), prompt_tokens=sum(data.lengths()), scores=scores)
