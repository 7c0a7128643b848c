"""One machine per table (issue 20): a user's own profile and benchmark file on another machine change
no figure of the published table, and appear in a table of their own.

The published store (reports/results) is copied to a temp folder; "another machine" is faked by a
profile record and a pytest-benchmark file that name an AMD EPYC with one thread.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from records_factory import benchmark_entry, write_benchmark_json

from bloodbench.cli import main
from bloodbench.config import ProfileConfig
from bloodbench.leaderboard import choose_machine, load_leaderboard

REPO = Path(__file__).resolve().parent.parent
PUBLISHED = REPO / "reports" / "results"
MINE = "AMD EPYC 7B13 (1 thread)"


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    """A copy of the committed store: records and predictions, no checkpoints."""
    root = tmp_path_factory.mktemp("published") / "results"
    shutil.copytree(PUBLISHED, root, ignore=shutil.ignore_patterns("*.pt", "claims", "logs"))
    return root


def _my_profile(root: Path, model: str = "baseline_cnn", p50: float = 40.0) -> dict:
    """One of the published cpu profiles, as if rerun on the user's machine: slow and noisy."""
    src = sorted((root / "profile").glob(f"{model}-bloodmnist-28-cpu-fp32-*.json"))[0]
    rec = copy.deepcopy(json.loads(src.read_text()))
    rec["config"]["device_name"] = rec["device_name"] = MINE
    setting = ProfileConfig.from_dict(rec["config"])
    rec["config_hash"], rec["run_id"] = setting.hash(), setting.run_id(model)
    rec["env"]["device_name"], rec["env"]["cpu_name"], rec["env"]["cpu_threads"] = MINE, "AMD EPYC 7B13", 1
    rec["latency"].update(p50_ms=p50, p90_ms=p50 * 1.2, p99_ms=p50 * 1.5, threads=1, noisy=True)
    rec["peak_throughput"] = 1000 / p50
    rec["created_at"] = rec["written_at"] = "2031-01-01T00:00:00+00:00"  # the newest record in the store
    return rec


def _my_benchmark(path: Path) -> Path:
    entries = []
    for model, p50 in (("baseline_cnn", 45.0), ("resnet18", 90.0)):
        e = benchmark_entry(model, batch_size=1, p50=p50, images_per_s=1000 / p50, macs=21_000_000, device="cpu")
        e["extra_info"]["device_name"] = MINE
        entries.append(e)
    return write_benchmark_json(path, entries, when="2031-01-02T00:00:00")


