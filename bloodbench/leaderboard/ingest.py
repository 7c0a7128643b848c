"""pytest-benchmark JSON (``pytest benchmarks/ --benchmark-json out.json``) as cost rows, like profile records.

Only entries made by bloodbench's own suite are read (see :mod:`bloodbench.store.benchjson`); others
are left out with a warning.
"""

from __future__ import annotations

import math
import os
from typing import Sequence

import pandas as pd

from bloodbench.formatting import machine_device_name
from bloodbench.leaderboard.columns import COST_COLUMNS, COST_KEYS, typed_frame
from bloodbench.store.benchjson import benchmark_entries, read_benchmark_json

__all__ = ["benchmark_frame", "read_benchmark_json"]


def benchmark_frame(paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """Inference entries of bloodbench's pytest-benchmark files as cost rows, like profile records
    (foreign entries are left out with a warning: see :mod:`bloodbench.store.benchjson`).

    Latency is read from the batch-1 entries (a per-image figure), throughput is the
    best images/s over every batch size, as in profile records, with the batch it was reached at.
    ``train_step`` entries add the training images/s (best over batch sizes) of the same row.
    """
    entries = benchmark_entries(paths, machine_device_name)
    if not entries:
        return typed_frame(pd.DataFrame(columns=COST_COLUMNS))
    df = pd.DataFrame(entries)
    rows = []
    for key, g in df.groupby(COST_KEYS + ["source"], sort=True):
        infer, train_step = g[g["kind"] == "inference"], g[g["kind"] == "train_step"]
        if infer.empty:
            continue
        one = infer[infer["batch_size"] == 1]
        lat = one.iloc[-1] if len(one) else None
        macs = g["macs"].dropna()
        flops = g["flops"].dropna()
        peak = infer.loc[infer["images_per_s"].idxmax()] if infer["images_per_s"].notna().any() else None
        tpeak = (train_step.loc[train_step["images_per_s"].idxmax()]
                 if train_step["images_per_s"].notna().any() else None)
        rows.append({
            **dict(zip(COST_KEYS + ["source"], key)),
            "device_name": g["device_name"].dropna().iloc[0] if g["device_name"].notna().any() else None,
            "params": g["params"].dropna().iloc[0] if g["params"].notna().any() else math.nan,
            "macs": macs.iloc[0] if len(macs) else math.nan,
            "flops": flops.iloc[0] if len(flops) else (2 * macs.iloc[0] if len(macs) else math.nan),
            "latency_p50_ms": lat["p50"] if lat is not None else math.nan,
            "latency_p90_ms": lat["p90"] if lat is not None else math.nan,
            "latency_p99_ms": lat["p99"] if lat is not None else math.nan,
            "latency_batch_size": 1.0 if lat is not None else math.nan,
            "throughput": peak["images_per_s"] if peak is not None else math.nan,
            "throughput_batch_size": peak["batch_size"] if peak is not None else math.nan,
            "train_throughput": tpeak["images_per_s"] if tpeak is not None else math.nan,
            "train_batch_size": tpeak["batch_size"] if tpeak is not None else math.nan,
            "peak_memory_mb": math.nan, "created_at": g["created_at"].max(),
            "cuda_graphs": False,
        })
    return typed_frame(pd.DataFrame(rows, columns=COST_COLUMNS))
