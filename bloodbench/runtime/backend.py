"""Backend flags that change kernel choice (cudnn autotune, TF32, CPU threads), set explicitly.

A figure depends on these flags as much as on the model: training turns cudnn autotune and
TF32 on for speed, and a process that trains and then profiles (``bloodbench run``) would
otherwise profile under whatever the trainer left behind. :func:`backend_flags` sets every
flag for one block, yields what it set (the profile record's ``backend``), and restores the
process's own values afterwards, also on an exception.
"""

from __future__ import annotations

import contextlib
import gc
from typing import Any, Iterator

import torch

from bloodbench.errors import BloodbenchError


def current_flags() -> dict[str, Any]:
    """The process-wide flags as they are now."""
    return {
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
        "matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "threads": torch.get_num_threads(),
    }


def _restore(saved: dict[str, Any]) -> None:
    torch.backends.cudnn.benchmark = saved["cudnn_benchmark"]
    torch.backends.cudnn.allow_tf32 = saved["cudnn_allow_tf32"]
    torch.backends.cuda.matmul.allow_tf32 = saved["matmul_allow_tf32"]
    torch.set_float32_matmul_precision(saved["float32_matmul_precision"])  # after allow_tf32: they are linked


@contextlib.contextmanager
def cpu_threads(threads: int | None) -> Iterator[int]:
    """Pin torch's intra-op thread count for the measurement and restore it afterwards."""
    before = torch.get_num_threads()
    if threads is not None:
        if threads < 1:
            raise BloodbenchError(f"--threads must be >= 1 (got {threads})")
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def backend_flags(cudnn_benchmark: bool = True, allow_tf32: bool = False,
                  threads: int | None = None) -> Iterator[dict[str, Any]]:
    """Set cudnn autotune, TF32 (matmul and cudnn alike) and the CPU thread count for one block.

    Yields the record's ``backend`` block: ``{cudnn_benchmark, allow_tf32, float32_matmul_precision,
    threads}``. ``threads=None`` keeps torch's current count (and records it).
    """
    saved = current_flags()
    with cpu_threads(threads) as nthreads:  # checks the count and gives the process its own back
        try:
            torch.backends.cudnn.benchmark = bool(cudnn_benchmark)
            torch.backends.cuda.matmul.allow_tf32 = bool(allow_tf32)
            torch.backends.cudnn.allow_tf32 = bool(allow_tf32)
            torch.set_float32_matmul_precision("high" if allow_tf32 else "highest")
            yield {"cudnn_benchmark": bool(cudnn_benchmark), "allow_tf32": bool(allow_tf32),
                   "float32_matmul_precision": torch.get_float32_matmul_precision(), "threads": nthreads}
        finally:
            _restore(saved)


@contextlib.contextmanager
def gc_disabled() -> Iterator[None]:
    """No garbage collection pause inside a timed block; GC is back on (if it was) afterwards."""
    was_enabled = gc.isenabled()
    gc.collect()  # start clean, so the pause we skip is not just postponed into the next block
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
