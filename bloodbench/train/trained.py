"""A trained model ready to use, for ``predict`` and ``export``: from the published weights, a
weights file, or a seed's run in the results store; with the normaliser it was trained with and
the precision and memory format its recorded predictions were made with.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bloodbench.data import Normalizer
from bloodbench.data.medmnist_data import Split
from bloodbench.errors import BloodbenchError
from bloodbench.models import get_model_info
from bloodbench.models.weights import Weights, build_with_weights
from bloodbench.train.predict import predict, predict_with_tta


@dataclass
class Trained:
    model: nn.Module
    norm: Normalizer
    weights: Weights
    #: what was loaded, for the output: "published weights <file> (sha256 …)", "run <run_id>", a path
    source: str
    #: the eval batch size of the run (it can change the last bits of a reduced-precision result)
    batch_size: int = 512

    @property
    def precision(self) -> str:
        return self.weights.precision

    @property
    def channels_last(self) -> bool:
        return self.weights.channels_last

    @property
    def in_channels(self) -> int:
        return self.weights.in_channels

    @property
    def size(self) -> int | None:
        size = self.weights.meta.get("size")
        return int(size) if size is not None else None


def load_trained(model: str, weights: str | os.PathLike = "published", device: str | torch.device = "cpu",
                 source: str | None = None) -> Trained:
    """``model`` with trained weights (``"published"``, a ``.safetensors`` file or a run's ``best.pt``),
    in eval mode on ``device``; ``source`` names them in the output (default: the file).

    A reduced precision the device cannot run (a CUDA run's fp16 on CPU) falls back to fp32, and
    the source says so."""
    net, w = build_with_weights(get_model_info(model).builder, model, weights)
    device = torch.device(device)
    if source is None:
        source = w.source
        if str(weights) == "published":
            source = f"published weights {Path(w.source).name} (sha256 {w.meta['sha256'][:12]}…)"
    if w.precision != "fp32" and not _precision_runs_on(w.precision, device):
        source += f"; its {w.precision} predictions computed in fp32 on {device.type}"
        w = replace(w, meta={**w.meta, "precision": "fp32"})
    return Trained(net.to(device).eval(), Normalizer(w.mean, w.std), w, source,
                   int(w.meta.get("eval_batch_size") or 512))


def _precision_runs_on(precision: str, device: torch.device) -> bool:
    from bloodbench.runtime.precision import check_precision

    try:
        check_precision(precision, device)
    except BloodbenchError:
        return False
    return True


def probabilities(t: Trained, images: torch.Tensor, tta: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """(plain, 8-view TTA or None) softmax probabilities of uint8 N×C×H×W images: the path the
    run's own predictions took (its normaliser, precision, memory format and eval batch size)."""
    split = Split(images, torch.zeros(len(images), dtype=torch.int64))
    device = next(t.model.parameters()).device
    if tta:
        return predict_with_tta(t.model, split, t.norm, device, t.batch_size, t.precision, t.channels_last)
    return predict(t.model, split, t.norm, device, t.batch_size, t.precision, t.channels_last), None
