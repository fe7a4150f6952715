"""encoder-ft: full transfer learning, every layer of the encoder and its head trains.

The same model as encoder-head (a classification head on the encoder, MiniLM by default), with
all weights updated by cross-entropy under the shared training rule, starting from a linear probe
on the frozen vectors (LP-FT, `head_init=probe`).
"""

from __future__ import annotations

from dataclasses import dataclass

from promptworth.methods.encoder_classifier import EncoderClassifier


class EncoderFT(EncoderClassifier):
    name = "encoder-ft"
    family = "encoder fine-tuning"
    # BERT (Devlin et al. 2019) {2e-5, 3e-5, 5e-5}; 1e-4 for small MiniLMs
    learning_rates = (2e-5, 5e-5, 1e-4)
    train_all_layers = True

    @dataclass(frozen=True)
    class Config(EncoderClassifier.Config):
        learning_rate: float = 1e-4
        # LP-FT: the head starts as a linear probe (EncoderClassifier.probe_start;
        # docs/reference/methods/encoder-ft.md). On 1,000 AG News test rows, seed 0, against a
        # random head on the same mean-pooled vectors: 0.682 vs 0.335 at 10 labels (p < 1e-50),
        # 0.840 vs 0.818 at 100.
        head_init: str = "probe"
