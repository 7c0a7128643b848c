"""The training loop: early stopping on the validation metric, resumable checkpoints,
evaluation of the best-on-validation checkpoint on test, one record in the store.

Everything in the hot loop is a tensor op on the training device: the split lives there as
uint8, batches are index slices, normalisation and augmentation are whole-batch ops. Loss and
accuracy accumulate on the device and are read once per epoch (no per-step ``.item()`` host
sync; only a visible progress bar reads them every :data:`POSTFIX_EVERY` steps). The backend
flags training wants (cudnn autotune, TF32) hold for ``fit`` only, never for the process after.

The parts, by job: ``step.py`` (one optimiser step), ``optim.py`` (optimiser, schedule),
``stopping.py`` (early stopping), ``predict.py`` (probabilities over a split), ``rundir.py``
(``--force``), ``finish.py`` (evaluation of the best checkpoint, the record).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from bloodbench.config import TrainConfig
from bloodbench.data import (
    MedMNISTData,
    Normalizer,
    TensorBatches,
    augment_batch,
    class_weights,
    epoch_generator,
    load_dataset,
)
from bloodbench.data.medmnist_data import Split
from bloodbench.errors import BloodbenchError
from bloodbench.models import create_model
from bloodbench.runtime.backend import backend_flags
from bloodbench.runtime.envinfo import resolve_device, seed_everything
from bloodbench.runtime.precision import check_precision
from bloodbench.stats.metrics import N_RESAMPLES, classification_metrics
from bloodbench.store.results import ResultsStore, utc_now
from bloodbench.store.schema import check_written
from bloodbench.store.verdicts import annotate
from bloodbench.train.checkpoint import load_checkpoint, save_checkpoint
from bloodbench.train.finish import evaluate_best, load_avg, train_record
from bloodbench.train.optim import build_optimizer, build_scheduler, steps_per_batch
from bloodbench.train.predict import predict
from bloodbench.train.rundir import drop_replaced, set_aside_old_run
from bloodbench.train.step import train_step
from bloodbench.train.stopping import EarlyStopping

EpochCallback = Callable[[int, dict], None]
#: Steps between progress-bar loss/accuracy updates (each one is a host sync; only when the bar shows).
POSTFIX_EVERY = 50


class TrainingDiverged(BloodbenchError):
    """The loss became NaN/inf; the record is written with status ``diverged`` first."""


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


@dataclass
class Progress:
    """Where a run stands between epochs: what ``last.pt`` saves and a resume restores."""

    history: list[dict]
    start_epoch: int = 0
    train_seconds: float = 0.0
    created_at: str = ""


def divergence_hint(cfg: TrainConfig) -> str:
    """What to try after a divergence: leaving reduced precision only helps a run that used it."""
    tries = [f"lower --lr (was {cfg.lr:g})"]
    if not cfg.grad_clip:
        tries.append("enable gradient clipping, e.g. --grad-clip 5")
    if cfg.precision != "fp32":
        tries.append(f"use --precision fp32 (was {cfg.precision})")
    return "Try: " + ", or ".join(tries)


class Trainer:
    """Trains one (model, dataset, size, seed, config) run into a results store."""

    def __init__(self, cfg: TrainConfig, results: str | None = None, data_dir: str | None = None,
                 verify: bool = True, progress: bool = True, data: MedMNISTData | None = None,
                 n_boot: int = N_RESAMPLES) -> None:
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

    def setup(self) -> TrainState:
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

    def backend(self) -> contextlib.AbstractContextManager:
        """Training's backend flags on CUDA (cudnn autotune, TF32), restored on exit: a process
        that trains and then profiles (``bloodbench run``) profiles under its own flags."""
        if self.device.type != "cuda":
            return contextlib.nullcontext()
        return backend_flags(cudnn_benchmark=True, allow_tf32=True)

    def finished_record(self) -> dict[str, Any] | None:
        """This run's record if it is finished (then ``fit`` retrains nothing unless forced)."""
        return self.store.finished("train", self.cfg.run_id)

    # -- main entry --------------------------------------------------------------------
    def fit(self, force: bool = False, on_epoch_end: EpochCallback | None = None) -> dict[str, Any]:
        """Train (or resume), evaluate the best checkpoint on test, write and return the record."""
        existing = self.finished_record()
        if existing and not force:
            return existing
        self.store.ensure_writable()  # before an epoch is spent, not after
        if force:
            set_aside_old_run(self.run_dir)
        with self.backend():
            return self._fit(on_epoch_end)

    def _resume(self, st: TrainState) -> Progress:
        """Restore model, optimiser, schedule, scaler and early stopping from ``last.pt`` if there is one."""
        last_path = self.run_dir / "last.pt"
        if not last_path.is_file():
            return Progress(history=[], created_at=utc_now())
        ck = load_checkpoint(last_path, map_location=self.device)
        st.model.load_state_dict(ck["model_state"])
        st.opt.load_state_dict(ck["optimizer"])
        if st.sched is not None and ck.get("scheduler") is not None:
            st.sched.load_state_dict(ck["scheduler"])
        st.scaler.load_state_dict(ck["scaler"])
        st.stopper = EarlyStopping(**ck["early_stopping"])
        done = Progress(ck["history"], ck["epoch"] + 1, ck["train_seconds"], ck["created_at"])
        tqdm.write(f"{self.cfg.run_id}: resuming from epoch {done.start_epoch + 1}/{self.cfg.epochs} "
                   f"({done.start_epoch} done, saved in {last_path})", file=sys.stderr)
        return done

    def _fit(self, on_epoch_end: EpochCallback | None) -> dict[str, Any]:
        cfg = self.cfg
        st = self.setup()
        run = self._resume(st)
        stop_reason, diverged_msg = "epoch_budget", None
        for epoch in range(run.start_epoch, cfg.epochs):
            if run.history and st.stopper.should_stop:
                stop_reason = "converged"
                break
            row, diverged_msg = self._epoch(st, epoch, run)
            if diverged_msg:
                stop_reason = "diverged"
                break
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, row)
        else:
            if st.stopper.should_stop:
                stop_reason = "converged"

        ev = evaluate_best(st.model, st.ds, self.run_dir, self.device, cfg, self.n_boot)
        record = train_record(cfg, st.model, st.ds, len(self._train_split(st.ds)), self.device, st.stopper,
                              run.history, stop_reason, run.train_seconds, run.created_at, ev)
        annotate(record)  # converged, learned_nothing: docs/ARCHITECTURE.md, bloodbench/store/verdicts.py
        self.store.write(check_written(record, "train"))
        drop_replaced(self.run_dir)
        if diverged_msg:
            raise TrainingDiverged(f"{cfg.model} diverged: {diverged_msg}; the run is recorded as diverged. "
                                   f"{divergence_hint(cfg)}")
        return record

    def _epoch(self, st: TrainState, epoch: int, run: Progress) -> tuple[dict, str | None]:
        """Train one epoch, validate, step a plateau schedule, save the checkpoints: (history row,
        why the run diverged or None)."""
        cfg, ds = self.cfg, st.ds
        t0, cpu0 = time.perf_counter(), time.process_time()
        train_loss, train_acc, ok = self.train_epoch(st, epoch)
        if not ok:
            return {}, f"loss became {train_loss} at epoch {epoch + 1}"
        val_scores = predict(st.model, ds["val"], st.norm, self.device, cfg.eval_batch_size, cfg.precision,
                             cfg.channels_last)
        if not np.isfinite(val_scores).all():  # finite (clipped) loss, but the weights blew up
            return {}, f"validation outputs became non-finite at epoch {epoch + 1}"
        y_val = ds["val"].labels.numpy()
        val_m = classification_metrics(y_val, val_scores)
        val_loss = float(F.nll_loss(torch.log(torch.from_numpy(val_scores).clamp_min(1e-12)), torch.from_numpy(y_val)))
        monitored = {"val_acc": val_m["acc"], "val_loss": val_loss, "val_auc": val_m["auc"]}[cfg.monitor]
        if st.sched is not None and not steps_per_batch(st.sched):
            st.sched.step(monitored)
        seconds = time.perf_counter() - t0
        run.train_seconds += seconds
        row = {"epoch": epoch + 1, "train_loss": train_loss, "train_acc": train_acc, "val_loss": val_loss,
               "val_acc": val_m["acc"], "val_auc": val_m["auc"], "val_f1_macro": val_m["f1_macro"],
               "lr": st.opt.param_groups[0]["lr"], "epoch_seconds": round(seconds, 3),
               # wall time on a shared machine is no measurement: its CPU time and the load say why
               "cpu_seconds": round(time.process_time() - cpu0, 3), "load_avg": load_avg()}
        run.history.append(row)
        if st.stopper.update(monitored, epoch + 1):
            save_checkpoint(self.run_dir / "best.pt", self._model_ckpt(st.model, st.norm, ds.info, epoch + 1))
        state = self._model_ckpt(st.model, st.norm, ds.info, epoch)
        state.update(optimizer=st.opt.state_dict(), scheduler=st.sched.state_dict() if st.sched is not None else None,
                     scaler=st.scaler.state_dict(), early_stopping=vars(st.stopper).copy(), history=run.history,
                     train_seconds=run.train_seconds, created_at=run.created_at)
        save_checkpoint(self.run_dir / "last.pt", state)
        if self.progress:
            tqdm.write(f"{cfg.model} s{cfg.seed} epoch {epoch + 1}/{cfg.epochs}: loss {train_loss:.4f} "
                       f"acc {100 * train_acc:.2f} % | val loss {val_loss:.4f} acc {100 * val_m['acc']:.2f} % "
                       f"auc {val_m['auc']:.4f} | {seconds:.1f}s")
        return row, None

    def train_epoch(self, st: TrainState, epoch: int) -> tuple[float, float, bool]:
        """One pass over the training split with the (seed, epoch) stream of batches and
        augmentations: (mean loss, accuracy, finite)."""
        cfg = self.cfg
        torch.manual_seed(cfg.seed * 100_003 + epoch)  # dropout etc.: same stream on resume
        gen = epoch_generator(cfg.seed, epoch, self.device)
        model = st.step_model
        model.train()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        seen = 0
        bar = tqdm(st.batches(gen), total=len(st.batches), desc=f"{cfg.model} e{epoch + 1}", leave=False,
                   disable=not self.progress or None, unit="batch")
        shown = not bar.disable
        per_batch = steps_per_batch(st.sched)
        for i, (xb, yb) in enumerate(bar):
            x = xb.float().div_(255)
            if cfg.augment:
                x = augment_batch(x, gen, color_jitter=cfg.color_jitter if x.shape[1] == 3 else 0.0)
            x = st.norm.normalize(x)
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            loss, logits = train_step(model, x, yb, st.opt, st.scaler, self.device, cfg.precision, st.weight,
                                      cfg.label_smoothing, cfg.grad_clip)
            if per_batch:
                st.sched.step()
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


def train(model: str, results: str | None = None, data_dir: str | None = None, force: bool = False,
          progress: bool = True, verify: bool = True, **options: Any) -> dict[str, Any]:
    """Convenience wrapper: ``train("baseline_cnn", seed=1, epochs=30)``."""
    cfg = TrainConfig.build(model, **options)
    return Trainer(cfg, results=results, data_dir=data_dir, verify=verify, progress=progress).fit(force=force)
