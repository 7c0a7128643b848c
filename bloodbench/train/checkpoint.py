"""Checkpoints: everything needed to rebuild a trained model without the training config.

A checkpoint is a dict saved with ``torch.save``::

    {"model": name, "model_kwargs": {...}, "in_channels": C, "num_classes": K,
     "normalizer": {"mean": [...], "std": [...]}, "model_state": state_dict,
     "epoch": e, ...resume state for last.pt: optimizer, scheduler, early stopping, history}
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bloodbench.data import Normalizer
from bloodbench.errors import BloodbenchError
from bloodbench.models import create_model
from bloodbench.store.fsutil import atomic_write_bytes


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Atomic ``torch.save``: a kill mid-write leaves the previous checkpoint intact."""
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise BloodbenchError(f"checkpoint {path} not found: train the model first with `bloodbench train`")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # torch raises several types for torn/corrupt files
        raise BloodbenchError(f"checkpoint {path} is unreadable ({type(exc).__name__}): retrain with --force") from None


def model_from_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, Normalizer, dict]:
    """Rebuild the model in eval mode, with its normaliser and the raw checkpoint dict."""
    ckpt = load_checkpoint(path, map_location=device)
    model = create_model(ckpt["model"], in_channels=ckpt["in_channels"], num_classes=ckpt["num_classes"],
                         **ckpt.get("model_kwargs", {}))
    model.load_state_dict(ckpt["model_state"])
    model.to(device).eval()
    norm = Normalizer(tuple(ckpt["normalizer"]["mean"]), tuple(ckpt["normalizer"]["std"]))
    return model, norm, ckpt
