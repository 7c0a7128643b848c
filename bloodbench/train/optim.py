"""The optimiser and the learning-rate schedule of a training config."""

from __future__ import annotations

import math

import torch
from torch import nn

from bloodbench.config import TrainConfig


def build_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    # No weight decay on norms and biases, as timm's param_groups_weight_decay does.
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # On CUDA the fused kernels update every parameter in one launch (fewer launches per step);
    # CPU keeps the default implementation, so CPU runs stay bit-identical to earlier ones.
    fused = any(p.is_cuda for p in model.parameters()) or None
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True, fused=fused)
    return torch.optim.AdamW(groups, lr=cfg.lr, fused=fused)


def build_scheduler(cfg: TrainConfig, opt: torch.optim.Optimizer, steps_per_epoch: int):
    """Per-step schedules (cosine with linear warm-up, one-cycle) or per-epoch plateau."""
    total = cfg.epochs * steps_per_epoch
    if cfg.schedule == "onecycle":
        # torch divides by the warm-up's length, pct_start * total - 1: nudge it off zero (a 4-step smoke run)
        pct = 0.25 if abs(0.25 * total - 1) > 1e-9 else 0.3
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total, pct_start=pct)
    if cfg.schedule == "cosine":
        warm = min(cfg.warmup_epochs * steps_per_epoch, total - 1)

        def lam(step: int) -> float:
            if step < warm:
                return (step + 1) / (warm + 1)
            return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

        return torch.optim.lr_scheduler.LambdaLR(opt, lam)
    if cfg.schedule == "plateau":
        mode = "min" if cfg.monitor == "val_loss" else "max"
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode=mode, factor=0.3, patience=max(1, cfg.patience // 3))
    return None


def steps_per_batch(sched) -> bool:
    """Whether ``sched`` steps after every batch (every schedule but plateau, which steps per epoch)."""
    return sched is not None and not isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau)
