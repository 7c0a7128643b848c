"""Softmax probabilities of a model over a split, in order: plain, or plain and 8-view TTA from one pass."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from bloodbench.data import Normalizer, TensorBatches
from bloodbench.data.medmnist_data import Split
from bloodbench.runtime.precision import autocast
from bloodbench.train.tta import view_probabilities


@torch.inference_mode()
def _predict(model: nn.Module, split: Split, norm: Normalizer, device: torch.device, batch_size: int,
             precision: str, channels_last: bool, tta: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(plain, 8-view TTA or None) softmax probabilities (N, C) for a split, in order."""
    model.eval()
    plain, mean = [], []
    batches = TensorBatches(split, batch_size, device, sampler="sequential")

    def forward(x: torch.Tensor) -> torch.Tensor:
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, precision):
            return model(x)

    for xb, _ in batches():
        x = norm(xb)
        if tta:  # the first view is x itself: the plain prediction comes free with the TTA pass
            views = view_probabilities(forward, x)
            plain.append(views[0].cpu())
            mean.append(torch.stack(views).mean(0).cpu())
        else:
            plain.append(torch.softmax(forward(x).float(), dim=1).cpu())
    return torch.cat(plain).numpy(), torch.cat(mean).numpy() if tta else None


def predict(model: nn.Module, split: Split, norm: Normalizer, device: torch.device, batch_size: int = 512,
            precision: str = "fp32", channels_last: bool = False) -> np.ndarray:
    """Softmax probabilities (N, C) for a split, in order."""
    return _predict(model, split, norm, device, batch_size, precision, channels_last, tta=False)[0]


def predict_with_tta(model: nn.Module, split: Split, norm: Normalizer, device: torch.device, batch_size: int = 512,
                     precision: str = "fp32", channels_last: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(plain, averaged over the 8 D4 views) softmax probabilities, from one 8-view pass."""
    return _predict(model, split, norm, device, batch_size, precision, channels_last, tta=True)
