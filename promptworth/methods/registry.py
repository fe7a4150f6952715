"""The method registry: one line per method, imported only when the method is used.

Listing names and summaries (`promptworth methods`, `--help`) never imports torch: summaries
are written here beside the import path, and each class reads its own from here (Method.summary).
Adding a method touches its own module and one line.
"""

from __future__ import annotations

import importlib

from promptworth.errors import PromptworthError, quoted

# name -> ("module:Class", one-line summary)
REGISTRY: dict[str, tuple[str, str]] = {
    "zero-shot": (
        "promptworth.methods.zero_shot:ZeroShot",
        "template + verbaliser on the frozen causal LM; rank classification or generation",
    ),
    "head": (
        "promptworth.methods.head:Head",
        "linear softmax classifier (cross-entropy) on frozen causal-LM features; LM untouched",
    ),
    "prompt-ft": (
        "promptworth.methods.prompt_ft:PromptFT",
        "prompt-based fine-tuning of all LM weights; loss on the label tokens only",
    ),
    "prompt-lora": (
        "promptworth.methods.prompt_lora:PromptLoRA",
        "LoRA adapters (PEFT) trained on the prompt-based objective; base weights frozen",
    ),
    "prompt-tuning": (
        "promptworth.methods.prompt_tuning:PromptTuning",
        "soft-prompt embeddings (PEFT prompt tuning) starting as the template's words",
    ),
    "prefix-tuning": (
        "promptworth.methods.prefix_tuning:PrefixTuning",
        "trained key/value prefixes in every attention layer (PEFT prefix tuning)",
    ),
    "p-tuning": (
        "promptworth.methods.p_tuning:PTuning",
        "virtual tokens from a trained prompt encoder (PEFT p-tuning); LM frozen",
    ),
    "ia3": (
        "promptworth.methods.ia3:IA3",
        "(IA)3 vectors rescaling keys, values and FFN activations (PEFT); LM frozen",
    ),
    "sft-lora": (
        "promptworth.methods.sft_lora:SFTLoRA",
        "generation: LoRA adapters fine-tuned on the reference answers (loss on answer tokens)",
    ),
    "sft-ft": (
        "promptworth.methods.sft_ft:SFTFT",
        "generation: every LM weight fine-tuned on the reference answers (loss on answer tokens)",
    ),
    "sft-ia3": (
        "promptworth.methods.sft_ia3:SFTIA3",
        "generation: IA3 vectors trained on the reference answers (loss on answer tokens)",
    ),
    "multitask": (
        "promptworth.methods.multitask:Multitask",
        "instruction tuning: one LoRA adapter on other tasks' pooled examples; this task held out",
    ),
    "qlora": (
        "promptworth.methods.qlora:QLoRA",
        "LoRA over 4-bit NF4 base weights (bitsandbytes); CUDA only",
    ),
    "dpo": (
        "promptworth.methods.dpo:DPO",
        "prompt-lora SFT, then DPO (TRL) preferring the gold label word to wrong ones",
    ),
    "zs-cot": (
        "promptworth.methods.zs_cot:ZeroShotCoT",
        'generation: "Let\'s think step by step", then the answer; frozen causal LM',
    ),
    "self-consistency": (
        "promptworth.methods.self_consistency:SelfConsistency",
        "generation: sampled chains of thought vote on the answer (medoid for free text)",
    ),
    "self-critique": (
        "promptworth.methods.self_critique:SelfCritique",
        "generation: answer, then critique and revise it (rounds configurable); frozen causal LM",
    ),
    "chain": (
        "promptworth.methods.chain:Chain",
        "generation: the task's multi-step prompt; each step reads the inputs and earlier outputs",
    ),
    "few-shot": (
        "promptworth.methods.few_shot:FewShot",
        "in-context learning: k labelled demonstrations before each test prompt; no training",
    ),
    "few-shot-cot": (
        "promptworth.methods.few_shot_cot:FewShotCoT",
        "generation: demonstrations from the model's own right chains of thought on training rows",
    ),
    "prompt-search": (
        "promptworth.methods.prompt_search:PromptSearch",
        "best of task, PET-style and LM-paraphrased templates on a dev split; zero-shot",
    ),
    "features-lr": (
        "promptworth.methods.features_lr:FeaturesLR",
        "scikit-learn classifier (logistic regression by default) on frozen encoder vectors",
    ),
    "encoder-head": (
        "promptworth.methods.encoder_head:EncoderHead",
        "encoder + classification head, only the output layer trains (cross-entropy)",
    ),
    "encoder-ft": (
        "promptworth.methods.encoder_ft:EncoderFT",
        "encoder + classification head, all layers fine-tuned (cross-entropy)",
    ),
    "distill": (
        "promptworth.methods.distill:Distill",
        "an encoder student learns a trained teacher's soft labels on unlabelled texts",
    ),
    "distill-gen": (
        "promptworth.methods.distill_generation:DistillGeneration",
        "generation: an sft student learns a teacher's answers for unlabelled inputs",
    ),
    "pet": (
        "promptworth.methods.pet:PET",
        "PET: a prompt-trained model per template soft-labels unlabelled texts for an encoder",
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
