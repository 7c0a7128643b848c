"""The training loop: early stopping on the validation metric, resumable checkpoints,
evaluation of the best-on-validation checkpoint on test, one record in the store.

Everything in the hot loop is a tensor op on the training device: the split lives there as
uint8, batches are index slices, normalisation and augmentation are whole-batch ops. Loss and
accuracy accumulate on the device and are read once per epoch (no per-step ``.item()`` host
sync; only a visible progress bar reads them every :data:`POSTFIX_EVERY` steps). The backend
flags training wants (cudnn autotune, TF32) hold for ``fit`` only, never for the process after.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from bloodbench.data import (MedMNISTData, Normalizer, TensorBatches, augment_batch, class_weights,
                             epoch_generator, load_dataset)
from bloodbench.data.medmnist_data import Split
from bloodbench.envinfo import environment, resolve_device, seed_everything
from bloodbench.errors import BloodbenchError
from bloodbench.metrics import bootstrap_ci, classification_metrics
from bloodbench.models import count_params, create_model, get_model_info
from bloodbench.precision import autocast, check_precision
from bloodbench.predictions import PREDICTION_FILES, save_predictions
from bloodbench.backend import backend_flags
from bloodbench.results import ResultsStore, utc_now
from bloodbench.verdicts import annotate
from bloodbench.train.checkpoint import load_checkpoint, save_checkpoint
from bloodbench.config import TrainConfig
from bloodbench.train.tta import view_probabilities

EpochCallback = Callable[[int, dict], None]
#: Steps between progress-bar loss/accuracy updates (each one is a host sync; only when the bar shows).
POSTFIX_EVERY = 50


class TrainingDiverged(BloodbenchError):
    """The loss became NaN/inf; the record is written with status ``diverged`` first."""


def model_outputs(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits plus an auxiliary loss for models that define one (``forward_with_aux``)."""
    if model.training and hasattr(model, "forward_with_aux"):
        return model.forward_with_aux(x)
    return model(x), None


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


@dataclass
class EarlyStopping:
    """Tracks the best monitored value; ``bad_epochs`` counts epochs without improvement."""

    mode: str
    patience: int
    min_delta: float
    best: float = math.nan
    best_epoch: int = -1
    bad_epochs: int = 0

    def update(self, value: float, epoch: int) -> bool:
        """Returns True if ``value`` is a new best."""
        better = (math.isnan(self.best) or
                  (value > self.best + self.min_delta if self.mode == "max" else value < self.best - self.min_delta))
        if better:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
        else:
            self.bad_epochs += 1
        return better

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs >= self.patience


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


@dataclass
class TrainState:
    """What one training run holds while it runs."""

    ds: MedMNISTData
    model: nn.Module
    step_model: nn.Module
    norm: Normalizer
    batches: TensorBatches
    opt: torch.optim.Optimizer
    sched: Any
    scaler: torch.amp.GradScaler
    weight: torch.Tensor | None
    stopper: EarlyStopping


def divergence_hint(cfg: TrainConfig) -> str:
    """What to try after a divergence: leaving reduced precision only helps a run that used it."""
    tries = [f"lower --lr (was {cfg.lr:g})"]
    if not cfg.grad_clip:
        tries.append("enable gradient clipping, e.g. --grad-clip 5")
    if cfg.precision != "fp32":
        tries.append(f"use --precision fp32 (was {cfg.precision})")
    return "Try: " + ", or ".join(tries)


REPLACED_DIR = "replaced"


def set_aside_old_run(run_dir: Path) -> Path | None:
    """``--force``: move the old run's files (record, best checkpoint, predictions) into
    ``run_dir/replaced/`` (deleted once the new record is written), and drop ``last.pt`` so
    training starts from scratch.

    A forced retrain killed half-way thus leaves the old finished run restorable, and no record
    that claims to describe the new, partial checkpoints. If ``replaced/`` is already there (an
    earlier forced retrain was interrupted), it holds the finished run and is kept as it is.
    """
    (run_dir / "last.pt").unlink(missing_ok=True)
    old = [p for p in sorted(run_dir.iterdir()) if p.is_file()] if run_dir.is_dir() else []
    keep = run_dir / REPLACED_DIR
    if keep.is_dir():
        for path in old:
            path.unlink()
        return keep
    if not old:
        return None
    keep.mkdir()
    for path in old:
        path.rename(keep / path.name)
    tqdm.write(f"--force: retraining {run_dir.name} from scratch; the old run is kept in {keep} "
               f"until the new record is written", file=sys.stderr)
    return keep


