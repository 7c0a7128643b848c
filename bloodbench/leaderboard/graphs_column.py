"""The launch-free (CUDA graphs) latency beside the eager one in the leaderboard and report.

A profile with ``cuda_graphs: true`` times the replay of a captured CUDA graph: at small inputs
that is the device-bound figure, while the eager profile's is launch-bound (Python and kernel
launches). The two must never compete for one cell, so graphs rows are split off the cost rows
and shown in a column of their own, labelled, only when such records exist; records written
before the setting existed have no ``cuda_graphs`` key and count as eager.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

#: Leaderboard column of the CUDA-graphs p50 (ms); absent from a table without graphs records.
GRAPHS_COLUMN = "latency_p50_graphs_ms"
EAGER_HEADER = "p50 latency, eager (ms)"
GRAPHS_HEADER = "p50 latency, CUDA graphs (ms)"
LEGEND = ("Eager p50: each forward launched from Python as deployed (launch-bound at small inputs); "
          "CUDA graphs p50: the same forward replayed from a captured CUDA graph (device-bound).")


def is_graphs(value: Any) -> bool:
    """A ``cuda_graphs`` cell as a bool (missing, None or NaN: eager)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return bool(value)


def split_graphs(costs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(eager cost rows, CUDA-graphs cost rows)."""
    if costs.empty or "cuda_graphs" not in costs:
        return costs, costs.iloc[0:0]
    mask = costs["cuda_graphs"].map(is_graphs).astype(bool)
    return costs[~mask], costs[mask]


def attach_graphs_p50(merged: pd.DataFrame, graphs: pd.DataFrame, keys: list[str]) -> list[str]:
    """Add :data:`GRAPHS_COLUMN` to ``merged`` (in place) from the newest graphs row of the same
    model, dataset, size, device and precision; returns the extra columns to show (none without graphs)."""
    if graphs.empty or merged.empty:
        return []
    on = keys + ["device", "precision"]
    newest = graphs.sort_values(on + ["created_at"], kind="stable").drop_duplicates(on, keep="last")
    values = merged[on].merge(newest[on + ["latency_p50_ms"]], on=on, how="left")["latency_p50_ms"]
    merged[GRAPHS_COLUMN] = values.to_numpy()
    return [GRAPHS_COLUMN] if merged[GRAPHS_COLUMN].notna().any() else []


def setting_label(precision: str, cuda_graphs: Any) -> str:
    """The report's precision cell, naming the graphs setting so its row is not read as eager."""
    return f"{precision}, CUDA graphs" if is_graphs(cuda_graphs) else str(precision)
