"""The end of a run: the best-on-validation checkpoint evaluated on val and test (plain and
8-view TTA), its predictions saved beside the record, and the train record itself."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bloodbench.config import TrainConfig
from bloodbench.data import MedMNISTData, Normalizer
from bloodbench.models import count_params, get_model_info
from bloodbench.runtime.envinfo import environment
from bloodbench.stats.metrics import bootstrap_ci, classification_metrics
from bloodbench.store.predictions import PREDICTION_FILES, save_predictions
from bloodbench.store.results import utc_now
from bloodbench.train.checkpoint import load_checkpoint
from bloodbench.train.predict import predict_with_tta
from bloodbench.train.stopping import EarlyStopping


@dataclass
class Evaluation:
    """What the best checkpoint scored; all None (and no files) for a run that never saved one."""

    val: dict | None = None
    test: dict | None = None
    test_tta: dict | None = None
    artifacts: dict[str, str] = field(default_factory=dict)
    predict_time: dict[str, float] = field(default_factory=dict)


def evaluate_best(model: nn.Module, ds: MedMNISTData, run_dir: Path, device: torch.device, cfg: TrainConfig,
                  n_boot: int) -> Evaluation:
    """Load ``run_dir/best.pt`` into ``model``, predict val and test (one 8-view pass gives plain
    and TTA), save the four prediction files and score them; the test CI is ``bootstrap_ci``."""
    best_path = run_dir / "best.pt"
    if not best_path.is_file():
        return Evaluation()
    info = ds.info
    best = load_checkpoint(best_path, map_location=device)
    model.load_state_dict(best["model_state"])
    ck_norm = Normalizer(**{k: tuple(v) for k, v in best["normalizer"].items()})  # what the weights saw
    scores = {}  # artifacts key -> (y_true, y_score): val and test, plain and 8-view TTA
    t_pred, cpu_pred = time.perf_counter(), time.process_time()
    for split in ("val", "test"):
        y = ds[split].labels.numpy()
        plain, tta = predict_with_tta(model, ds[split], ck_norm, device, cfg.eval_batch_size, cfg.precision,
                                      cfg.channels_last)
        scores[f"{split}_predictions"], scores[f"{split}_predictions_tta"] = (y, plain), (y, tta)
    val_m = classification_metrics(*scores["val_predictions"], info.class_names)
    y_test, test_scores = scores["test_predictions"]
    test_m = classification_metrics(y_test, test_scores, info.class_names)
    test_m["ci95"] = bootstrap_ci(y_test, test_scores, n_boot=n_boot, seed=cfg.seed)
    predict_time = {"predict_seconds": round(time.perf_counter() - t_pred, 2),
                    "predict_cpu_seconds": round(time.process_time() - cpu_pred, 2)}
    tta_m = classification_metrics(*scores["test_predictions_tta"], info.class_names)
    for key, (y, s) in scores.items():
        save_predictions(run_dir / PREDICTION_FILES[key], y, s)
    # "predictions" is the test file under its old key, which older readers use.
    artifacts = {"best": "best.pt", "last": "last.pt", "predictions": PREDICTION_FILES["test_predictions"],
                 **{k: PREDICTION_FILES[k] for k in scores}}
    return Evaluation(val_m, test_m, {k: tta_m[k] for k in ("n", "acc", "auc", "f1_macro")}, artifacts,
                      predict_time)


def load_avg() -> float | None:
    """The 1-minute load average (None where the OS has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def resources(history: list[dict], predict_time: dict[str, float]) -> dict[str, Any]:
    """Process CPU seconds and the load the run shared the machine with (epochs before these fields are left out)."""
    cpu = [h["cpu_seconds"] for h in history if h.get("cpu_seconds") is not None]
    load = [h["load_avg"] for h in history if h.get("load_avg") is not None]
    return {"cpu_seconds": round(sum(cpu), 2) if cpu else None, "epochs_measured": len(cpu),
            "load_avg_mean": round(sum(load) / len(load), 2) if load else None,
            "load_avg_max": max(load) if load else None, "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), **predict_time}


def train_record(cfg: TrainConfig, model: nn.Module, ds: MedMNISTData, n_train: int, device: torch.device,
                 stopper: EarlyStopping, history: list[dict], stop_reason: str, train_seconds: float,
                 created_at: str, ev: Evaluation) -> dict[str, Any]:
    """The train record (docs/ARCHITECTURE.md, "Train record"), verdicts not yet added."""
    info = ds.info
    mi = get_model_info(cfg.model)
    return {
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
        "env": environment(device),
        "data": {"path": str(ds.path), "md5": ds.md5_verdict, "n_train": n_train,
                 "n_val": len(ds["val"]), "n_test": len(ds["test"])},
        "created_at": created_at,
        "finished_at": utc_now(),
        "params": count_params(model),
        "epochs_run": len(history),
        "best_epoch": stopper.best_epoch,
        "best_val": None if math.isnan(stopper.best) else stopper.best,
        "stop_reason": stop_reason,
        "train_seconds": round(train_seconds, 2),
        "resources": resources(history, ev.predict_time),
        "history": history,
        "val": ev.val,
        "test": ev.test,
        "test_tta": ev.test_tta,
        "artifacts": ev.artifacts,
    }
