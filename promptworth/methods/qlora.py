"""qlora (Dettmers et al. 2023): LoRA adapters over 4-bit NF4 base weights (bitsandbytes).

4-bit base weights need a CUDA GPU and bitsandbytes. Elsewhere qlora refuses to run rather than
quietly train plain LoRA, which would be a different method under qlora's name.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any, ClassVar

from promptworth.errors import PromptworthError
from promptworth.methods.base import RunContext, SavedState
from promptworth.methods.prompt_lora import PromptLoRA, lora_config
from promptworth.tasks.base import Split

REFUSAL = "qlora needs a CUDA GPU with bitsandbytes for 4-bit base weights"


def unavailable_reason(device: str) -> str | None:
    """Why 4-bit training can't run on `device`, or None when it can."""
    import torch

    if not device.startswith("cuda") or not torch.cuda.is_available():
        return f"{REFUSAL}; this machine has none (device {device}); use prompt-lora"
    if importlib.util.find_spec("bitsandbytes") is None:
        return f"{REFUSAL}; bitsandbytes is missing: pip install bitsandbytes, or use prompt-lora"
    return None


def quantization_recipe(config: QLoRA.Config, dtype: str) -> dict[str, Any]:
    """BitsAndBytesConfig's arguments for the 4-bit base, as JSON (the compute dtype by name)."""
    return {
        "load_in_4bit": True,
        "bnb_4bit_quant_type": "nf4",
        "bnb_4bit_use_double_quant": config.double_quant,
        "bnb_4bit_compute_dtype": dtype,
    }


def bnb_config(recipe: dict[str, Any]):
    """The BitsAndBytesConfig of a `quantization_recipe`."""
    from transformers import BitsAndBytesConfig

    from promptworth.backbones.device import torch_dtype

    dtype = torch_dtype(recipe["bnb_4bit_compute_dtype"])
    return BitsAndBytesConfig(**{**recipe, "bnb_4bit_compute_dtype": dtype})


class QLoRA(PromptLoRA):
    name = "qlora"
    family = "parameter-efficient"

    test_params: ClassVar[dict[str, Any]] = {"max_steps": 3, "batch_size": 4}

    @dataclass(frozen=True)
    class Config(PromptLoRA.Config):
        merge: bool = False  # merging into 4-bit weights would round the adapter away
        double_quant: bool = True  # also quantise the quantisation constants

    @classmethod
    def unavailable(cls, device: str) -> str | None:
        return unavailable_reason(device)

    @classmethod
    def check_device(cls, device: str) -> None:
        """Raise when `device` can't hold 4-bit weights (the sweep checks when planning)."""
        reason = unavailable_reason(device)
        if reason:
            raise PromptworthError(reason)

    def state(self) -> SavedState:
        """LoRA's adapter weights and the 4-bit recipe the base was loaded with (NF4, double
        quantization, compute dtype); `predict` quantizes the base again by it, on CUDA only.

        NF4 rounding of the same weights is deterministic, so the re-quantized base is the one
        the adapter was trained over; an artifact whose recipe differs is refused."""
        saved = super().state()
        saved.meta["quantization"] = quantization_recipe(self.config, self.placement_.dtype)
        return saved

    def restore(self, state: SavedState, context: RunContext) -> QLoRA:
        self.check_device(context.backbones.placement.device)  # before any model is loaded
        recipe = quantization_recipe(self.config, context.backbones.placement.dtype)
        if state.meta["quantization"] != recipe:
            raise PromptworthError(
                f"qlora: the model was quantized as {state.meta['quantization']}, this restore "
                f"would quantize as {recipe}; use the artifact's dtype"
            )
        return super().restore(state, context)

    def start_is_the_prompt(self) -> bool:
        return False  # its start is the 4-bit model, not the backbone

    def fit(self, train_split: Split, context: RunContext) -> QLoRA:
        self.check_device(context.backbones.placement.device)  # before any model is loaded
        return super().fit(train_split, context)

    def trainable_model(self, backbone, context: RunContext):
        import torch
        from peft import prepare_model_for_kbit_training
        from transformers import AutoModelForCausalLM

        from promptworth.backbones.adapters import peft_model
        from promptworth.backbones.device import torch_dtype
        from promptworth.backbones.loading import load_pretrained

        placement = backbone.placement
        quantization = bnb_config(quantization_recipe(self.config, placement.dtype))
        source = context.backbones.source(context.model)
        model = load_pretrained(
            AutoModelForCausalLM,
            source.path,
            revision=source.commit,
            quantization_config=quantization,
            dtype=torch_dtype(placement.dtype),
            device_map={"": placement.device},
        )
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        torch.manual_seed(context.seed)
        return peft_model(model, lora_config(self.config))
