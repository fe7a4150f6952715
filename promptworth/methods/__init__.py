"""The adaptation methods: one module per method behind the Method interface (base.py), listed
in the registry (registry.py)."""

from __future__ import annotations

from promptworth.methods.registry import REGISTRY, make_method, method_class

__all__ = ["REGISTRY", "make_method", "method_class", "prompt_started"]


def prompt_started() -> list[str]:
    """The methods that train from the LM's prompt (zero-shot is their step 0, kept unless
    training beats it): pet's pattern models, and the benchmark's never-below-zero-shot target."""
    from promptworth.methods.prompt_training import PromptTrainedMethod

    return [name for name in REGISTRY if issubclass(method_class(name), PromptTrainedMethod)]
