"""``profile_model``: one registry model -> counts + latency + throughput -> one profile record.

The single entry point used by ``bloodbench profile``, ``bloodbench run`` and the benchmarks,
so every profile figure in the results store was measured the same way.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from bloodbench.config import ProfileConfig
from bloodbench.data import DatasetInfo, dataset_info
from bloodbench.models import create_model, get_model_info
from bloodbench.profile.counting import cost_breakdown
from bloodbench.profile.gpu_state import gpu_state
from bloodbench.profile.graphs import check_cuda_graphs
from bloodbench.profile.memory import peak_forward_memory
from bloodbench.profile.noise import latency_warnings, machine_load, noise_reasons
from bloodbench.profile.timing import (
    check_precision,
    compiled_call,
    measure_latency,
    measure_throughput,
    peak_throughput,
    prepare_model,
    unless_oom,
)
from bloodbench.runtime.backend import backend_flags
from bloodbench.runtime.envinfo import environment, resolve_device
from bloodbench.store.results import ResultsStore, utc_now
from bloodbench.store.schema import LATENCY_KEYS, check_written


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


def profile_model(name: str, config: ProfileConfig, results: str | Path | None = None, save: bool = True,
                  trace: bool = False, trace_dir: str | Path | None = None,
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Profile registry model ``name`` in the setting ``config`` and (if ``save``) write the record
    to the results store; the record's ``config`` and run id come from ``config``.

    Channels and classes come from ``dataset_info`` (no data file needed). MACs/FLOPs are per
    image (batch 1); peak memory and latency are at ``config.batch_size``; throughput sweeps
    ``config.batch_sizes``. ``progress`` is called with a short stage name before each stage.
    A CUDA out-of-memory error in the memory, latency or throughput step is recorded (stage
    names in ``oom_stages``, figures ``None``) instead of losing the whole profile.

    Backend flags (cudnn autotune on, TF32 as ``tf32``, the CPU threads) are set for the
    profile, recorded in ``backend`` and restored afterwards. Latency is ``rounds`` rounds of
    ``iters`` calls after ``warmup_s`` s of warm-up; noisy rounds or a loaded machine mark the record
    ``latency.noisy`` (``noise_reasons`` says why) and print a ``warning:`` on stderr; the store keeps
    a quiet record of the setting over a noisy one. ``cuda_graphs`` times graph replays (CUDA only).
    """
    info = get_model_info(name)  # unknown model: BloodbenchError before any work
    c = config
    dev = resolve_device(c.device)
    check_precision(c.precision, dev)
    check_cuda_graphs(c.cuda_graphs, dev)
    step = progress or (lambda stage: None)
    created_at = utc_now()
    with backend_flags(cudnn_benchmark=True, allow_tf32=c.tf32, threads=c.threads) as backend:
        model, ds = build_model(name, c.dataset, c.size, dev)
        shape = (c.batch_size, ds.n_channels, c.size, c.size)
        step("counting")
        costs = cost_breakdown(model, (1, ds.n_channels, c.size, c.size), memory=False)
        prepared = prepare_model(model, dev, c.channels_last, c.compile)
        step("memory")  # of the prepared model (channels_last, compiled): the one that is timed
        memory, memory_oom = unless_oom(
            lambda: compiled_call(lambda: peak_forward_memory(prepared, shape, c.precision, c.channels_last)), dev)
        peak_mb, peak_method = memory or (None, None)
        step("latency")
        lat, latency_oom = unless_oom(lambda: measure_latency(prepared, shape, dev, c.precision, c.warmup, c.iters,
                                                              c.channels_last, c.compile, c.threads, rounds=c.rounds,
                                                              warmup_s=c.warmup_s, cuda_graphs=c.cuda_graphs,
                                                              round_s=c.round_s), dev)
        gpu = gpu_state(dev)  # clocks and temperature right after timing, while they are the timed ones
        load = machine_load()
        step("throughput")
        thr = measure_throughput(prepared, c.size, ds.n_channels, c.batch_sizes, dev, c.precision,
                                 c.channels_last, c.compile, c.threads, min_time_s=c.min_time_s,
                                 cuda_graphs=c.cuda_graphs)
        if trace:
            step("trace")
            from bloodbench.profile.trace import DEFAULT_TRACE_DIR, trace_model

            trace_model(prepared, shape, trace_dir or DEFAULT_TRACE_DIR, name, dev, c.precision, c.channels_last,
                        c.compile)
        env = {**environment(dev), **gpu}
    latency = lat.as_dict() if lat is not None else _latency_after_oom(c.batch_size, backend["threads"])
    latency = {**{k: latency.get(k) for k in LATENCY_KEYS}, **load}
    latency["noise_reasons"] = noise_reasons(latency)  # noisy rounds or a busy machine: not to be trusted
    latency["noisy"] = bool(latency["noise_reasons"]) if latency["p50_ms"] is not None else None  # no figure
    for warning in latency_warnings(latency):
        print(f"warning: {name}: {warning}", file=sys.stderr)
    oom_stages = [stage for stage, oom in (("memory", memory_oom), ("latency", latency_oom),
                                           ("throughput", any(r["oom"] for r in thr))) if oom]
    record: dict[str, Any] = {
        "kind": "profile",
        "run_id": c.run_id(name),
        "model": name,
        "model_info": info.as_dict(),
        "dataset": c.dataset,
        "size": c.size,
        "in_channels": ds.n_channels,
        "num_classes": ds.n_classes,
        "config": c.as_dict(),
        "config_hash": c.hash(),
        "env": env,
        "created_at": created_at,
        "device": dev.type,
        "device_name": env["device_name"],
        "precision": c.precision,
        "channels_last": c.channels_last,
        "compile": c.compile,
        "cuda_graphs": c.cuda_graphs,
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
    check_written(record, "profile")
    del model, prepared
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    if save:
        ResultsStore(results).write(record)
    return record
