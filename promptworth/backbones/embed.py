"""Sentence vectors from a frozen backbone (encoder or causal LM hidden states)."""

from __future__ import annotations

import numpy as np

POOLINGS = ("mean", "last")


def embed(
    backbone, texts: list[str], pooling: str = "mean", max_tokens: int = 128, batch_size: int = 32
) -> np.ndarray:
    """Mean of the last layer's token states (or the last token's state), as float32."""
    import torch

    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
    tokenizer, model = backbone.tokenizer, backbone.model
    device = next(model.parameters()).device
    order = np.argsort([len(t) for t in texts], kind="stable")
    vectors = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    tokenizer.padding_side = "right"
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = order[start : start + batch_size]
            enc = tokenizer(
                [texts[i] for i in batch],
                padding=True,
                truncation=True,
                max_length=max_tokens,
                return_tensors="pt",
            ).to(device)
            states = last_hidden_state(model, backbone.kind, enc)
            mask = enc["attention_mask"].unsqueeze(-1).to(states.dtype)
            if pooling == "mean":
                pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1)
            else:
                pooled = states[torch.arange(len(batch)), enc["attention_mask"].sum(1) - 1]
            vectors[batch] = pooled.float().cpu().numpy()
    return vectors


def last_hidden_state(model, kind: str, encoded):
    if kind == "encoder":
        return model(**encoded).last_hidden_state
    # A causal LM: ask for hidden states and compute a single position's logits only.
    out = model(**encoded, output_hidden_states=True, logits_to_keep=1)
    return out.hidden_states[-1]
