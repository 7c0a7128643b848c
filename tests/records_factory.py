"""Realistic train / profile records and pytest-benchmark files, made in tests.

The leaderboard and report are built against the documented record schemas
(docs/ARCHITECTURE.md), not against whatever the trainer or profiler happen to write
today, so these helpers fill every documented field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from medmnist.info import INFO

from bloodbench.config import ProfileConfig
from bloodbench.store.results import ResultsStore, config_hash

# The real names, as the trainer records them: one is 70 characters long, and plots and
# tables must cope with it.
CLASS_NAMES = [name for _, name in sorted(INFO["bloodmnist"]["label"].items(), key=lambda kv: int(kv[0]))]
TEST_SUPPORT = [122, 312, 155, 290, 122, 142, 333, 235]  # BloodMNIST test split, halved

GPU = "NVIDIA H100 80GB HBM3"
CPU = "Intel(R) Xeon(R) Platinum 8480+"


def env(device: str = "cuda", created: str = "2025-01-10") -> dict[str, Any]:
    return {
        "device": device, "device_name": GPU if device == "cuda" else f"{CPU} (2 threads)",
        "cpu_name": CPU, "cpu_threads": 2, "torch": "2.5.1", "cuda": "12.4" if device == "cuda" else None,
        "cudnn": 90100 if device == "cuda" else None, "python": "3.11.9", "platform": "Linux-6.8-x86_64",
        "hostname": "bench", "git_commit": "abc1234def", "bloodbench": "0.1.0", "pid": 1,
    }


def plugin_model(model: str, family: str = "test") -> str:
    """Register a made-up model name at runtime (the readers refuse records of unregistered models);
    conftest.py restores the registry after each test module. It builds as baseline_cnn and, its builder
    being bloodbench's own, is not footnoted as a plug-in: the tables read as they did for made-up names."""
    from bloodbench.models import get_model_info, list_models, register_model

    if model not in list_models():
        register_model(model, family=family, description=f"{model}: a made-up test model",
                       origin="tests/records_factory.py")(get_model_info("baseline_cnn").builder)
    return model


def model_info(model: str, family: str = "test") -> dict[str, Any]:
    return {"name": model, "family": family, "description": f"{model}: a made-up test model",
            "origin": "tests/records_factory.py", "recipe": {}, "target_layer": None}


def _confusion(acc: float, rng: np.random.Generator) -> np.ndarray:
    """A confusion matrix whose diagonal gives about ``acc``; errors go mostly to neighbours."""
    k = len(TEST_SUPPORT)
    cm = np.zeros((k, k), dtype=int)
    for i, n in enumerate(TEST_SUPPORT):
        right = int(round(n * min(1.0, acc + rng.uniform(-0.04, 0.04))))
        right = max(0, min(n, right))
        cm[i, i] = right
        wrong = n - right
        cm[i, (i + 1) % k] += wrong - wrong // 3
        cm[i, (i + 3) % k] += wrong // 3
    return cm


def _metrics(acc: float, f1: float, auc: float, rng: np.random.Generator) -> dict[str, Any]:
    cm = _confusion(acc, rng)
    tp = np.diag(cm).astype(float)
    precision = tp / np.maximum(cm.sum(0), 1)
    recall = tp / np.maximum(cm.sum(1), 1)
    f1s = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return {
        "acc": acc, "auc": auc, "f1_macro": f1, "precision_macro": float(precision.mean()),
        "recall_macro": float(recall.mean()), "f1_weighted": f1,
        "per_class": {"precision": precision.round(4).tolist(), "recall": recall.round(4).tolist(),
                      "f1": f1s.round(4).tolist(), "support": list(TEST_SUPPORT)},
        "class_names": list(CLASS_NAMES), "confusion_matrix": cm.tolist(), "n": int(cm.sum()),
        "ci95": {"acc": [acc - 0.008, acc + 0.008], "f1_macro": [f1 - 0.01, f1 + 0.01]},
    }


