"""PEFT wrapping without the transformers-5 deprecations peft 0.21 still walks into.

- `PeftModel.__init__` (and TRL's DPO loss, every step) reads `model.is_gradient_checkpointing`,
  which transformers 5 renamed `is_activation_checkpointing` and warns about: a FutureWarning a
  user cannot act on. We never enable checkpointing; the warning is silenced in those calls only.
- Prefix tuning, and generation with prompt learning, pass the KV cache to the model as
  `past_key_values`, which transformers 5 renamed `cache` and removes in 5.40. A forward pre-hook
  on the wrapped model hands it over under the new name, so those paths keep working after 5.40
  instead of silently losing the prefix. (Our own calls use the new name: prompting.with_cache.)
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def checkpointing_flag_read() -> Iterator[None]:
    """Around peft/TRL code that reads the deprecated `is_gradient_checkpointing` flag."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning
        )
        yield


def peft_model(model, peft_config):
    """`peft.get_peft_model(model, peft_config)`, quietly and with the current cache keyword."""
    from peft import get_peft_model

    with checkpointing_flag_read():
        wrapped = get_peft_model(model, peft_config)
    base = wrapped.get_base_model()
    if "cache" in inspect.signature(type(base).forward).parameters:
        # a module-level function, so copies of the model (deepcopy) carry a working hook
        base.register_forward_pre_hook(rename_past_key_values, with_kwargs=True)
    return wrapped


def rename_past_key_values(_module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """Move `past_key_values` to `cache` (where both are set, transformers keeps `cache` too)."""
    if "past_key_values" in kwargs:
        cache = kwargs.pop("past_key_values")
        if kwargs.get("cache") is None:
            kwargs["cache"] = cache
    return args, kwargs
