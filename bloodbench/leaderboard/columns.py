"""The leaderboard's columns: join keys, the public row layout, sort aliases and Pareto fronts.

Adding a column starts here (``COLUMNS``, and ``COST_COLUMNS`` for a cost figure); the row is
filled in frames.py and shown in table.py's ``display_frame``.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from bloodbench.results import JOIN_KEYS

KEYS = list(JOIN_KEYS)
COST_KEYS = KEYS + ["device", "precision"]
METRICS = ("acc", "f1_macro", "auc")
FORMATS = ("markdown", "csv", "json")
PREFERRED_PRECISION = "fp32"

# Columns of a cost row, whether it came from a profile record or a benchmark JSON.
COST_COLUMNS = COST_KEYS + [
    "device_name", "params", "macs", "flops", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms",
    "latency_batch_size", "throughput", "peak_memory_mb", "created_at", "source",
]

# The public row layout (JSON / CSV) in order.
COLUMNS = [
    "model", "family", "dataset", "size", "seeds",
    "acc_mean", "acc_std", "f1_macro_mean", "f1_macro_std", "auc_mean", "auc_std",
    "train_seconds_mean", "epochs_mean", "stop_reasons", "recipe",
    "params", "macs", "flops",
    "latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "throughput", "peak_memory_mb",
    "device", "device_name", "precision", "cost_source",
    "pareto", "pareto_macs", "dominated_by_macs", "pareto_latency", "dominated_by_latency",
]
INT_COLUMNS = ("size", "seeds", "params", "macs", "flops")

# Friendly names accepted by --sort, and which direction is "better" for each column.
SORT_ALIASES = {
    "acc": "acc_mean", "accuracy": "acc_mean", "f1": "f1_macro_mean", "f1_macro": "f1_macro_mean",
    "auc": "auc_mean", "latency": "latency_p50_ms", "p50": "latency_p50_ms", "p90": "latency_p90_ms",
    "p99": "latency_p99_ms", "memory": "peak_memory_mb", "train_seconds": "train_seconds_mean",
    "epochs": "epochs_mean",
}
HIGHER_IS_BETTER = {"acc_mean", "f1_macro_mean", "auc_mean", "throughput", "seeds"}

FRONTS = {"macs": "macs", "latency": "latency_p50_ms"}


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    """Key dtypes fixed even when empty, so merges of an empty side do not fail on dtypes."""
    df = df.copy()
    for col in ("model", "dataset", "device", "precision"):
        if col in df:
            df[col] = df[col].astype(object)
    if "size" in df:
        df["size"] = df["size"].astype("int64")
    return df


def _num(value: Any) -> float:
    """A record value as float, NaN when absent (so pandas aggregates skip it)."""
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan

