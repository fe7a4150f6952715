"""promptworth: should we prompt it or fine-tune it, and how many labels is a good prompt worth?

Data flow: task -> backbone -> method -> run -> store -> analysis -> report.
"""

__version__ = "0.1.0"


def _quiet_optional_imports() -> None:
    """torchao and bitsandbytes, which peft imports when they are installed (--serve-dtype),
    log at import that optional kernels (GPU ones, a hub-fetched CPU one) cannot load and that
    torchao calls a deprecated torch API: warnings about nothing promptworth uses, printed by
    every command."""
    import logging

    for name in ("torchao", "torch.utils._pytree", "bitsandbytes.backends.cpu.ops"):
        logging.getLogger(name).setLevel(logging.ERROR)


_quiet_optional_imports()
