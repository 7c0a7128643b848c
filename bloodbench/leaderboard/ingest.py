"""pytest-benchmark JSON (``pytest benchmarks/ --benchmark-json out.json``) as cost rows, like profile records."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Iterator, Sequence

import pandas as pd

from bloodbench.errors import BloodbenchError
from bloodbench.formatting import machine_device_name
from bloodbench.leaderboard.columns import COST_COLUMNS, COST_KEYS, PREFERRED_PRECISION, _num, _typed


def read_benchmark_json(path: str | os.PathLike) -> dict:
    """A pytest-benchmark JSON file, checked enough to give a one-line error instead of a KeyError."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise BloodbenchError(f"benchmark JSON {path} not found: make it with "
                              f"`pytest benchmarks/ --benchmark-json {path}`") from None
    except (OSError, ValueError) as exc:
        raise BloodbenchError(f"benchmark JSON {path} is unreadable ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise BloodbenchError(f"{path} is not a pytest-benchmark JSON file (no 'benchmarks' list)")
    return data


def _benchmark_entries(path: str | os.PathLike, data: dict) -> Iterator[tuple[str, dict, dict]]:
    """(where, extra_info, stats) per benchmark, each checked to be an object, so a stray value in
    the file is a one-line error naming it instead of an AttributeError."""
    for i, bench in enumerate(data["benchmarks"]):
        where = f"{path}: benchmarks[{i}]"
        if not isinstance(bench, dict):
            raise BloodbenchError(f"{where} is {bench!r:.40}, not an object")
        parts = {name: bench.get(name) or {} for name in ("extra_info", "stats")}
        for name, part in parts.items():
            if not isinstance(part, dict):
                raise BloodbenchError(f"{where}.{name} is {part!r:.40}, not an object")
        yield where, parts["extra_info"], parts["stats"]


def _int_field(extra: dict, key: str, default: int, where: str) -> int:
    """An integer ``extra_info`` field (28, 28.0 or "28"), or a one-line error naming the entry."""
    value = extra.get(key)
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not number.is_integer():
        raise BloodbenchError(f"{where}.extra_info.{key} is {value!r}, not an integer")
    return int(number)


def benchmark_frame(paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """Inference entries of pytest-benchmark files as cost rows, like profile records.

    Latency is read from the batch-1 entries (a per-image figure), throughput is the
    best images/s over every batch size, as in profile records.
    """
    entries = []
    for path in paths:
        data = read_benchmark_json(path)
        machine = data.get("machine_info") if isinstance(data.get("machine_info"), dict) else {}
        when = str(data.get("datetime") or "")
        for where, extra, stats in _benchmark_entries(path, data):
            if extra.get("kind", "inference") != "inference" or not extra.get("model"):
                continue
            batch = _int_field(extra, "batch_size", 1, where)
            median_s = _num(stats.get("median"))
            p50 = _num(extra.get("p50_ms"))
            if math.isnan(p50) and not math.isnan(median_s):
                p50 = median_s * 1e3
            ips = _num(extra.get("images_per_s"))
            if math.isnan(ips) and median_s > 0:
                ips = batch / median_s
            device = extra.get("device") or "cpu"
            entries.append({
                "model": extra["model"], "dataset": extra.get("dataset", "bloodmnist"),
                "size": _int_field(extra, "size", 28, where), "device": device,
                "precision": extra.get("precision") or PREFERRED_PRECISION,
                "device_name": extra.get("device_name") or machine_device_name(machine, device),
                "params": _num(extra.get("params")), "macs": _num(extra.get("macs")),
                "flops": _num(extra.get("flops")), "batch_size": batch,
                "p50": p50, "p90": _num(extra.get("p90_ms")), "p99": _num(extra.get("p99_ms")),
                "images_per_s": ips, "created_at": when, "source": f"benchmark:{Path(path).name}",
            })
    if not entries:
        return _typed(pd.DataFrame(columns=COST_COLUMNS))
    df = pd.DataFrame(entries)
    rows = []
    for key, g in df.groupby(COST_KEYS + ["source"], sort=True):
        one = g[g["batch_size"] == 1]
        lat = one.iloc[-1] if len(one) else None
        macs = g["macs"].dropna()
        flops = g["flops"].dropna()
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
            "throughput": g["images_per_s"].max(), "peak_memory_mb": math.nan,
            "created_at": g["created_at"].max(), "cuda_graphs": False,
        })
    return _typed(pd.DataFrame(rows, columns=COST_COLUMNS))

