"""The method registry: one line per method, imported only when the method is used.

Listing names and summaries (`promptworth methods`, `--help`) never imports torch: summaries
are written here beside the import path. Adding a method touches its own module and one line.
"""

from __future__ import annotations

import importlib

# name -> ("module:Class", one-line summary)
REGISTRY: dict[str, tuple[str, str]] = {
    "zero-shot": (
        "promptworth.methods.zero_shot:ZeroShot",
        "no training: template + verbaliser on the frozen causal LM",
    ),
    "head": (
        "promptworth.methods.head:Head",
        "linear softmax head on frozen causal-LM features (Setup 1)",
    ),
    "prompt-ft": (
        "promptworth.methods.prompt_ft:PromptFT",
        "prompt-based fine-tuning of all LM weights (Setup 2)",
    ),
    "prompt-lora": (
        "promptworth.methods.prompt_lora:PromptLoRA",
        "prompt-based tuning through LoRA adapters (Setup 2, PEFT)",
    ),
}


def method_class(name: str):
    if name not in REGISTRY:
        raise KeyError(f"unknown method {name!r}; known methods: {', '.join(REGISTRY)}")
    module, cls = REGISTRY[name][0].split(":")
    return getattr(importlib.import_module(module), cls)


def make_method(name: str, **params):
    return method_class(name)(**params)
