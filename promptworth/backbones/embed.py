"""Sentence vectors from a frozen backbone (encoder or causal LM hidden states).

An example with several inputs (tasks.base) is read as a pair, as encoders were pre-trained to
read two segments: the first input, then the others. An encoder's tokenizer marks the boundary
its own way ([CLS] a [SEP] b [SEP], with segment ids); a causal LM's tokenizer has no separator,
so the second segment starts on a new line. Truncation to `max_tokens` cuts the longer segment
first (transformers' "longest_first"), so a long passage leaves its question whole.
"""

from __future__ import annotations

import numpy as np

from promptworth.tasks.base import Example, example_length, example_slots

POOLINGS = ("mean", "last")
LM_SEPARATOR = "\n"  # before the second segment of a pair, for tokenizers without a sep token


def tokenize_examples(tokenizer, examples: list[Example], max_tokens: int, **kwargs):
    """The tokenizer's encoding of `examples`: single texts as they are, several inputs as a
    pair (first input; the others joined by the separator)."""
    if all(isinstance(example, str) for example in examples):
        return tokenizer(list(examples), truncation=True, max_length=max_tokens, **kwargs)
    sep = tokenizer.sep_token
    joiner = f" {sep} " if sep else LM_SEPARATOR
    firsts = [example_slots(e)[0] for e in examples]
    rests = [("" if sep else LM_SEPARATOR) + joiner.join(example_slots(e)[1:]) for e in examples]
    return tokenizer(firsts, rests, truncation="longest_first", max_length=max_tokens, **kwargs)


def embed(
    backbone,
    texts: list[Example],
    pooling: str = "mean",
    max_tokens: int = 128,
    batch_size: int = 32,
) -> np.ndarray:
    """Mean of the last layer's token states (or the last token's state), as float32."""
    import torch

    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
    tokenizer, model = backbone.tokenizer, backbone.model
    device = next(model.parameters()).device
    order = np.argsort([example_length(t) for t in texts], kind="stable")
    vectors = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    tokenizer.padding_side = "right"
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = order[start : start + batch_size]
            enc = tokenize_examples(
                tokenizer,
                [texts[i] for i in batch],
                max_tokens,
                padding=True,
                return_tensors="pt",
            ).to(device)
            states = last_hidden_state(model, backbone.kind, enc)
            if pooling == "mean":
                pooled = masked_mean(states, enc["attention_mask"])
            else:
                pooled = states[torch.arange(len(batch)), enc["attention_mask"].sum(1) - 1]
            vectors[batch] = pooled.float().cpu().numpy()
    return vectors


def masked_mean(states, attention_mask):
    """[batch, hidden]: the mean of `states` [batch, tokens, hidden] over the unmasked tokens."""
    mask = attention_mask.unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(1) / mask.sum(1).clamp(min=1)


def last_hidden_state(model, kind: str, encoded):
    if kind == "encoder":
        return model(**encoded).last_hidden_state
    # A causal LM: ask for hidden states and compute a single position's logits only.
    out = model(**encoded, output_hidden_states=True, logits_to_keep=1)
    return out.hidden_states[-1]
