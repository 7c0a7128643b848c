"""``profile_model``: one registry model -> counts + latency + throughput -> one profile record.

The single entry point used by ``bloodbench profile``, ``bloodbench run`` and the benchmarks,
so every profile figure in the results store was measured the same way.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from bloodbench.data import DatasetInfo, dataset_info
from bloodbench.envinfo import device_name, environment, resolve_device
from bloodbench.models import create_model, get_model_info
from bloodbench.backend import backend_flags
from bloodbench.profile.counting import cost_breakdown
from bloodbench.profile.gpu_state import gpu_state
from bloodbench.profile.graphs import check_cuda_graphs
from bloodbench.profile.memory import peak_forward_memory
from bloodbench.profile.noise import latency_warnings, machine_load
from bloodbench.choices import DEFAULT_ROUND_S
from bloodbench.profile.timing import (
    DEFAULT_BATCH_SIZES,
    DEFAULT_ROUNDS,
    DEFAULT_WARMUP_S,
    LATENCY_KEYS,
    _compiled_call,
    check_precision,
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
    "latency", "throughput", "peak_throughput", "oom_stages", "cuda_graphs", "backend",
)
COMMON_FIELDS = (
    "schema", "kind", "run_id", "model", "model_info", "dataset", "size", "in_channels", "num_classes",
    "config", "config_hash", "env", "created_at", "written_at",
)


def profile_config(dataset: str = "bloodmnist", size: int = 28, device: str | torch.device = "cpu",
                   precision: str = "fp32", channels_last: bool = False, compile: bool = False,
                   batch_size: int = 1, batch_sizes: Sequence[int] | None = None, warmup: int = 10,
                   iters: int = 20, threads: int | None = None, min_time_s: float = 0.25,
                   rounds: int = DEFAULT_ROUNDS, warmup_s: float = DEFAULT_WARMUP_S, cuda_graphs: bool = False,
                   tf32: bool = False, round_s: float = DEFAULT_ROUND_S) -> dict[str, Any]:
    """The options that identify a profile; hashed into its run id.

    ``device_name`` is part of it because a profile is a property of the hardware: the same
    options on another GPU/CPU are another measurement, not a duplicate to overwrite. So is
    ``cuda_graphs``: the launch-free figure is a setting of its own beside the eager one.
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
        "min_time_s": float(min_time_s), "rounds": int(rounds), "warmup_s": float(warmup_s),
        "cuda_graphs": bool(cuda_graphs), "tf32": bool(tf32), "round_s": float(round_s),
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
                  iters: int = 20, threads: int | None = None, min_time_s: float = 0.25,
                  results: str | Path | None = None, save: bool = True, trace: bool = False,
                  trace_dir: str | Path | None = None, progress: Callable[[str], None] | None = None,
                  rounds: int = DEFAULT_ROUNDS, warmup_s: float = DEFAULT_WARMUP_S, cuda_graphs: bool = False,
                  tf32: bool = False, round_s: float = DEFAULT_ROUND_S) -> dict[str, Any]:
    """Profile registry model ``name`` and (if ``save``) write the record to the results store.

    Channels and classes come from ``dataset_info`` (no data file needed). MACs/FLOPs are per
    image (batch 1); peak memory and latency are at ``batch_size``; throughput sweeps
    ``batch_sizes``. ``progress`` is called with a short stage name before each stage.
    A CUDA out-of-memory error in the memory, latency or throughput step is recorded (stage
    names in ``oom_stages``, figures ``None``) instead of losing the whole profile.

    Backend flags (cudnn autotune on, TF32 as ``tf32``, the CPU threads) are set for the
    profile, recorded in ``backend`` and restored afterwards. Latency is ``rounds`` rounds of
    ``iters`` calls after ``warmup_s`` s of warm-up; noisy rounds or a loaded machine print a
    ``warning:`` on stderr. ``cuda_graphs`` times graph replays (CUDA only).
    """
    info = get_model_info(name)  # unknown model: BloodbenchError before any work
    dev = resolve_device(str(device)) if not isinstance(device, torch.device) else device
    check_precision(precision, dev)
    check_cuda_graphs(cuda_graphs, dev)
    step = progress or (lambda stage: None)
    created_at = utc_now()
    with backend_flags(cudnn_benchmark=True, allow_tf32=tf32, threads=threads if dev.type == "cpu" else None) \
            as backend:
        nthreads = backend["threads"]
        config = profile_config(dataset, size, dev, precision, channels_last, compile, batch_size, batch_sizes,
                                warmup, iters, threads, min_time_s, rounds, warmup_s, cuda_graphs, tf32, round_s)
        model, ds = build_model(name, dataset, size, dev)
        shape = (batch_size, ds.n_channels, size, size)
        step("counting")
        costs = cost_breakdown(model, (1, ds.n_channels, size, size), memory=False)
        prepared = prepare_model(model, dev, channels_last, compile)
        step("memory")  # of the prepared model (channels_last, compiled): the one that is timed
        memory, memory_oom = unless_oom(
            lambda: _compiled_call(lambda: peak_forward_memory(prepared, shape, precision, channels_last)), dev)
        peak_mb, peak_method = memory or (None, None)
        step("latency")
        lat, latency_oom = unless_oom(lambda: measure_latency(prepared, shape, dev, precision, warmup, iters,
                                                              channels_last, compile, threads, rounds=rounds,
                                                              warmup_s=warmup_s, cuda_graphs=cuda_graphs,
                                                              round_s=round_s), dev)
        gpu = gpu_state(dev)  # clocks and temperature right after timing, while they are the timed ones
        load = machine_load()
        step("throughput")
        thr = measure_throughput(prepared, size, ds.n_channels, config["batch_sizes"], dev, precision,
                                 channels_last, compile, threads, min_time_s=min_time_s,
                                 cuda_graphs=cuda_graphs)
        if trace:
            step("trace")
            from bloodbench.profile.trace import DEFAULT_TRACE_DIR, trace_model

            trace_model(prepared, shape, trace_dir or DEFAULT_TRACE_DIR, name, dev, precision, channels_last, compile)
        env = {**environment(dev), **gpu}
    latency = lat.as_dict() if lat is not None else _latency_after_oom(batch_size, nthreads)
    latency = {**{k: latency.get(k) for k in LATENCY_KEYS}, **load}
    for warning in latency_warnings(latency):
        print(f"warning: {name}: {warning}", file=sys.stderr)
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
        "cuda_graphs": bool(cuda_graphs),
        "backend": backend,
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
        "latency": latency,
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
