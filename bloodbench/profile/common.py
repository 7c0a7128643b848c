"""Small torch helpers the profile modules share: quiet fvcore/kineto, the model's device, eval mode."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from typing import Iterator

import torch
from torch import nn


@contextlib.contextmanager
def quiet_fvcore() -> Iterator[None]:
    """Silence fvcore's per-op logger warnings and jit-trace warnings for one analysis.

    fvcore logs every unsupported operator on the console; we collect them instead
    (``unsupported_ops``) and report them once. Importing fvcore also fires torch's
    ``torch.jit.script`` FutureWarning, which says nothing about the user's model.
    """
    loggers = [logging.getLogger(n) for n in ("fvcore", "fvcore.nn.jit_analysis", "fvcore.nn.jit_handles")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lvl in zip(loggers, levels):
            lg.setLevel(lvl)


@contextlib.contextmanager
def quiet_kineto() -> Iterator[None]:
    """Hold back what torch.profiler's C++ side (kineto) prints on stderr while it runs.

    On a CPU-only machine it logs ``profiler_start``/``profiler_stop`` lines and an ``ERROR``
    about counting GPUs; none of it concerns the user's model, and an ERROR line on every
    profile would read as a failure. Python-level output is flushed first and restored after.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def model_device(model: nn.Module) -> torch.device:
    """Where the weights live (cpu for a model without any)."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Counts are of inference (eval mode: BN uses running stats, dropout is a no-op)."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def zeros_input(model: nn.Module, input_shape: tuple[int, ...], device: torch.device | str | None = None) -> torch.Tensor:
    """An all-zero input on the model's device: counts depend on shapes, not values."""
    return torch.zeros(tuple(input_shape), device=device or model_device(model))
