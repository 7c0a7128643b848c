"""Is a latency figure trustworthy? Round-to-round spread and machine load, as warnings.

``torch.utils.benchmark`` warns when the IQR of its measurements is large relative to the
median; we do the same with the rounds of :func:`bloodbench.profile.timing.measure_latency`: each
round has its own p50, the figure is their median, and ``max / min`` of the round p50s above
:data:`NOISE_THRESHOLD` marks the figure ``noisy``. A 1-minute load average above the core
count says other processes compete for the CPU (the launch path of a GPU figure included).
"""

from __future__ import annotations

import os
from typing import Any

#: Max/min of the round p50s above which a latency figure is flagged noisy.
NOISE_THRESHOLD = 1.10


def rounds_spread(rounds_p50_ms: list[float]) -> float | None:
    """max / min of the round p50s (1.0 = every round agrees); None without two positive rounds."""
    values = [v for v in rounds_p50_ms if v is not None and v > 0]
    if len(values) < 2:
        return None
    return max(values) / min(values)


def machine_load() -> dict[str, Any]:
    """1-minute load average and core count (load None where the OS has no load average)."""
    try:
        load = round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        load = None
    return {"load_avg_1m": load, "cpu_count": os.cpu_count()}


def latency_warnings(latency: dict[str, Any], load: dict[str, Any] | None = None) -> list[str]:
    """Plain-language reasons not to trust ``latency`` (a record's latency block), possibly none."""
    out = []
    spread = latency.get("rounds_spread")
    if latency.get("noisy") and spread is not None:
        rounds = ", ".join(f"{v:.3f}" for v in latency.get("rounds_p50_ms") or [])
        out.append(f"latency rounds disagree: max/min of the round p50s is {spread:.2f} (> {NOISE_THRESHOLD:.2f}; "
                   f"rounds {rounds} ms): rerun on a quiet machine")
    load = load if load is not None else {k: latency.get(k) for k in ("load_avg_1m", "cpu_count")}
    if load.get("load_avg_1m") is not None and load.get("cpu_count") and load["load_avg_1m"] > load["cpu_count"]:
        out.append(f"machine is loaded (1-min load average {load['load_avg_1m']:.2f} > {load['cpu_count']} cores): "
                   f"latency figures may be inflated")
    return out
