"""encoder-head: transfer learning with the output layer only.

The encoder (MiniLM by default) stays frozen; only the classification head learns, with
cross-entropy and the shared training rule: one linear layer on the mean-pooled token states
(`pooling=mean`, the default) or transformers' sequence-classification head on the [CLS] pooler
(`pooling=cls`), from a random start unless `head_init=probe`.
"""

from __future__ import annotations

from dataclasses import dataclass

from promptworth.methods.encoder_classifier import EncoderClassifier


class EncoderHead(EncoderClassifier):
    name = "encoder-head"
    family = "feature-based"
    # a linear head on frozen features
    learning_rates = (1e-2, 3e-2, 1e-1)
    train_all_layers = False

    @dataclass(frozen=True)
    class Config(EncoderClassifier.Config):
        learning_rate: float = 3e-2
