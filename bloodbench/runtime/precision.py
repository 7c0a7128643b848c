"""Numeric precision of a run: the names, the device check and the autocast context.

Training and profiling both run models "as deployed" under one of these, so it lives below both.
"""

from __future__ import annotations

import contextlib

import torch

from bloodbench.choices import PRECISIONS
from bloodbench.errors import BloodbenchError

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str, device: torch.device | str) -> None:
    """Refuse precisions the device cannot run, before anything is built or timed."""
    device = torch.device(device)
    if precision not in PRECISIONS:
        raise BloodbenchError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise BloodbenchError("fp16 autocast needs CUDA (CPU fp16 kernels are slow emulation): "
                              "use --precision bf16 or fp32 on cpu")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise BloodbenchError(f"{torch.cuda.get_device_name(device)} does not support bf16: use fp16 or fp32")


def autocast(device: torch.device | str, precision: str,
             cache_enabled: bool | None = None) -> contextlib.AbstractContextManager:
    """Mixed precision as deployed: autocast over fp32 weights (no-op for fp32).

    ``cache_enabled=False`` for CUDA-graph capture (torch's CUDA-graphs notes require it).
    """
    device = torch.device(device)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[precision], cache_enabled=cache_enabled)
