"""The method registry: one line per method, imported only when the method is used.

Listing names and summaries (`promptworth methods`, `--help`) never imports torch: summaries
are written here beside the import path. Adding a method touches its own module and one line.
"""

from __future__ import annotations

import importlib

from promptworth.errors import PromptworthError, quoted

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
    "prompt-tuning": (
        "promptworth.methods.prompt_tuning:PromptTuning",
        "soft prompt (PEFT prompt tuning) initialised from the template's words",
    ),
    "prefix-tuning": (
        "promptworth.methods.prefix_tuning:PrefixTuning",
        "trained key/value prefixes in every attention layer (PEFT)",
    ),
    "p-tuning": (
        "promptworth.methods.p_tuning:PTuning",
        "virtual tokens from a trained prompt encoder (PEFT p-tuning)",
    ),
    "ia3": (
        "promptworth.methods.ia3:IA3",
        "(IA)3 rescaling vectors, prompt-based objective (PEFT)",
    ),
    "qlora": (
        "promptworth.methods.qlora:QLoRA",
        "LoRA over 4-bit NF4 base weights (bitsandbytes; CUDA only)",
    ),
    "dpo": (
        "promptworth.methods.dpo:DPO",
        "prompt-lora SFT, then DPO (TRL) on gold-vs-wrong label preferences",
    ),
    "few-shot": (
        "promptworth.methods.few_shot:FewShot",
        "in-context learning: k demonstrations (random or kNN) before the prompt; no training",
    ),
    "prompt-search": (
        "promptworth.methods.prompt_search:PromptSearch",
        "pick the best of task, PET-style and LM-paraphrased templates on a dev split; zero-shot",
    ),
    "features-lr": (
        "promptworth.methods.features_lr:FeaturesLR",
        "scikit-learn classifier (logistic regression) on frozen encoder sentence vectors",
    ),
    "encoder-head": (
        "promptworth.methods.encoder_head:EncoderHead",
        "encoder + classification head, only the output layer trains",
    ),
    "encoder-ft": (
        "promptworth.methods.encoder_ft:EncoderFT",
        "encoder + classification head, all layers fine-tuned",
    ),
    "distill": (
        "promptworth.methods.distill:Distill",
        "a small encoder student learns a sweep method's soft labels on unlabelled texts",
    ),
    "pet": (
        "promptworth.methods.pet:PET",
        "PET: a prompt-trained model per template; their ensemble soft-labels unlabelled texts",
    ),
}


def method_class(name: str):
    if name not in REGISTRY:
        raise PromptworthError(
            f"unknown method {quoted(name)}; known methods: {', '.join(REGISTRY)}"
        )
    module, cls = REGISTRY[name][0].split(":")
    return getattr(importlib.import_module(module), cls)


def make_method(name: str, **params):
    return method_class(name)(**params)


def prompt_started() -> list[str]:
    """The methods that train from the LM's prompt (zero-shot is their step 0, kept unless
    training beats it): pet's pattern models, and the benchmark's never-below-zero-shot target."""
    from promptworth.methods.prompt_training import PromptTrainedMethod

    return [name for name in REGISTRY if issubclass(method_class(name), PromptTrainedMethod)]
