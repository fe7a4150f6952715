"""Device and dtype, chosen at run time: CUDA when present, else CPU."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DTYPES = ("auto", "float32", "bfloat16", "float16")
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}  # a weight's size in each resolved dtype


@dataclass(frozen=True)
class Placement:
    device: str
    dtype: str  # a torch dtype name, resolved (never "auto")


def cpu_supports_fast_bf16() -> bool:
    """bf16 matmuls are fast on CPUs with AMX or AVX512-BF16 and slow elsewhere."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def choose_placement(dtype: str = "auto", device: str | None = None) -> Placement:
    """CUDA (bf16 where supported) when present; on CPU bf16 where the CPU has bf16 units.

    On a CPU with AMX (scripts/benchmark.py; docs/how-to/gpus-and-larger-models.md#cpu) bf16 scores
    zero-shot 2.6x faster than fp32 at the same accuracy, and LoRA steps under bf16 autocast
    run 2x faster. Training keeps fp32 master weights (see methods/training.py).
    """
    import torch

    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype == "auto":
        if device.startswith("cuda"):
            dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        else:
            dtype = "bfloat16" if cpu_supports_fast_bf16() else "float32"
    return Placement(device=device, dtype=dtype)


def torch_dtype(name: str):
    import torch

    return getattr(torch, name)