class Trainer:
    """Trains one (model, dataset, size, seed, config) run into a results store."""

    def __init__(self, cfg: TrainConfig, results: str | None = None, data_dir: str | None = None,
                 verify: bool = True, progress: bool = True, data: MedMNISTData | None = None,
                 n_boot: int = 1000) -> None:
        self.cfg = cfg
        self.n_boot = n_boot
        self.store = ResultsStore(results)
        self.run_dir = self.store.run_dir(cfg.run_id)
        self.device = resolve_device(cfg.device)
        check_precision(cfg.precision, self.device)
        self.data_dir, self.verify, self.progress = data_dir, verify, progress
        self._data = data

    # -- setup -------------------------------------------------------------------------
    def load_data(self) -> MedMNISTData:
        if self._data is None:
            self._data = load_dataset(self.cfg.dataset, self.cfg.size, self.data_dir, verify=self.verify)
        return self._data

    def _train_split(self, ds: MedMNISTData) -> Split:
        tr = ds["train"]
        if self.cfg.limit_train:
            tr = Split(tr.images[: self.cfg.limit_train], tr.labels[: self.cfg.limit_train])
        return tr

    def build_model(self, in_channels: int, num_classes: int) -> nn.Module:
        model = create_model(self.cfg.model, in_channels=in_channels, num_classes=num_classes, **self.cfg.model_kwargs)
        model.to(self.device)
        if self.cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def setup(self) -> "TrainState":
        """Data, model, optimiser, schedule and loss weights for this config, on the device."""
        cfg = self.cfg
        seed_everything(cfg.seed)
        ds = self.load_data()
        train_split = self._train_split(ds)
        model = self.build_model(ds.info.n_channels, ds.info.n_classes)
        sampler = "balanced" if cfg.class_weighting == "sampler" else "shuffle"
        batches = TensorBatches(train_split, cfg.batch_size, self.device, sampler=sampler,
                                drop_last=len(train_split) > cfg.batch_size)
        opt = build_optimizer(cfg, model)
        weight = class_weights(train_split.labels, ds.info.n_classes).to(self.device) \
            if cfg.class_weighting == "loss" else None
        return TrainState(
            ds=ds, model=model, step_model=torch.compile(model) if cfg.compile else model,
            norm=Normalizer.from_split(train_split), batches=batches, opt=opt,
            sched=build_scheduler(cfg, opt, len(batches)),
            scaler=torch.amp.GradScaler("cuda", enabled=cfg.precision == "fp16"), weight=weight,
            stopper=EarlyStopping("min" if cfg.monitor == "val_loss" else "max", cfg.patience, cfg.min_delta))

    def train_epoch(self, st: "TrainState", epoch: int) -> tuple[float, float, bool]:
        """One pass over the training split with the (seed, epoch) stream of batches and augmentations."""
        torch.manual_seed(self.cfg.seed * 100_003 + epoch)  # dropout etc.: same stream on resume
        gen = epoch_generator(self.cfg.seed, epoch, self.device)
        return self._train_epoch(st.step_model, st.batches, st.norm, st.opt, st.sched, st.scaler, st.weight, gen,
                                 epoch)

    def backend(self) -> contextlib.AbstractContextManager:
        """Training's backend flags on CUDA (cudnn autotune, TF32), restored on exit: a process
        that trains and then profiles (``bloodbench run``) profiles under its own flags."""
        if self.device.type != "cuda":
            return contextlib.nullcontext()
        return backend_flags(cudnn_benchmark=True, allow_tf32=True)

    # -- main entry --------------------------------------------------------------------
    def fit(self, force: bool = False, on_epoch_end: EpochCallback | None = None) -> dict[str, Any]:
        """Train (or resume), evaluate the best checkpoint on test, write and return the record."""
        with self.backend():
            return self._fit(force, on_epoch_end)

    def _fit(self, force: bool, on_epoch_end: EpochCallback | None) -> dict[str, Any]:
        cfg = self.cfg
        existing = self.store.get("train", cfg.run_id)
        if existing and existing.get("status") == "finished" and not force:
            return existing
        self.store.ensure_writable()  # before an epoch is spent, not after
        last_path, best_path = self.run_dir / "last.pt", self.run_dir / "best.pt"
        if force:
            set_aside_old_run(self.run_dir)

        st = self.setup()
        ds, model, norm, opt, sched, scaler, stopper = st.ds, st.model, st.norm, st.opt, st.sched, st.scaler, st.stopper
        info = ds.info
        history: list[dict] = []
        start_epoch, train_seconds = 0, 0.0
        created_at = utc_now()

        if last_path.is_file():  # resume
            ck = load_checkpoint(last_path, map_location=self.device)
            model.load_state_dict(ck["model_state"])
            opt.load_state_dict(ck["optimizer"])
            if sched is not None and ck.get("scheduler") is not None:
                sched.load_state_dict(ck["scheduler"])
            scaler.load_state_dict(ck["scaler"])
            stopper = EarlyStopping(**ck["early_stopping"])
            history, start_epoch = ck["history"], ck["epoch"] + 1
            train_seconds, created_at = ck["train_seconds"], ck["created_at"]
            tqdm.write(f"{cfg.run_id}: resuming from epoch {start_epoch + 1}/{cfg.epochs} "
                       f"({start_epoch} done, saved in {last_path})", file=sys.stderr)

        stop_reason = "epoch_budget"
        diverged_msg = None
        for epoch in range(start_epoch, cfg.epochs):
            if history and stopper.should_stop:
                stop_reason = "converged"
                break
            t0, cpu0 = time.perf_counter(), time.process_time()
            train_loss, train_acc, ok = self.train_epoch(st, epoch)
            if not ok:
                stop_reason, diverged_msg = "diverged", f"loss became {train_loss} at epoch {epoch + 1}"
                break
            val_scores = predict(model, ds["val"], norm, self.device, cfg.eval_batch_size, cfg.precision,
                                 cfg.channels_last)
            if not np.isfinite(val_scores).all():  # finite (clipped) loss, but the weights blew up
                stop_reason, diverged_msg = "diverged", f"validation outputs became non-finite at epoch {epoch + 1}"
                break
            y_val = ds["val"].labels.numpy()
            val_m = classification_metrics(y_val, val_scores)
            val_loss = float(F.nll_loss(torch.log(torch.from_numpy(val_scores).clamp_min(1e-12)),
                                        torch.from_numpy(y_val)))
            monitored = {"val_acc": val_m["acc"], "val_loss": val_loss, "val_auc": val_m["auc"]}[cfg.monitor]
            if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                sched.step(monitored)
            seconds = time.perf_counter() - t0
            train_seconds += seconds
            row = {"epoch": epoch + 1, "train_loss": train_loss, "train_acc": train_acc, "val_loss": val_loss,
                   "val_acc": val_m["acc"], "val_auc": val_m["auc"], "val_f1_macro": val_m["f1_macro"],
                   "lr": opt.param_groups[0]["lr"], "epoch_seconds": round(seconds, 3),
                   # wall time on a shared machine is no measurement: its CPU time and the load say why
                   "cpu_seconds": round(time.process_time() - cpu0, 3), "load_avg": _load_avg()}
            history.append(row)
            if stopper.update(monitored, epoch + 1):
                save_checkpoint(best_path, self._model_ckpt(model, norm, info, epoch + 1))
            state = self._model_ckpt(model, norm, info, epoch)
            state.update(optimizer=opt.state_dict(), scheduler=sched.state_dict() if sched is not None else None,
                         scaler=scaler.state_dict(), early_stopping=vars(stopper).copy(), history=history,
                         train_seconds=train_seconds, created_at=created_at)
            save_checkpoint(last_path, state)
            if self.progress:
                tqdm.write(f"{cfg.model} s{cfg.seed} epoch {epoch + 1}/{cfg.epochs}: loss {train_loss:.4f} "
                           f"acc {train_acc:.4f} | val loss {val_loss:.4f} acc {val_m['acc']:.4f} "
                           f"auc {val_m['auc']:.4f} | {seconds:.1f}s")
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, row)
        else:
            if stopper.should_stop:
                stop_reason = "converged"

        record = self._finish(model, ds, info, stopper, history, stop_reason, train_seconds, created_at)
        # The new record is written: an old run set aside by --force (this call's, or one whose
        # retrain was interrupted and then resumed without --force) can go.
        shutil.rmtree(self.run_dir / REPLACED_DIR, ignore_errors=True)
        if diverged_msg:
            raise TrainingDiverged(f"{cfg.model} diverged: {diverged_msg}; the run is recorded as diverged. "
                                   f"{divergence_hint(cfg)}")
        return record

    def _train_epoch(self, model, batches, norm, opt, sched, scaler, weight, gen, epoch) -> tuple[float, float, bool]:
        cfg = self.cfg
        model.train()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        seen = 0
        bar = tqdm(batches(gen), total=len(batches), desc=f"{cfg.model} e{epoch + 1}", leave=False,
                   disable=not self.progress or None, unit="batch")
        shown = not bar.disable
        for i, (xb, yb) in enumerate(bar):
            x = xb.float().div_(255)
            if cfg.augment:
                x = augment_batch(x, gen, color_jitter=cfg.color_jitter if x.shape[1] == 3 else 0.0)
            x = norm.normalize(x)
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(self.device, cfg.precision):
                logits, aux = model_outputs(model, x)
                loss = F.cross_entropy(logits.float(), yb, weight=weight, label_smoothing=cfg.label_smoothing)
                if aux is not None:
                    loss = loss + aux.float()
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.grad_clip:
                scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(opt)
            scaler.update()
            if sched is not None and not isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                sched.step()
            loss_sum += loss.detach() * len(yb)
            correct += (logits.argmax(1) == yb).sum()
            seen += len(yb)
            if shown and i % POSTFIX_EVERY == 0:  # a host sync: only for a bar someone watches
                value = loss.item()
                if not math.isfinite(value):
                    return value, float("nan"), False
                bar.set_postfix(loss=f"{value:.3f}", acc=f"{float(correct) / seen:.3f}")
        mean_loss = float(loss_sum) / max(seen, 1)  # the epoch's one host sync (a NaN step shows here too)
        if not math.isfinite(mean_loss):
            return mean_loss, float("nan"), False
        return mean_loss, float(correct) / max(seen, 1), True

    def _model_ckpt(self, model: nn.Module, norm: Normalizer, info, epoch: int) -> dict[str, Any]:
        return {"model": self.cfg.model, "model_kwargs": dict(self.cfg.model_kwargs), "in_channels": info.n_channels,
                "num_classes": info.n_classes, "normalizer": {"mean": list(norm.mean), "std": list(norm.std)},
                "model_state": {k: v.detach().clone() for k, v in model.state_dict().items()}, "epoch": epoch,
                "config": self.cfg.as_dict()}

    def _finish(self, model, ds: MedMNISTData, info, stopper: EarlyStopping, history, stop_reason,
                train_seconds, created_at) -> dict[str, Any]:
        """Evaluate the best-on-validation checkpoint on val and test; write the record."""
        cfg = self.cfg
        best_path = self.run_dir / "best.pt"
        val_m = test_m = test_tta = None
        artifacts: dict[str, str] = {}
        predict_time: dict[str, float] = {}
        if best_path.is_file():
            best = load_checkpoint(best_path, map_location=self.device)
            model.load_state_dict(best["model_state"])
            ck_norm = Normalizer(**{k: tuple(v) for k, v in best["normalizer"].items()})  # what the weights saw
            scores = {}  # artifacts key -> (y_true, y_score): val and test, plain and 8-view TTA
            t_pred, cpu_pred = time.perf_counter(), time.process_time()
            for split in ("val", "test"):
                y = ds[split].labels.numpy()
                plain, tta = predict_with_tta(model, ds[split], ck_norm, self.device, cfg.eval_batch_size,
                                              cfg.precision, cfg.channels_last)
                scores[f"{split}_predictions"], scores[f"{split}_predictions_tta"] = (y, plain), (y, tta)
            val_m = classification_metrics(*scores["val_predictions"], info.class_names)
            y_test, test_scores = scores["test_predictions"]
            test_m = classification_metrics(y_test, test_scores, info.class_names)
            test_m["ci95"] = bootstrap_ci(y_test, test_scores, n_boot=self.n_boot, seed=cfg.seed)
            predict_time = {"predict_seconds": round(time.perf_counter() - t_pred, 2),
                            "predict_cpu_seconds": round(time.process_time() - cpu_pred, 2)}
            tta_m = classification_metrics(*scores["test_predictions_tta"], info.class_names)
            test_tta = {k: tta_m[k] for k in ("n", "acc", "auc", "f1_macro")}
            for key, (y, s) in scores.items():
                save_predictions(self.run_dir / PREDICTION_FILES[key], y, s)
            # "predictions" is the test file under its old key, which older readers use.
            artifacts = {"best": "best.pt", "last": "last.pt", "predictions": PREDICTION_FILES["test_predictions"],
                         **{k: PREDICTION_FILES[k] for k in scores}}
        mi = get_model_info(cfg.model)
        record = {
            "kind": "train",
            "run_id": cfg.run_id,
            "status": "diverged" if stop_reason == "diverged" else "finished",
            "model": cfg.model,
            "model_info": {k: v for k, v in mi.as_dict().items() if k != "recipe"},
            "dataset": cfg.dataset,
            "size": cfg.size,
            "in_channels": info.n_channels,
            "num_classes": info.n_classes,
            "seed": cfg.seed,
            "config": cfg.as_dict(),
            "config_hash": cfg.hash(),
            "env": environment(self.device),
            "data": {"path": str(ds.path), "md5": ds.md5_verdict, "n_train": len(self._train_split(ds)),
                     "n_val": len(ds["val"]), "n_test": len(ds["test"])},
            "created_at": created_at,
            "finished_at": utc_now(),
            "params": count_params(model),
            "epochs_run": len(history),
            "best_epoch": stopper.best_epoch,
            "best_val": None if math.isnan(stopper.best) else stopper.best,
            "stop_reason": stop_reason,
            "train_seconds": round(train_seconds, 2),
            "resources": _resources(history, predict_time),
            "history": history,
            "val": val_m,
            "test": test_m,
            "test_tta": test_tta,
            "artifacts": artifacts,
        }
        annotate(record)  # converged, learned_nothing: docs/ARCHITECTURE.md, bloodbench/verdicts.py
        self.store.write(record)
        return record


def _load_avg() -> float | None:
    """The 1-minute load average (None where the OS has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _resources(history: list[dict], predict_time: dict[str, float]) -> dict[str, Any]:
    """Process CPU seconds and the load the run shared the machine with (epochs before these fields are left out)."""
    cpu = [h["cpu_seconds"] for h in history if h.get("cpu_seconds") is not None]
    load = [h["load_avg"] for h in history if h.get("load_avg") is not None]
    return {"cpu_seconds": round(sum(cpu), 2) if cpu else None, "epochs_measured": len(cpu),
            "load_avg_mean": round(sum(load) / len(load), 2) if load else None,
            "load_avg_max": max(load) if load else None, "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), **predict_time}


def train(model: str, results: str | None = None, data_dir: str | None = None, force: bool = False,
          progress: bool = True, verify: bool = True, **options: Any) -> dict[str, Any]:
    """Convenience wrapper: ``train("baseline_cnn", seed=1, epochs=30)``."""
    cfg = TrainConfig.build(model, **options)
    return Trainer(cfg, results=results, data_dir=data_dir, verify=verify, progress=progress).fit(force=force)
