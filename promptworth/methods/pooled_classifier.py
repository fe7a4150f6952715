"""A linear classifier on an encoder's mean-pooled token states (encoder-head, encoder-ft).

Sentence encoders such as MiniLM were trained to be read this way (Reimers & Gurevych 2019,
Sentence-BERT); transformers' sequence-classification head reads the [CLS] pooler instead.
"""

from __future__ import annotations

import torch
from transformers.modeling_outputs import SequenceClassifierOutput

from promptworth.backbones.embed import masked_mean


class MeanPooledClassifier(torch.nn.Module):
    """Token states averaged over the attention mask, dropout, one linear layer (BERT's head
    init: normal(0, initializer_range), zero bias). It answers like a transformers sequence
    classifier (`base_model`, `config.num_labels`, `.logits`), so one training loop reads both."""

    def __init__(self, encoder: torch.nn.Module, n_labels: int):
        super().__init__()
        if getattr(encoder, "pooler", None) is not None:
            encoder.pooler = None  # BERT's [CLS] pooler: unread, so neither trained nor counted
        config = encoder.config
        config.num_labels = n_labels
        self.encoder, self.config = encoder, config
        dropout = getattr(config, "classifier_dropout", None)
        if dropout is None:
            dropout = getattr(config, "hidden_dropout_prob", 0.1)
        self.dropout = torch.nn.Dropout(dropout)
        self.classifier = torch.nn.Linear(config.hidden_size, n_labels)
        std = getattr(config, "initializer_range", 0.02)
        torch.nn.init.normal_(self.classifier.weight, std=std)
        torch.nn.init.zeros_(self.classifier.bias)

    @property
    def base_model(self) -> torch.nn.Module:
        return self.encoder

    def pooled(self, **encoded) -> torch.Tensor:
        """[batch, hidden]: what the linear layer reads (before dropout)."""
        states = self.encoder(**encoded).last_hidden_state
        return masked_mean(states, encoded["attention_mask"])

    def forward(self, **encoded) -> SequenceClassifierOutput:
        logits = self.classifier(self.dropout(self.pooled(**encoded)))
        return SequenceClassifierOutput(logits=logits)
