"""PEFT models under transformers 5: the KV cache under its current name, the prefix kept.

peft 0.21 hands prefix tuning's trained prefix to the model as `past_key_values`; transformers 5
calls it `cache`, and in generation passes its own empty one too, keeping that. Without
backbones/adapters.py prefix tuning generated as if untrained. These tests compare each PEFT
model's fast paths with plain full forward passes, which cannot get the cache wrong.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from promptworth.backbones.adapters import UPSTREAM_NOISE, upstream_noise
from promptworth.methods import make_method, method_class
from promptworth.methods.base import PromptOptions
from promptworth.methods.generation import Decoding, answer_start, generate_texts
from promptworth.methods.prompting import PromptFormat

PEFT_METHODS = ["prompt-tuning", "prefix-tuning", "p-tuning", "ia3", "prompt-lora"]


def perturbed(name: str, backbone, context):
    """The method's PEFT model with seeded noise on its adapter, strong enough to matter."""
    method = make_method(name, **method_class(name).test_params)
    model = method.trainable_model(backbone, context)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(2.0 * torch.randn(param.shape, generator=generator))
    return model.eval()


def greedy_by_full_passes(model, prompt: list[int], steps: int) -> list[int]:
    sequence = list(prompt)
    with torch.no_grad():
        for _ in range(steps):
            logits = model(input_ids=torch.tensor([sequence])).logits[0, -1]
            sequence.append(int(logits.argmax()))
    return sequence[len(prompt) :]


@pytest.mark.parametrize("name", PEFT_METHODS)
def test_generation_equals_greedy_decoding_by_full_forward_passes(
    name, task, backbones, tiny_lm_dir, make_context
):
    backbone = backbones.get(tiny_lm_dir, "causal-lm")
    model = perturbed(name, backbone, make_context())
    fmt = PromptFormat(task, backbone.tokenizer, PromptOptions())
    prompts = [fmt.encode_prompt(fmt.prompt(text)) for text in task.test.texts[:4]]
    expected = [
        answer_start(
            backbone.tokenizer.decode(greedy_by_full_passes(model, p, 3), skip_special_tokens=True)
        )
        for p in prompts
    ]
    assert generate_texts(model, backbone.tokenizer, prompts, Decoding(3), 1) == expected


def test_only_the_listed_upstream_messages_are_silenced():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with upstream_noise():
            for category, message in UPSTREAM_NOISE:
                warnings.warn(f"{message} and more", category, stacklevel=1)
            warnings.warn("`past_key_values` is deprecated", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["`past_key_values` is deprecated"]
