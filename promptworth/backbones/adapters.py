"""PEFT wrapping without the transformers-5 deprecations peft 0.21 still walks into.

- `PeftModel.__init__` (and TRL's DPO loss, every step) reads `model.is_gradient_checkpointing`,
  which transformers 5 renamed `is_activation_checkpointing` and warns about: a FutureWarning a
  user cannot act on. We never enable checkpointing; the warning is silenced in those calls only
  (`upstream_noise`, which lists each silenced message and why it is harmless).
- Prefix tuning hands its trained prefix to the model as `past_key_values`, which transformers
  5 renamed `cache` (the old name warns, and goes in 5.40). In generation transformers also
  passes its own, still empty, `cache`, and given both it keeps `cache`: the prefix was silently
  dropped and prefix-tuning generated as the bare model. A forward pre-hook on the wrapped model
  passes the prefix as `cache` whenever no filled cache is given (training, the first step of
  generation or scoring) and keeps a filled one (later steps, which already hold the prefix).
  (Our own calls use the new name: prompting.with_cache.)
- LoRA's dropout layers become `LayoutDropout`s (backbones/layout_dropout.py): the same masks on
  padded batches, and training may then pack a batch's rows into one sequence.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Iterator

# Warnings peft and TRL raise that a user cannot act on, and why each is harmless here.
UPSTREAM_NOISE = (
    # read by PeftModel.__init__ and TRL's DPO loss; we never enable checkpointing
    (FutureWarning, "`is_gradient_checkpointing` is deprecated"),
    # generate passes position ids; peft drops them for prompt learning and positions the
    # virtual tokens itself (generation.generate_texts batches those models unpadded)
    (UserWarning, "Position ids are not supported for parameter efficient tuning"),
)


@contextlib.contextmanager
def upstream_noise() -> Iterator[None]:
    """Silence UPSTREAM_NOISE (only those messages) around calls into peft and TRL."""
    with warnings.catch_warnings():
        for category, message in UPSTREAM_NOISE:
            warnings.filterwarnings("ignore", message=message, category=category)
        yield


def peft_model(model, peft_config):
    """`peft.get_peft_model(model, peft_config)`, quietly and with the current cache keyword."""
    from peft import get_peft_model

    from promptworth.backbones.layout_dropout import use_layout_dropout

    with upstream_noise():
        wrapped = get_peft_model(model, peft_config)
    use_layout_dropout(wrapped)
    base = wrapped.get_base_model()
    if "cache" in inspect.signature(type(base).forward).parameters:
        # a module-level function, so copies of the model (deepcopy) carry a working hook
        base.register_forward_pre_hook(rename_past_key_values, with_kwargs=True)
    return wrapped


def rename_past_key_values(_module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Pass `past_key_values` as `cache` unless a filled `cache` is given."""
    if "past_key_values" in kwargs:
        prefix, cache = kwargs.pop("past_key_values"), kwargs.get("cache")
        if prefix is not None and (cache is None or cache.get_seq_length() == 0):
            kwargs["cache"] = prefix
    return args, kwargs
