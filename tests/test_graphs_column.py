"""The CUDA-graphs (launch-free) profile beside the eager one: its own column, never the eager cell.

No such record is committed yet, so these tests fabricate one (records_factory plus the fields
``profile_model(cuda_graphs=True)`` writes).
"""

from __future__ import annotations

import json

from records_factory import profile_record, train_record, write_store

from bloodbench.leaderboard import build_leaderboard, load_leaderboard
from bloodbench.leaderboard.graphs_column import EAGER_HEADER, GRAPHS_HEADER
from bloodbench.report import write_report
from bloodbench.store.results import config_hash


def graphs_record(model: str, p50: float, **kw) -> dict:
    """A profile with cuda_graphs: true (own config hash and run id), newer than the eager one."""
    rec = profile_record(model, p50=p50, created_at="2025-02-01T09:00:00+00:00", **kw)
    rec["config"] = {**rec["config"], "cuda_graphs": True}
    rec["config_hash"] = config_hash(rec["config"])
    rec["run_id"] = rec["run_id"].rsplit("-", 1)[0] + "-" + rec["config_hash"]
    rec["cuda_graphs"] = True
    rec["latency"] = {**rec["latency"], "cuda_graphs": True, "method": "per_call_median_of_rounds"}
    return rec


def records(with_graphs: bool) -> list[dict]:
    recs = [train_record("big", 0, 0.95), train_record("small", 0, 0.90),
            profile_record("big", macs=50_000_000, p50=1.0, throughput=20_000),
            profile_record("small", macs=2_000_000, p50=0.6, throughput=60_000)]
    if with_graphs:
        recs.append(graphs_record("big", 0.2, macs=50_000_000, throughput=80_000))
    return recs


def test_graphs_p50_gets_its_own_labelled_column_and_never_the_eager_cell():
    board = build_leaderboard(*_split(records(with_graphs=True)))
    rows = {r["model"]: r for r in board.to_records()}
    assert rows["big"]["latency_p50_ms"] == 1.0  # the newer graphs record did not take the eager cell
    assert rows["big"]["latency_p50_graphs_ms"] == 0.2 and rows["small"]["latency_p50_graphs_ms"] is None
    assert rows["big"]["throughput"] == 20_000
    md = board.to_markdown()
    header = next(line for line in md.splitlines() if line.startswith("| model"))
    assert f"{EAGER_HEADER} " in header and f"{GRAPHS_HEADER} " in header
    assert header.index(EAGER_HEADER) < header.index(GRAPHS_HEADER)
    assert "launch-bound" in md and "device-bound" in md
    assert "latency_p50_graphs_ms" in board.to_csv().splitlines()[0]


def test_without_graphs_records_the_table_is_as_before():
    board = build_leaderboard(*_split(records(with_graphs=False)))
    assert "latency_p50_graphs_ms" not in board.to_records()[0]
    md = board.to_markdown()
    assert "| p50 latency (ms)" in md and GRAPHS_HEADER not in md and "device-bound" not in md


def test_report_names_the_graphs_setting_in_the_cost_table(tmp_path):
    write_store(tmp_path / "results", records(with_graphs=True))
    write_report(tmp_path / "results", tmp_path / "out")
    card = (tmp_path / "out" / "models" / "big.md").read_text()
    assert "| fp32, CUDA graphs " in card and "| fp32 " in card
    assert json.loads(load_leaderboard(tmp_path / "results").to_json())[0]["latency_p50_graphs_ms"] in (0.2, None)


def _split(recs: list[dict]) -> tuple[list[dict], list[dict]]:
    return [r for r in recs if r["kind"] == "train"], [r for r in recs if r["kind"] == "profile"]
