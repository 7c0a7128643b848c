"""``profile_model``: one registry model -> counts + latency + throughput -> one profile record.

The single entry point used by ``bloodbench profile``, ``bloodbench run`` and the benchmarks,
so every profile figure in the results store was measured the same way.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from bloodbench.data import DatasetInfo, dataset_info
from bloodbench.envinfo import device_name, environment, resolve_device
from bloodbench.models import create_model, get_model_info
from bloodbench.profile.counting import cost_breakdown
from bloodbench.profile.memory import peak_forward_memory
from bloodbench.profile.timing import (
    DEFAULT_BATCH_SIZES,
    LATENCY_KEYS,
    check_precision,
    cpu_threads,
    measure_latency,
    measure_throughput,
    peak_throughput,
    prepare_model,
    unless_oom,
)
from bloodbench.results import ResultsStore, config_hash, utc_now

#: Fields of a profile record besides the common ones (docs/ARCHITECTURE.md, "Profile record").
PROFILE_FIELDS = (
    "device", "device_name", "precision", "channels_last", "compile", "params", "trainable_params",
    "model_size_mb", "macs", "flops", "macs_flopcounter", "macs_disagreement", "activations",
    "macs_disagreement_flagged", "peak_memory_mb", "peak_memory_method", "unsupported_ops", "top_modules",
    "latency", "throughput", "peak_throughput", "oom_stages",
)
COMMON_FIELDS = (
    "schema", "kind", "run_id", "model", "model_info", "dataset", "size", "in_channels", "num_classes",
    "config", "config_hash", "env", "created_at", "written_at",
)


def profile_config(dataset: str = "bloodmnist", size: int = 28, device: str | torch.device = "cpu",
                   precision: str = "fp32", channels_last: bool = False, compile: bool = False,
                   batch_size: int = 1, batch_sizes: Sequence[int] | None = None, warmup: int = 10,
                   iters: int = 50, threads: int | None = None, min_time_s: float = 0.25) -> dict[str, Any]:
    """The options that identify a profile; hashed into its run id.

    ``device_name`` is part of it because a profile is a property of the hardware: the same
    options on another GPU/CPU are another measurement, not a duplicate to overwrite.
    """
    device = resolve_device(str(device)) if not isinstance(device, torch.device) else device
    if batch_sizes is None:
        batch_sizes = DEFAULT_BATCH_SIZES["cuda" if device.type == "cuda" else "cpu"]
    return {
        "dataset": dataset, "size": int(size), "device": device.type, "device_name": device_name(device),
        "precision": precision, "channels_last": bool(channels_last), "compile": bool(compile),
        "batch_size": int(batch_size), "batch_sizes": sorted(set(int(b) for b in batch_sizes)),
        "warmup": int(warmup), "iters": int(iters),
        "threads": (threads or torch.get_num_threads()) if device.type == "cpu" else None,
        "min_time_s": float(min_time_s),
    }


def build_model(name: str, dataset: str = "bloodmnist", size: int = 28,
                device: str | torch.device = "cpu") -> tuple[nn.Module, DatasetInfo]:
    """Registry model sized for ``dataset`` at ``size`` px, seeded and in eval mode.

    Channels and classes come from ``dataset_info`` (no data file needed); the fixed seed makes
    every profile and benchmark time the same weights.
    """
    ds = dataset_info(dataset, size)
    torch.manual_seed(0)
    return create_model(name, in_channels=ds.n_channels, num_classes=ds.n_classes).to(device).eval(), ds


def _latency_after_oom(batch_size: int, threads: int | None) -> dict[str, Any]:
    """The latency block of a setting that ran out of memory: same keys, no figures."""
    return {**dict.fromkeys(LATENCY_KEYS), "batch_size": batch_size, "threads": threads}


def profile_run_id(model: str, config: dict[str, Any]) -> str:
    return (f"{model}-{config['dataset']}-{config['size']}-{config['device']}-{config['precision']}-"
            f"{config_hash(config)}")


def profile_model(name: str, dataset: str = "bloodmnist", size: int = 28, device: str | torch.device = "cpu",
                  precision: str = "fp32", channels_last: bool = False, compile: bool = False,
                  batch_size: int = 1, batch_sizes: Sequence[int] | None = None, warmup: int = 10,
                  iters: int = 50, threads: int | None = None, min_time_s: float = 0.25,
                  results: str | Path | None = None, save: bool = True, trace: bool = False,
                  trace_dir: str | Path | None = None, progress: Callable[[str], None] | None = None,
                  ) -> dict[str, Any]:
    """Profile registry model ``name`` and (if ``save``) write the record to the results store.

    Channels and classes come from ``dataset_info`` (no data file needed). MACs/FLOPs are per
    image (batch 1); peak memory and latency are at ``batch_size``; throughput sweeps
    ``batch_sizes``. ``progress`` is called with a short stage name before each stage.
    A CUDA out-of-memory error in the memory, latency or throughput step is recorded (stage
    names in ``oom_stages``, figures ``None``) instead of losing the whole profile.
    """
    info = get_model_info(name)  # unknown model: BloodbenchError before any work
    dev = resolve_device(str(device)) if not isinstance(device, torch.device) else device
    check_precision(precision, dev)
    step = progress or (lambda stage: None)
    created_at = utc_now()
    with cpu_threads(threads if dev.type == "cpu" else None) as nthreads:
        config = profile_config(dataset, size, dev, precision, channels_last, compile, batch_size, batch_sizes,
                                warmup, iters, threads, min_time_s)
        model, ds = build_model(name, dataset, size, dev)
        shape = (batch_size, ds.n_channels, size, size)
        step("counting")
        costs = cost_breakdown(model, (1, ds.n_channels, size, size), memory=False)
        step("memory")
        memory, memory_oom = unless_oom(lambda: peak_forward_memory(model, shape, precision, channels_last), dev)
        peak_mb, peak_method = memory or (None, None)
        prepared = prepare_model(model, dev, channels_last, compile)
        step("latency")
        lat, latency_oom = unless_oom(lambda: measure_latency(prepared, shape, dev, precision, warmup, iters,
                                                              channels_last, compile, threads), dev)
        step("throughput")
        thr = measure_throughput(prepared, size, ds.n_channels, config["batch_sizes"], dev, precision,
                                 channels_last, compile, threads, min_time_s=min_time_s)
        if trace:
            step("trace")
            from bloodbench.profile.trace import DEFAULT_TRACE_DIR, trace_model

            trace_model(model, shape, trace_dir or DEFAULT_TRACE_DIR, name, dev, precision, channels_last, compile)
        env = environment(dev)
    latency = lat.as_dict() if lat is not None else _latency_after_oom(batch_size, nthreads)
    oom_stages = [stage for stage, oom in (("memory", memory_oom), ("latency", latency_oom),
                                           ("throughput", any(r["oom"] for r in thr))) if oom]
    record: dict[str, Any] = {
        "kind": "profile",
        "run_id": profile_run_id(name, config),
        "model": name,
        "model_info": info.as_dict(),
        "dataset": dataset,
        "size": size,
        "in_channels": ds.n_channels,
        "num_classes": ds.n_classes,
        "config": config,
        "config_hash": config_hash(config),
        "env": env,
        "created_at": created_at,
        "device": dev.type,
        "device_name": env["device_name"],
        "precision": precision,
        "channels_last": bool(channels_last),
        "compile": bool(compile),
        "params": costs.params,
        "trainable_params": costs.trainable_params,
        "model_size_mb": costs.model_size_mb,
        "macs": costs.macs,
        "flops": costs.flops,
        "macs_flopcounter": costs.macs_flopcounter,
        "macs_disagreement": costs.macs_disagreement,
        "macs_disagreement_flagged": costs.disagreement_flagged,
        "activations": costs.activations,
        "peak_memory_mb": peak_mb,
        "peak_memory_method": peak_method,
        "unsupported_ops": costs.unsupported_ops,
        "top_modules": costs.top_modules,
        "latency": {k: latency[k] for k in LATENCY_KEYS},
        "throughput": thr,
        "peak_throughput": peak_throughput(thr),
        "oom_stages": oom_stages,
    }
    del model, prepared
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    if save:
        ResultsStore(results).write(record)
    return record
