"""Measuring what a run costs: wall time and peak memory (process RSS, and GPU when used)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import os
import platform
import resource
import sys
import time
from contextlib import contextmanager
from pathlib import Path

PROC = Path("/proc/self")


@functools.cache
def malloc_trim():
    """glibc's `malloc_trim` (Linux), looked up once; None where there is none."""
    libc = ctypes.util.find_library("c")
    if not (sys.platform.startswith("linux") and libc):
        return None
    return getattr(ctypes.CDLL(libc), "malloc_trim", None)


def return_freed_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc's `malloc_trim`), so the
    next resident-memory reading counts what is held, not what was held before."""
    gc.collect()
    trim = malloc_trim()
    if trim is not None:
        trim(0)
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def reset_peak_rss() -> bool:
    """Linux lets a process reset its RSS high-water mark (write 5 to clear_refs)."""
    try:
        (PROC / "clear_refs").write_text("5")
        return True
    except OSError:
        return False


def status_mb(field: str) -> float | None:
    """A memory line of /proc/self/status (Linux) in MB, None where there is none."""
    try:
        for line in (PROC / "status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def rss_mb() -> float | None:
    """The process's resident memory now (Linux), None where /proc does not say."""
    return status_mb("VmRSS")


def peak_rss_mb() -> float:
    peak = status_mb("VmHWM")
    if peak is not None:
        return peak
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1024**2


def load_average() -> float | None:
    """The system's 1-minute load average (runnable processes, all users): above the CPU count,
    other work was competing with the measurement. None where the system does not say."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def cpu_seconds() -> tuple[float, float] | None:
    """(CPU seconds every process has used since boot, CPU seconds this process has used): two
    readings tell how much of the CPUs other work took in between. None where /proc/stat is not
    there (Linux only)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    ticks = os.sysconf("SC_CLK_TCK")
    own = os.times()
    return (user + nice + system + irq + softirq + steal) / ticks, own.user + own.system


def other_cpus(before: tuple[float, float] | None, wall_seconds: float) -> float | None:
    """CPUs' worth of other processes' work since the cpu_seconds() reading `before`, averaged
    over `wall_seconds`: 0 on a quiet machine whatever this process does itself."""
    after = cpu_seconds()
    if before is None or after is None or wall_seconds <= 0:
        return None
    others = (after[0] - before[0]) - (after[1] - before[1])
    return round(max(others, 0.0) / wall_seconds, 2)


def reset_gpu_peak() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def gpu_peak_mb() -> float | None:
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.max_memory_allocated() / 1024**2


def cpu_threads() -> int:
    """Threads torch computes with on the CPU: its float sums are ordered by them, so the same
    run on another thread count can flip a near-tied prediction
    (docs/concepts/reproducibility.md#same-predictions)."""
    import torch

    return torch.get_num_threads()


@functools.cache
def cpu_model() -> str:
    """The processor's model name: float kernels differ between CPUs, so the same run on another
    machine can flip a near-tied prediction (docs/concepts/reproducibility.md#same-predictions)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:  # not Linux
        pass
    return platform.processor() or platform.machine() or "unknown"


@contextmanager
def stopwatch(record: dict, name: str):
    start = time.perf_counter()
    try:
        yield
    finally:
        record[name] = time.perf_counter() - start
