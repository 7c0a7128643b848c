"""Where the compute went: training and profiling time per model, and the wall clock they spanned.

Taken from the records themselves (``train_seconds``, ``finished_at``, a profile's
``created_at``/``written_at``), so it covers runs started by ``bloodbench run`` and by hand
alike, on any number of parallel queues.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Iterable

import pandas as pd

from bloodbench.formatting import device_label
from bloodbench.store.schema import is_finished

COLUMNS = ["model", "train runs", "train h (sum)", "min per run", "profile s (sum)", "devices"]


def _when(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def _profile_span(rec: dict) -> tuple[datetime, datetime] | None:
    start, end = _when(rec.get("created_at")), _when(rec.get("written_at"))
    return (start, end) if start and end and end >= start else None


def _intervals(train: Iterable[dict], profile: Iterable[dict]) -> list[tuple[datetime, datetime]]:
    """Busy spans: the training part of each run (ending at ``finished_at``) and each profile."""
    spans = []
    for r in train:
        end = _when(r.get("finished_at"))
        if end and r.get("train_seconds"):
            spans.append((end - timedelta(seconds=float(r["train_seconds"])), end))
    return spans + [span for span in map(_profile_span, profile) if span]


def busy_wall_seconds(spans: list[tuple[datetime, datetime]]) -> float:
    """Length of the union of the spans: parallel queues count once, idle gaps not at all."""
    total, cur_start, cur_end = 0.0, None, None
    for start, end in sorted(spans):
        if cur_end is None or start > cur_end:
            if cur_end is not None:
                total += (cur_end - cur_start).total_seconds()
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    if cur_end is not None:
        total += (cur_end - cur_start).total_seconds()
    return total


def time_by_model(train: list[dict], profile: list[dict]) -> tuple[pd.DataFrame, dict]:
    """One row per model, plus totals: compute seconds summed over runs and the busy wall clock."""
    finished = [r for r in train if is_finished(r, or_diverged=True)]
    rows: dict[str, dict] = defaultdict(lambda: {"runs": 0, "train_s": 0.0, "profile_s": 0.0, "devices": set()})
    for r in finished:
        row = rows[r["model"]]
        row["runs"] += 1
        row["train_s"] += float(r.get("train_seconds") or 0)
        row["devices"].add(device_label((r.get("env") or {}).get("device_name")) or "?")
    for r in profile:
        span = _profile_span(r)
        rows[r["model"]]["profile_s"] += (span[1] - span[0]).total_seconds() if span else 0.0
    table = pd.DataFrame([
        [m, v["runs"], round(v["train_s"] / 3600, 2) if v["runs"] else None,
         round(v["train_s"] / 60 / v["runs"], 1) if v["runs"] else None,
         round(v["profile_s"]), ", ".join(sorted(v["devices"]))]
        for m, v in sorted(rows.items(), key=lambda kv: -kv[1]["train_s"])], columns=COLUMNS)
    totals = {"train_seconds": sum(v["train_s"] for v in rows.values()),
              "profile_seconds": sum(v["profile_s"] for v in rows.values()),
              "busy_wall_seconds": busy_wall_seconds(_intervals(finished, profile))}
    return table, totals