def _history(epochs: int, final_acc: float, rng: np.random.Generator) -> list[dict[str, Any]]:
    hist = []
    for e in range(1, epochs + 1):
        t = e / epochs
        hist.append({
            "epoch": e, "train_loss": round(1.9 * np.exp(-3 * t) + 0.1 + rng.uniform(0, 0.02), 4),
            "train_acc": round(min(0.999, final_acc * (1 - 0.6 * np.exp(-4 * t)) + 0.02), 4),
            "val_loss": round(1.8 * np.exp(-2.5 * t) + 0.2 + rng.uniform(0, 0.03), 4),
            "val_acc": round(final_acc * (1 - 0.55 * np.exp(-4 * t)) + rng.uniform(-0.005, 0.005), 4),
            "val_auc": round(0.9 + 0.09 * t, 4), "lr": round(1e-3 * 0.5 * (1 + np.cos(np.pi * t)), 6),
            "epoch_seconds": 10.0,
        })
    return hist


def train_record(model: str, seed: int, acc: float, *, f1: float | None = None, auc: float | None = None,
                 dataset: str = "bloodmnist", size: int = 28, status: str = "finished",
                 stop_reason: str = "converged", epochs: int = 12, train_seconds: float = 120.0,
                 params: int = 100_000, family: str = "test", device: str = "cuda",
                 created_at: str = "2025-01-10T12:00:00+00:00", lr: float = 1e-3) -> dict[str, Any]:
    """A training record with every documented field; metrics are exactly those given.

    ``epochs`` is how many ran; the recipe (config) is the same for every seed unless ``lr`` differs.
    """
    plugin_model(model, family)
    rng = np.random.default_rng(seed * 1000 + sum(map(ord, model)))
    f1 = acc - 0.01 if f1 is None else f1
    auc = min(0.999, acc + 0.05) if auc is None else auc
    config = {"model": model, "dataset": dataset, "size": size, "seed": seed, "lr": lr, "epochs": 40}
    chash = config_hash(config)
    test = _metrics(acc, f1, auc, rng)
    val = _metrics(acc + 0.005, f1 + 0.005, auc, rng)
    return {
        "schema": 1, "kind": "train", "run_id": f"{model}-{dataset}-{size}-s{seed}-{chash}", "model": model,
        "model_info": model_info(model, family), "dataset": dataset, "size": size, "in_channels": 3,
        "num_classes": 8, "config": config, "config_hash": chash, "env": env(device),
        "created_at": created_at, "written_at": created_at,
        "seed": seed, "status": status, "stop_reason": stop_reason if status == "finished" else None,
        "epochs_run": epochs, "best_epoch": max(1, epochs - 2), "train_seconds": train_seconds, "params": params,
        "history": _history(epochs, acc, rng), "val": val, "test": test,
        "data": {"path": "bloodmnist.npz", "md5": "ok", "n_train": 11959, "n_val": 1712, "n_test": 3421},
        # no prediction file: a record names only the files its run wrote (tests that write one name it)
        "artifacts": {"best": "best.pt", "last": "last.pt"},
    }


