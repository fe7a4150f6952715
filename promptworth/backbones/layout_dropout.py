"""Dropout for LoRA layers that lets training pack a batch's rows into one sequence.

Packing (methods/prompt_training.label_only_loss) runs a batch as one row holding its tokens end
to end, with no padding. An `nn.Dropout` would draw its masks over that [1, tokens, features]
shape instead of the padded [rows, width, features] one: other masks, so other steps.
`LayoutDropout` always draws the padded batch's noise, with the formula of ATen's CPU dropout
(`empty_like(input).bernoulli_(1 - p)`, divided by 1 - p; on CPU its masks are nn.Dropout's
own), and inside `packed_rows` keeps the entries of the rows' tokens: each token meets the mask
padded training gives it, on any device.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


class LayoutDropout(torch.nn.Dropout):
    # (rows, positions, (n_rows, width)) while a packed batch runs: where each packed token sits
    # in the padded batch
    layout: tuple | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.layout is None:
            return x * torch.empty_like(x).bernoulli_(1 - self.p).div_(1 - self.p)
        rows, positions, shape = self.layout
        noise = x.new_empty((*shape, x.shape[-1])).bernoulli_(1 - self.p).div_(1 - self.p)
        return x * noise[rows, positions].unsqueeze(0)


def use_layout_dropout(model) -> None:
    """Swap each LoRA layer's nn.Dropout for a LayoutDropout of the same rate."""
    for module in model.modules():
        dropouts = getattr(module, "lora_dropout", None)
        if isinstance(dropouts, torch.nn.ModuleDict):
            for name, dropout in dropouts.items():
                if type(dropout) is torch.nn.Dropout:
                    dropouts[name] = LayoutDropout(dropout.p)


@contextmanager
def packed_rows(model, lengths: list[int]) -> Iterator[None]:
    """Inside, `model`'s LayoutDropout layers read their input as rows of `lengths` tokens
    packed end to end (one sequence) and draw the masks of those rows right-padded."""
    layers = [m for m in model.modules() if isinstance(m, LayoutDropout)]
    device = next(model.parameters()).device
    rows = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    positions = torch.cat([torch.arange(n) for n in lengths])
    layout = (rows.to(device), positions.to(device), (len(lengths), max(lengths)))
    for layer in layers:
        layer.layout = layout
    try:
        yield
    finally:
        for layer in layers:
            layer.layout = None
