"""Trained weights for ``get_model(name, weights=...)``, on torchvision's pattern.

``weights`` is ``"published"`` (the safetensors files shipped in ``models/published/``, each
checked against the sha256 in ``manifest.json``), the path of a ``.safetensors`` file written
by ``bloodbench weights publish``, or the path of a run's ``best.pt``. Each carries what is
needed to use it: the model's build arguments and the training normaliser (mean/std on the
[0, 1] scale), plus the precision and memory format its recorded predictions were made with.

Only the model's ``state_dict`` goes into a safetensors file; its metadata (``bloodbench`` key,
JSON) holds the manifest entry minus the file's own sha256 and size.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from bloodbench.errors import BloodbenchError

PUBLISHED_DIR = Path(__file__).with_name("published")
MANIFEST = "manifest.json"
#: a front model's weights are published only up to this size (bytes of the safetensors file)
MAX_PUBLISHED_BYTES = 5_000_000
META_KEY = "bloodbench"


@dataclass(frozen=True)
class Weights:
    """A model's trained parameters and how to feed them (see the module docstring)."""

    model: str
    state_dict: dict[str, torch.Tensor] = field(repr=False)
    in_channels: int
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    #: the rest: run_id, seed, dataset, size, precision, channels_last, eval_batch_size, sha256, ...
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def precision(self) -> str:
        return str(self.meta.get("precision") or "fp32")

    @property
    def channels_last(self) -> bool:
        return bool(self.meta.get("channels_last", False))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_manifest(folder: Path = PUBLISHED_DIR) -> list[dict[str, Any]]:
    """The published weights' entries (an empty list when none are published)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return []
    try:
        entries = json.loads(path.read_text())["weights"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BloodbenchError(f"{path} is not a weights manifest ({type(exc).__name__}): restore it from git") from None
    return list(entries)


def published_entry(name: str, dataset: str | None = None, size: int | None = None,
                    folder: Path = PUBLISHED_DIR) -> dict[str, Any] | None:
    """The manifest entry of ``name``'s published weights (for ``dataset`` / ``size`` when given)."""
    for e in read_manifest(folder):
        if e["model"] == name and dataset in (None, e.get("dataset")) and size in (None, e.get("size")):
            return e
    return None


def safetensors_bytes(state_dict: dict[str, torch.Tensor], meta: dict[str, Any]) -> bytes:
    """A state_dict as safetensors, ``meta`` as JSON in its metadata (tied tensors stored once each)."""
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items()}
    return save(tensors, metadata={META_KEY: json.dumps(meta, sort_keys=True)})


def _safetensors_meta(data: bytes, path: Path) -> dict[str, Any]:
    """The ``bloodbench`` metadata of a safetensors file (its header: u64 length, then JSON)."""
    try:
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + n])
        return json.loads(header["__metadata__"][META_KEY])
    except (struct.error, ValueError, KeyError, TypeError):
        raise BloodbenchError(f"{path} is not a safetensors file written by `bloodbench weights publish` "
                              f"(no {META_KEY!r} metadata)") from None


def _from_safetensors(path: Path, expected_sha256: str | None = None) -> Weights:
    from safetensors.torch import load

    data = path.read_bytes()
    digest = sha256_bytes(data)
    if expected_sha256 is not None and digest != expected_sha256:
        raise BloodbenchError(f"{path} has sha256 {digest}, the manifest says {expected_sha256}: the file is "
                              f"corrupt or was changed; restore it with `git checkout -- {path.name}`")
    meta = _safetensors_meta(data, path)
    try:
        state = load(data)
    except Exception as exc:  # safetensors raises its own error types for a torn file
        raise BloodbenchError(f"{path} is unreadable ({type(exc).__name__}): restore or re-publish it") from None
    return Weights(meta["model"], state, int(meta["in_channels"]), int(meta["num_classes"]),
                   tuple(meta["normalizer"]["mean"]), tuple(meta["normalizer"]["std"]), str(path),
                   dict(meta.get("model_kwargs") or {}), {**meta, "sha256": digest})


def _from_checkpoint(path: Path) -> Weights:
    """A run's ``best.pt`` (``train/checkpoint.py``'s format), read without unpickling code."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        state = ckpt["model_state"]
    except Exception as exc:  # torch raises several types for torn files; KeyError for another format
        raise BloodbenchError(f"{path} is not a readable bloodbench checkpoint ({type(exc).__name__})") from None
    config = dict(ckpt.get("config") or {})
    meta = {k: config[k] for k in ("seed", "dataset", "size", "precision", "channels_last", "eval_batch_size")
            if k in config}
    if path.parent.name.startswith(f"{ckpt['model']}-"):  # a results store's run folder is named by its run_id
        meta["run_id"] = path.parent.name
    return Weights(ckpt["model"], state, int(ckpt["in_channels"]), int(ckpt["num_classes"]),
                   tuple(ckpt["normalizer"]["mean"]), tuple(ckpt["normalizer"]["std"]), str(path),
                   dict(ckpt.get("model_kwargs") or {}), {"model": ckpt["model"], **meta})


def load_weights(name: str, weights: str | os.PathLike, folder: Path = PUBLISHED_DIR) -> Weights:
    """``name``'s weights: ``"published"`` (sha256-checked), a ``.safetensors`` file or a ``best.pt``."""
    if str(weights) == "published":
        entry = published_entry(name, folder=folder)
        if entry is None:
            have = ", ".join(sorted({e["model"] for e in read_manifest(folder)})) or "none"
            raise BloodbenchError(f"no published weights for {name} (published: {have}); train it with "
                                  f"`bloodbench train {name}` and load its run with --seed, or pass a weights file")
        path = Path(folder) / entry["file"]
        if not path.is_file():
            raise BloodbenchError(f"{path} is missing: restore it with `git checkout -- {path}`")
        w = _from_safetensors(path, entry["sha256"])
    else:
        path = Path(weights)
        if not path.is_file():
            raise BloodbenchError(f"weights file {path} not found: pass 'published', a .safetensors file or a "
                                  f"run's best.pt")
        w = _from_safetensors(path) if path.suffix == ".safetensors" else _from_checkpoint(path)
    if w.model != name:
        raise BloodbenchError(f"{w.source} holds weights of {w.model}, not {name}")
    return w


def build_with_weights(builder: Callable[..., nn.Module], name: str, weights: str | os.PathLike,
                       in_channels: int | None = None, num_classes: int | None = None, **kwargs: Any
                       ) -> tuple[nn.Module, Weights]:
    """Build ``name`` for its weights' channels and classes, load them (strict), eval mode."""
    w = load_weights(name, weights)
    for what, asked, have in (("in_channels", in_channels, w.in_channels), ("num_classes", num_classes, w.num_classes)):
        if asked is not None and asked != have:
            raise BloodbenchError(f"{w.source} was trained with {what}={have}, not {asked}")
    model = builder(in_channels=w.in_channels, num_classes=w.num_classes, **{**w.model_kwargs, **kwargs})
    try:
        model.load_state_dict(w.state_dict)
    except RuntimeError as exc:
        lines = str(exc).strip().splitlines()  # "Error(s) in loading state_dict ...", then the first problem
        why = lines[1].strip() if len(lines) > 1 else lines[0]
        raise BloodbenchError(f"{w.source} does not fit {name} as built here ({why})") from None
    return model.eval(), w