def profile_record(model: str, *, macs: int, p50: float, throughput: float, params: int = 100_000,
                   device: str = "cuda", precision: str = "fp32", dataset: str = "bloodmnist", size: int = 28,
                   peak_memory_mb: float = 50.0, device_name: str | None = None,
                   created_at: str = "2025-01-11T09:00:00+00:00") -> dict[str, Any]:
    """A profiling record with every documented field."""
    plugin_model(model)
    setting = ProfileConfig.from_dict({"dataset": dataset, "size": size, "device": device, "precision": precision})
    config, chash = setting.as_dict(), setting.hash()
    e = env(device)
    return {
        "schema": 1, "kind": "profile", "run_id": setting.run_id(model),
        "model": model, "model_info": model_info(model), "dataset": dataset, "size": size, "in_channels": 3,
        "num_classes": 8, "config": config, "config_hash": chash, "env": e,
        "created_at": created_at, "written_at": created_at,
        "device": device, "device_name": device_name or e["device_name"], "precision": precision,
        "channels_last": False, "compile": False, "params": params, "trainable_params": params,
        "model_size_mb": params * 4 / 2**20, "macs": macs, "flops": 2 * macs, "macs_flopcounter": macs,
        "macs_disagreement": 0.0, "activations": macs // 10, "peak_memory_mb": peak_memory_mb,
        "peak_memory_method": "torch.cuda.max_memory_allocated" if device == "cuda" else "tracemalloc",
        "unsupported_ops": {},
        "top_modules": [{"module": "features.0", "macs": int(macs * 0.4)},
                        {"module": "features.1", "macs": int(macs * 0.3)},
                        {"module": "features.2", "macs": int(macs * 0.2)},
                        {"module": "head.fc", "macs": int(macs * 0.1)}],
        "latency": {"p50_ms": p50, "p90_ms": p50 * 1.1, "p99_ms": p50 * 1.3, "mean_ms": p50 * 1.05,
                    "std_ms": p50 * 0.05, "n": 200, "batch_size": 1, "threads": 2},
        "throughput": [{"batch_size": 1, "images_per_s": 1000 / p50, "oom": False},
                       {"batch_size": 256, "images_per_s": throughput, "oom": False}],
        "peak_throughput": throughput,
    }


def write_store(root: Path, records: list[dict[str, Any]]) -> ResultsStore:
    store = ResultsStore(root)
    for rec in records:
        store.write(dict(rec))
    return store


def benchmark_entry(model: str, *, batch_size: int, p50: float, images_per_s: float, macs: int,
                    params: int = 100_000, device: str = "cuda", precision: str = "fp32", kind: str = "inference",
                    dataset: str = "bloodmnist", size: int = 28) -> dict[str, Any]:
    plugin_model(model)
    return {
        "group": kind, "name": f"test_{kind}[{model}-{device}-bs{batch_size}]", "fullname": "benchmarks/x.py::t",
        "params": {"model": model, "batch_size": batch_size},
        "stats": {"min": p50 / 1e3 * 0.9, "max": p50 / 1e3 * 1.5, "mean": p50 / 1e3, "stddev": 1e-6,
                  "median": p50 / 1e3, "rounds": 50, "iterations": 1, "ops": 1e3 / p50},
        "extra_info": {"kind": kind, "model": model, "dataset": dataset, "size": size, "in_channels": 3,
                       "num_classes": 8, "device": device, "device_name": GPU if device == "cuda" else f"{CPU} (2 threads)",
                       "precision": precision, "batch_size": batch_size, "params": params, "macs": macs,
                       "flops": 2 * macs, "p50_ms": p50, "p90_ms": p50 * 1.1, "p99_ms": p50 * 1.2,
                       "images_per_s": images_per_s},
    }


def write_benchmark_json(path: Path, entries: list[dict[str, Any]], when: str = "2025-01-12T08:00:00") -> Path:
    data = {
        "machine_info": {"node": "bench", "processor": "x86_64", "machine": "x86_64", "python_version": "3.11.9",
                         "cpu": {"brand_raw": CPU, "count": 2}, "gpu": GPU,
                         # the marks benchmarks/conftest.py adds: without them a file is foreign
                         "torch": "2.5.1", "torch_threads": 1, "bb_device": "auto", "bb_full": False,
                         "git_commit": "abc1234def"},
        "commit_info": {"id": "abc1234def", "dirty": False, "branch": "main"},
        "benchmarks": entries, "datetime": when, "version": "4.0.0",
    }
    path.write_text(json.dumps(data, indent=1))
    return path


def row(board, model: str) -> dict:
    """One model's row of a built leaderboard."""
    return next(rec for rec in board.to_records() if rec["model"] == model)


THREE_SEEDS_ACCS = (0.9676, 0.9691, 0.9662)


def three_seed_store(root: Path) -> Path:
    """Model ``m``: three finished seeds (``THREE_SEEDS_ACCS``) and a CPU profile."""
    recs = [train_record("m", s, acc) for s, acc in enumerate(THREE_SEEDS_ACCS)]
    recs.append(profile_record("m", device="cpu", macs=21_000_000, p50=22.0, throughput=126))
    write_store(root, recs)
    return root
