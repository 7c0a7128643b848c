"""Is a latency figure trustworthy? Round-to-round spread and machine load, as warnings.

``torch.utils.benchmark`` warns when the IQR of its measurements is large relative to the
median; we do the same with the rounds of :func:`bloodbench.profile.timing.measure_latency`: each
round has its own p50, the figure is their median, and ``max / min`` of the round p50s above
:data:`NOISE_THRESHOLD` marks the figure ``noisy``. A 1-minute load average above the core
count says other processes compete for the CPU (the launch path of a GPU figure included). Either makes
the record ``noisy`` (``latency.noise_reasons`` says why); ``bloodbench run`` starts a profile only on a
machine quiet enough for it (:func:`wait_until_quiet`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from bloodbench.store.verdicts import load_problem

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


def noise_reasons(latency: dict[str, Any], load: dict[str, Any] | None = None) -> list[str]:
    """Plain-language reasons not to trust ``latency`` (a record's latency block), possibly none: its rounds
    disagree, or the machine was busier than its cores allow with the profiler's own threads
    (:func:`bloodbench.store.verdicts.load_problem`, the store's rule too)."""
    out = []
    spread = latency.get("rounds_spread")
    if spread is not None and spread > NOISE_THRESHOLD:
        rounds = ", ".join(f"{v:.3f}" for v in latency.get("rounds_p50_ms") or [])
        out.append(f"latency rounds disagree: max/min of the round p50s is {spread:.2f} (> {NOISE_THRESHOLD:.2f}; "
                   f"rounds {rounds} ms)")
    load = load if load is not None else {k: latency.get(k) for k in ("load_avg_1m", "cpu_count")}
    busy = load_problem(load.get("load_avg_1m"), load.get("cpu_count"), latency.get("threads"))
    if busy:
        out.append(busy)
    return out


def latency_warnings(latency: dict[str, Any], load: dict[str, Any] | None = None) -> list[str]:
    """:func:`noise_reasons` as warnings, each with what to do about it."""
    hint = {True: "rerun on a quiet machine", False: "latency figures may be inflated"}
    return [f"{r}: {hint[r.startswith('latency rounds')]}" for r in noise_reasons(latency, load)]


# -- before a profile: is the machine quiet enough? ---------------------------------------------
QUIET_POLL_S = 5.0


def runnable_now(samples: int = 5, every_s: float = 0.1) -> float | None:
    """Threads running or ready to run right now, this one left out (Linux ``/proc/loadavg``), averaged over
    a few samples: unlike the 1-minute load average it does not lag behind work that just ended."""
    counts = []
    for i in range(samples):
        try:
            running = Path("/proc/loadavg").read_text().split()[3].split("/")[0]
            counts.append(max(0, int(running) - 1))
        except (OSError, IndexError, ValueError):
            return None
        if i + 1 < samples:
            time.sleep(every_s)
    return sum(counts) / len(counts)


def busy_reason(threads: int | None) -> str | None:
    """Why a profile with ``threads`` threads should not start now (other work would compete), or None."""
    load = machine_load()
    now = runnable_now()
    others = now if now is not None else load["load_avg_1m"]
    return load_problem(others, load["cpu_count"], threads, includes_own=False)


def wait_until_quiet(threads: int | None, wait_s: float) -> str | None:
    """Wait up to ``wait_s`` seconds for the machine to be quiet enough; None once it is, else why not."""
    deadline = time.monotonic() + wait_s
    while True:
        reason = busy_reason(threads)
        if reason is None or time.monotonic() >= deadline:
            return reason
        time.sleep(min(QUIET_POLL_S, max(0.0, deadline - time.monotonic())))