@pytest.fixture(scope="module")
def with_mine(published, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("mine") / "results"
    shutil.copytree(published, root)
    rec = _my_profile(root)
    (root / "profile" / f"{rec['run_id']}.json").write_text(json.dumps(rec, indent=1))
    return root, _my_benchmark(tmp_path_factory.mktemp("bench") / "mine.json")


def test_my_machine_changes_no_published_figure(published, with_mine, capsys):
    root, bench = with_mine
    before = load_leaderboard(published)
    after = load_leaderboard(root, benchmark_json=[bench])
    err = capsys.readouterr().err
    assert after.to_records() == before.to_records()  # every figure, every row, Pareto marks included
    assert after.device_names == before.device_names and MINE not in after.to_markdown().split("\n\n")[0]
    assert "cost conflict" not in err  # another machine is no conflict
    assert f"mine.json was measured on {MINE} fp32" in err and "a table of their own" in err
    assert f'`--device "{MINE}"`' in after.to_markdown()  # ... named under the table


def test_my_machine_gets_a_table_of_its_own(with_mine):
    root, bench = with_mine
    mine = load_leaderboard(root, benchmark_json=[bench], device=MINE)
    rows = {r["model"]: r for r in mine.to_records()}
    assert mine.device_names == [MINE] and f"cost on cpu: {MINE} (fp32)" in mine.to_markdown()
    # the profile record beats the benchmark entry of the same machine; the benchmark fills resnet18
    assert rows["baseline_cnn"]["latency_p50_ms"] == 40.0 and rows["resnet18"]["latency_p50_ms"] == 90.0
    others = [m for m, r in rows.items() if r["kind"] == "model" and m not in ("baseline_cnn", "resnet18")]
    assert others and all(rows[m]["latency_p50_ms"] is None for m in others)  # blank, not another machine's
    assert {r["device_name"] for r in rows.values() if r["latency_p50_ms"] is not None} == {MINE}
    # an ensemble's summed latency never adds members measured on two machines
    ensembles = [r for r in rows.values() if r["kind"] == "ensemble"]
    assert ensembles and all(r["latency_p50_ms"] is None for r in ensembles)
    # the noisy profile is marked where it is shown
    text = mine.to_markdown()
    note = next(line for line in text.splitlines() if "latency measured while the machine was noisy" in line)
    mark = note.split(" ")[0]
    marks = re.search(r"^\| baseline_cnn([⁰¹²³⁴⁵⁶⁷⁸⁹†]*) +\|", text, re.M).group(1)
    assert mark in marks and "baseline_cnn + TTA×8 (from baseline_cnn)" in note


def test_leaderboard_cli_prints_my_table_below_the_published_one(with_mine, capsys):
    root, bench = with_mine
    assert main(["leaderboard", "--results", str(root), "--benchmark-json", str(bench)]) == 0
    out = capsys.readouterr().out
    main_table, _, own = out.partition(f"\n## Cost on {MINE} (fp32)\n")
    published = load_leaderboard(PUBLISHED).to_markdown().split(", every cost cell")[0]  # "_cost on <the default machine>"
    assert own and published in main_table and f"_cost on cpu: {MINE} (fp32)" in own
    assert "| 45.000" not in main_table and "40.000" in own
    # --device-name replaces the whole table with the user's machine: rows it lacks stay blank
    assert main(["leaderboard", "--results", str(root), "--device-name", MINE, "--format", "json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["baseline_cnn"]["latency_p50_ms"] == 40.0 and rows["encoder_cnn"]["latency_p50_ms"] is None


def test_default_machine_is_the_one_with_most_profiled_rows(with_mine):
    root, _ = with_mine
    # three CPUs profiled: the one with the most rows; on a tie, the one that trained most shown runs
    cpu = load_leaderboard(root, device="cpu")
    first, rows = {}, {}
    for f in (root / "profile").glob("*-cpu-*.json"):
        rec = json.loads(f.read_text())
        name = rec["env"]["device_name"]
        rows.setdefault(name, set()).add(rec["model"])
        first[name] = min(first.get(name, rec["created_at"]), rec["created_at"])
    trained = Counter(r["train_machine"] for r in cpu.to_records() if r["kind"] == "model" for _ in range(r["seeds"]))
    assert len(rows) == 3 and MINE in rows
    assert cpu.device_names == [min(rows, key=lambda n: (-len(rows[n]), -trained[n], first[n]))]
    with pytest.raises(Exception, match="matches 2 machines"):
        load_leaderboard(root, device="EPYC")


def test_report_gives_my_benchmark_machine_a_table_of_its_own(tmp_path):
    from records_factory import profile_record, train_record, write_store

    from bloodbench.report import write_report

    recs = [train_record("a", 0, 0.95), train_record("b", 0, 0.93),
            profile_record("a", macs=5_000_000, p50=1.0, throughput=1000),
            profile_record("b", macs=9_000_000, p50=2.0, throughput=500)]
    write_store(tmp_path / "r", recs)
    write_report(tmp_path / "r", tmp_path / "plain")
    bench = _my_benchmark(tmp_path / "mine.json")
    write_report(tmp_path / "r", tmp_path / "mine", benchmark_json=[bench])
    plain = (tmp_path / "plain" / "README.md").read_text()
    mine = (tmp_path / "mine" / "README.md").read_text()

    def table(text: str) -> str:
        return text.split("### bloodmnist, 28×28 px", 1)[1].split("\n\n", 2)[1]

    assert table(mine) == table(plain)  # the main table: not one figure moved
    own = mine.split(f"### Cost on {MINE} (from --benchmark-json)", 1)[1]
    assert f"_cost on cpu: {MINE} (fp32)" in own and "| 45.000 " in own.split("\n## ", 1)[0]


def test_train_columns_never_average_machines(tmp_path):
    from records_factory import train_record, write_store

    xeon = [train_record("a", s, 0.95, device="cpu") for s in range(2)]
    mixed = [train_record("b", 0, 0.93, device="cpu"), train_record("b", 1, 0.93, device="cuda")]
    write_store(tmp_path, xeon + mixed)
    board = load_leaderboard(tmp_path)
    rows = {r["model"]: r for r in board.to_records()}
    assert rows["a"]["train_throughput"] is not None
    assert "training records on Intel(R) Xeon(R) Platinum 8480+ (2 threads)" in rows["a"]["train_throughput_source"]
    assert rows["b"]["train_throughput"] is None  # a CPU seed and a GPU seed: no rate, and it says why
    assert rows["b"]["train_throughput_source"].startswith("not shown: seeds trained on ")
    legend = next(line for line in board.to_markdown().splitlines() if line.startswith("Train (img/s)"))
    assert "Intel(R) Xeon(R) Platinum 8480+ (2 threads)" in legend and "NVIDIA H100 80GB HBM3" in legend


def test_a_tie_goes_to_the_machine_that_trained_the_runs():
    """Two CPUs with every model profiled: the table sits beside the train times of the machine that
    trained most runs, not the one profiled first; a GPU comes next, then the first profiled."""
    def rows(name: str, device: str, when: str) -> list[dict]:
        return [{"model": m, "dataset": "bloodmnist", "size": 28, "device": device, "device_name": name,
                 "precision": "fp32", "source": "profile", "created_at": when, "latency_batch_size": 1}
                for m in ("a", "b")]

    costs = pd.DataFrame(rows("Old CPU", "cpu", "2026-01-01") + rows("Trainer CPU", "cpu", "2026-02-01"))
    assert choose_machine(costs, None)[0].name == "Old CPU"  # no runs: the machine profiled first
    trained = pd.Series(["Trainer CPU", "Trainer CPU", "Old CPU", None])
    machine, shown = choose_machine(costs, None, trained_on=trained)
    assert machine.name == "Trainer CPU" and set(shown["device_name"]) == {"Trainer CPU"}
    with_gpu = pd.concat([costs, pd.DataFrame(rows("GPU", "cuda", "2026-03-01"))])
    assert choose_machine(with_gpu, None, trained_on=trained)[0].name == "Trainer CPU"
    assert choose_machine(with_gpu, None)[0].name == "GPU"
    more = pd.concat([costs, pd.DataFrame(rows("Old CPU", "cpu", "2026-01-01")).assign(model="c")])
    assert choose_machine(more, None, trained_on=trained)[0].name == "Old CPU"  # more rows still wins
