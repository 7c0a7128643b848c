"""One optimiser step, as the trainer takes it and the benchmarks time it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bloodbench.runtime.precision import autocast


def model_outputs(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits plus an auxiliary loss for models that define one (``forward_with_aux``)."""
    if model.training and hasattr(model, "forward_with_aux"):
        return model.forward_with_aux(x)
    return model(x), None


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, opt: torch.optim.Optimizer,
               scaler: torch.amp.GradScaler, device: torch.device, precision: str = "fp32",
               weight: torch.Tensor | None = None, label_smoothing: float = 0.0,
               grad_clip: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward under autocast (cross-entropy in fp32, plus the model's auxiliary loss), scaled
    backward, optional gradient-norm clipping, optimiser step: returns (loss, logits), on the
    device (reading them is a host sync the caller decides on). The LR schedule is the caller's."""
    with autocast(device, precision):
        logits, aux = model_outputs(model, x)
        loss = F.cross_entropy(logits.float(), y, weight=weight, label_smoothing=label_smoothing)
        if aux is not None:
            loss = loss + aux.float()
    opt.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if grad_clip:
        scaler.unscale_(opt)
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(opt)
    scaler.update()
    return loss, logits
