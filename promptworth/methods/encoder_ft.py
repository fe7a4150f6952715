"""encoder-ft: full transfer learning, every layer of the encoder and its head trains.

The same model as encoder-head (AutoModelForSequenceClassification on the encoder, MiniLM by
default), with all weights updated by cross-entropy under the shared training rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from promptworth.methods.encoder_classifier import EncoderClassifier


class EncoderFT(EncoderClassifier):
    name = "encoder-ft"
    family = "encoder fine-tuning"
    summary = "encoder + classification head, all layers fine-tuned (cross-entropy)"
    lr_family = "encoder"
    train_all_layers = True

    @dataclass(frozen=True)
    class Config(EncoderClassifier.Config):
        learning_rate: float = 1e-4
