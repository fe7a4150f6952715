"""Batches of token sequences: padded to a rectangle, or grouped by length so little compute
goes to padding."""

from __future__ import annotations

import numpy as np


def left_padded(tokenizer, sequences: list[list[int]], device):
    import torch

    width = max(len(s) for s in sequences)
    pad = tokenizer.pad_token_id
    ids = torch.full((len(sequences), width), pad, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, width - len(seq) :] = torch.tensor(seq)
        mask[row, width - len(seq) :] = 1
    return ids.to(device), mask.to(device)


def right_padded(tokenizer, sequences: list[list[int]], device):
    import torch

    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    return ids.to(device), mask.to(device)


def same_length_batches(lengths: list[int], batch_size: int) -> list[np.ndarray]:
    """Indices grouped by equal length: batches that need no padding at all."""
    order = np.argsort(lengths, kind="stable")
    ordered = np.asarray(lengths)[order]
    groups = np.split(order, np.flatnonzero(np.diff(ordered)) + 1)
    return [g[i : i + batch_size] for g in groups for i in range(0, len(g), batch_size)]


def length_batches(lengths: list[int], batch_size: int) -> list[np.ndarray]:
    """Indices grouped by similar length, so little compute is spent on padding."""
    order = np.argsort(lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
