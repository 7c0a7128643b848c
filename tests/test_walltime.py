"""Where the compute went: per-model sums and the busy wall clock of parallel queues."""

from __future__ import annotations

from bloodbench.report.walltime import time_by_model


def _train(model, finished_at, seconds, device="AMD EPYC (1 threads)"):
    return {"kind": "train", "model": model, "status": "finished", "finished_at": finished_at,
            "train_seconds": seconds, "env": {"device_name": device}}


def test_parallel_queues_count_once_in_the_wall_clock():
    train = [
        _train("a", "2026-01-01T01:00:00+00:00", 3600),      # 00:00 - 01:00
        _train("b", "2026-01-01T01:30:00+00:00", 3600),      # 00:30 - 01:30, overlaps a
        _train("a", "2026-01-01T03:00:00+00:00", 1800),      # 02:30 - 03:00, after an idle hour
        {"kind": "train", "model": "c", "status": "running"},  # unfinished: not counted
    ]
    profile = [{"kind": "profile", "model": "b", "created_at": "2026-01-01T04:00:00+00:00",
                "written_at": "2026-01-01T04:00:30+00:00"}]
    table, totals = time_by_model(train, profile)
    assert totals["train_seconds"] == 9000 and totals["profile_seconds"] == 30
    assert totals["busy_wall_seconds"] == 5400 + 1800 + 30
    rows = table.set_index("model")
    assert list(rows.index) == ["a", "b"]  # most training time first
    assert rows.loc["a", "train runs"] == 2 and rows.loc["a", "min per run"] == 45.0
    assert rows.loc["b", "profile s (sum)"] == 30 and rows.loc["b", "devices"] == "AMD EPYC (1 thread)"  # not "1 threads"
