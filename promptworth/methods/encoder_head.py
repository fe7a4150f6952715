"""encoder-head: transfer learning with the output layer only.

The encoder (MiniLM by default) stays frozen; only the classification head that
AutoModelForSequenceClassification puts on it learns, with cross-entropy and the shared
training rule. For BERT-like encoders that head is one linear layer on the pooled [CLS] state.
"""

from __future__ import annotations

from dataclasses import dataclass

from promptworth.methods.encoder_classifier import EncoderClassifier


class EncoderHead(EncoderClassifier):
    name = "encoder-head"
    family = "feature-based"
    summary = "encoder + classification head, only the output layer trains (cross-entropy)"
    lr_family = "head"
    train_all_layers = False

    @dataclass(frozen=True)
    class Config(EncoderClassifier.Config):
        learning_rate: float = 3e-2
