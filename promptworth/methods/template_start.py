"""Virtual tokens that start as the template's own leading words (prompt-, prefix-, p-tuning).

The virtual tokens *replace* what the rendered prompt has before the text (the template's
leading words, with the chat header and BOS where there are some): for "Article: {text}\\nTopic:"
the model reads " {text}\\nTopic:" after virtual tokens standing for "Article:". They start as
exactly those tokens - their input embeddings (prompt tuning), their keys and values in every
layer (prefix tuning), or an encoder whose output is those embeddings (p-tuning) - and the text
keeps the positions it has in the plain prompt, so the untrained model scores what zero-shot
scores and training starts from the prompt the LM already reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from promptworth.errors import PromptworthError
from promptworth.methods.prompting import PromptFormat, output_cache
from promptworth.tasks.base import TEXT_SLOT


@dataclass
class HeadlessFormat(PromptFormat):
    """The task's prompts without their leading tokens `head`, which virtual tokens replace."""

    head: list[int] = field(default_factory=list)

    def encode_prompt(self, prompt: str) -> list[int]:
        ids = super().encode_prompt(prompt)
        if ids[: len(self.head)] != self.head:
            raise ValueError(
                f"the prompt {prompt[:60]!r}... does not start with the tokens of the template's "
                "leading words: they merge with the text when tokenized; separate them from "
                "{text} by a space or a newline in the template"
            )
        return ids[len(self.head) :]


def headless_format(fmt: PromptFormat, method: str, alternative: str) -> HeadlessFormat:
    """`fmt` with its head cut off: the tokens of everything before the text in a rendered
    prompt (BOS, chat header, template words), trailing white space left to the text.

    A template with nothing before its text has no words to start from: that is an error
    naming `alternative`, the method's init that does not need them."""
    rendered = fmt.prompt(fmt.task.blank(TEXT_SLOT))  # the words before the first input
    words = rendered[: rendered.index(TEXT_SLOT)].rstrip()
    if not words:
        template = fmt.task.templates[fmt.options.template]
        raise PromptworthError(
            f"{method}: init=template turns the words before the first input into the virtual "
            "tokens, "
            f"and template {fmt.options.template} ({template!r}) has none; choose a template "
            f"that starts with words (--template) or {method}.init={alternative}"
        )
    return HeadlessFormat(fmt.task, fmt.tokenizer, fmt.options, fmt.encode_prompt(words))


def head_embeddings(peft_model, head: list[int]) -> torch.Tensor:
    """The input embeddings of the head's tokens: [len(head), hidden], fp32."""
    weight = peft_model.get_base_model().get_input_embeddings().weight
    return weight[torch.tensor(head, device=weight.device)].detach().float()


def head_key_values(peft_model, head: list[int]) -> torch.Tensor:
    """The frozen model's keys and values of the head's tokens in every layer, as the rows of
    PEFT's prefix-encoder embedding: [len(head), layers x (key, value) x kv heads x head dim].

    PEFT views each row as (layers * 2, kv heads, head dim), layer l's key at 2l and value at
    2l + 1, and feeds them to the model as its KV cache; keys are cached after the rotary
    embedding, so those of positions 0..len(head)-1 are exactly what the plain prompt caches.
    """
    model = peft_model.get_base_model()
    was_training = model.training
    model.eval()  # no dropout in the activations copied
    with torch.no_grad():
        ids = torch.tensor([head], device=model.device)
        cache = output_cache(model(input_ids=ids, use_cache=True))
    model.train(was_training)
    layers = torch.stack([torch.stack([layer.keys[0], layer.values[0]]) for layer in cache.layers])
    return layers.permute(3, 0, 1, 2, 4).reshape(len(head), -1).float()


class StartsFrom(torch.nn.Module):
    """A PEFT prompt encoder (p-tuning's, or prefix tuning's with its projection) whose output
    is `start` plus what the encoder adds, the encoder's last layer zeroed: it outputs exactly
    `start` until it trains. A residual around PEFT's encoder, as PEFT has no init that makes
    its MLP reproduce given vectors; PEFT only needs `.embedding` (its device) and the call."""

    def __init__(self, encoder: torch.nn.Module, start: torch.Tensor, last: torch.nn.Linear):
        super().__init__()
        self.encoder = encoder
        self.embedding = encoder.embedding
        self.register_buffer("start", start.detach().clone())
        with torch.no_grad():
            last.weight.zero_()
            last.bias.zero_()

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        return self.start[indices] + self.encoder(indices)


def load_start(peft_model, start: torch.Tensor, last: torch.nn.Linear | None = None) -> None:
    """Make the active adapter's virtual tokens start at `start` ([virtual tokens, width]): its
    embedding itself where that is what PEFT uses (prompt tuning, plain prefix tuning), else a
    `StartsFrom` around its encoder whose last layer is `last`."""
    name = peft_model.active_adapter
    encoder = peft_model.prompt_encoder[name]
    tokens = peft_model.prompt_tokens[name][None].to(encoder.embedding.weight.device)
    with torch.no_grad():
        produced = tuple(encoder(tokens).shape[1:])
    if produced != tuple(start.shape):
        raise ValueError(
            f"PEFT's virtual tokens are {produced}, the template's start {tuple(start.shape)}: "
            "this architecture's layout is not the one promptworth knows; use init=random"
        )
    if last is None:
        with torch.no_grad():
            encoder.embedding.weight.copy_(start)
    else:
        start = start.to(encoder.embedding.weight)
        peft_model.prompt_encoder[name] = StartsFrom(encoder, start, last)
