"""The leaderboard's columns: join keys, the public row layout, the markdown view, sort aliases, Pareto fronts.

Adding a column of a profile record's figure is a change to this file only: its record path in
``PROFILE_COLUMNS``, its place in ``COLUMNS`` (JSON/CSV) and, to show it, a ``DISPLAY`` entry.
Benchmark JSON rows leave it blank. A training figure also needs its aggregate in
frames.py's ``aggregate_training``.
"""

from __future__ import annotations

import pandas as pd

from bloodbench.choices import LEADERBOARD_FORMATS, SHOWN_COLUMNS, TERMINAL_COLUMNS  # noqa: F401
from bloodbench.store.schema import JOIN_KEYS

KEYS = list(JOIN_KEYS)
COST_KEYS = KEYS + ["device", "precision"]
METRICS = ("acc", "f1_macro", "auc")
FORMATS = LEADERBOARD_FORMATS
PREFERRED_PRECISION = "fp32"

# Numeric cost columns read from a profile record: column -> path of keys in the record.
PROFILE_COLUMNS = {
    "params": ("params",), "macs": ("macs",), "flops": ("flops",),
    "latency_p50_ms": ("latency", "p50_ms"), "latency_p90_ms": ("latency", "p90_ms"),
    "latency_p99_ms": ("latency", "p99_ms"), "latency_batch_size": ("latency", "batch_size"),
    "throughput": ("peak_throughput",), "peak_memory_mb": ("peak_memory_mb",),  # MiB, historical name
}

# Columns of a cost row, whether it came from a profile record or a benchmark JSON.
# Figures only some sources have: the batch of the best images/s, and a train_step benchmark's train rate.
COST_COLUMNS = COST_KEYS + ["device_name", *PROFILE_COLUMNS, "throughput_batch_size", "train_throughput",
                            "train_batch_size", "created_at", "source", "cuda_graphs", "latency_noisy"]

# The public row layout (JSON / CSV) in order.
COLUMNS = [
    "model", "kind", "family", "dataset", "size", "seeds",
    "acc_mean", "acc_std", "f1_macro_mean", "f1_macro_std", "auc_mean", "auc_std",
    "train_seconds_mean", "train_machine", "epochs_mean", "stop_reasons", "recipe", "unconverged_seeds",
    "params", "macs", "flops",
    "latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "throughput", "throughput_batch_size", "peak_memory_mb",
    "train_throughput", "train_throughput_source",
    "device", "device_name", "precision", "cost_source", "latency_noisy",
    "pareto", "pareto_macs", "dominated_by_macs", "pareto_latency", "dominated_by_latency",
    "members", "weights", "temperatures",
]
# ensemble and TTA rows: run_ids, weights where unequal, and each member's val temperature
LIST_COLUMNS = ("members", "weights", "temperatures")
INT_COLUMNS = ("size", "seeds", "unconverged_seeds", "params", "macs", "flops", "throughput_batch_size")

# Friendly names accepted by --sort, and which direction is "better" for each column.
SORT_ALIASES = {
    "acc": "acc_mean", "accuracy": "acc_mean", "f1": "f1_macro_mean", "f1_macro": "f1_macro_mean",
    "auc": "auc_mean", "latency": "latency_p50_ms", "p50": "latency_p50_ms", "p90": "latency_p90_ms",
    "p99": "latency_p99_ms", "memory": "peak_memory_mb", "train_seconds": "train_seconds_mean",
    "epochs": "epochs_mean",
}
# The markdown view: (header, column, format spec, scale, kind). kind "spread" shows
# ``<column>_mean ± <column>_std``; "value" one number; "count" a mean of whole numbers ("30",
# not "30.0", when whole); "text" the cell as is.
DISPLAY = [
    ("seeds", "seeds", ".0f", 1.0, "value"),
    ("test acc (%)", "acc", ".2f", 100, "spread"),  # a fraction in the records; percent reads better
    ("F1 macro", "f1_macro", ".3f", 1.0, "spread"),
    ("AUC", "auc", ".3f", 1.0, "spread"),
    ("params (M)", "params", ".3f", 1e-6, "value"),
    ("MACs (M)", "macs", ".2f", 1e-6, "value"),
    ("FLOPs (M) = 2×MACs", "flops", ".2f", 1e-6, "value"),
    ("p50 latency (ms)", "latency_p50_ms", ".3f", 1.0, "value"),
    ("p99 latency (ms)", "latency_p99_ms", ".3f", 1.0, "value"),
    ("throughput (img/s)", "throughput", ",.0f", 1.0, "value"),
    ("peak mem (MiB)", "peak_memory_mb", ".1f", 1.0, "value"),
    ("train (img/s)", "train_throughput", ",.0f", 1.0, "value"),
    ("train time (s)", "train_seconds_mean", ",.0f", 1.0, "value"),
    ("epochs", "epochs_mean", ".1f", 1.0, "count"),
    ("stop", "stop_reasons", "", 1.0, "text"),
]

HIGHER_IS_BETTER = {"acc_mean", "f1_macro_mean", "auc_mean", "throughput", "seeds"}

FRONTS = {"macs": "macs", "latency": "latency_p50_ms"}


def typed_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Key dtypes fixed even when empty, so merges of an empty side do not fail on dtypes."""
    df = df.copy()
    for col in ("model", "dataset", "device", "precision"):
        if col in df:
            df[col] = df[col].astype(object)
    if "size" in df:
        df["size"] = df["size"].astype("int64")
    return df
