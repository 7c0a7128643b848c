"""`bloodbench leaderboard`: aggregation, Pareto fronts, formats, filters, benchmark JSON, gaps."""

from __future__ import annotations

import io
import json
import statistics
from pathlib import Path

import pandas as pd
import pytest
from conftest import run_cli
from records_factory import benchmark_entry, profile_record, train_record, write_benchmark_json, write_store

from bloodbench.cli import main
from bloodbench.errors import BloodbenchError
from bloodbench.leaderboard import build_leaderboard, load_leaderboard, pareto_front

ACCS = {"big": [0.951, 0.962, 0.944], "mid": [0.931, 0.925], "small": [0.90], "bad": [0.89]}


def base_records() -> list[dict]:
    """Hand-made case: on (acc, MACs) big, mid, small are on the front, bad is dominated by mid.

    On (acc, latency) small (0.6 ms) is slower than mid (0.5 ms) and less accurate, so mid
    dominates it there too. ``noprof`` has training only; ``untrained`` a profile only;
    ``half`` only diverged, and mid's seed 2 diverged.
    """
    recs = []
    for model, accs in ACCS.items():
        for seed, acc in enumerate(accs):
            recs.append(train_record(model, seed, acc, f1=acc - 0.02, auc=0.99 - seed * 0.001,
                                     stop_reason="epoch_budget" if seed == 1 else "converged",
                                     train_seconds=100.0 + 10 * seed, epochs=10 + seed))
    recs.append(train_record("noprof", 0, 0.91))
    recs.append(train_record("half", 0, 0.97, status="diverged"))  # only a diverged run: no row
    recs.append(train_record("mid", 2, 0.12, status="diverged"))  # a diverged seed next to finished ones
    recs += [
        profile_record("big", macs=50_000_000, p50=1.0, throughput=20_000),
        profile_record("mid", macs=10_000_000, p50=0.5, throughput=40_000),
        profile_record("small", macs=2_000_000, p50=0.6, throughput=60_000),
        profile_record("bad", macs=20_000_000, p50=0.7, throughput=30_000),
        profile_record("untrained", macs=1_000_000, p50=0.2, throughput=90_000),
        profile_record("big", device="cpu", macs=50_000_000, p50=10.0, throughput=200),
        # fp16 is faster, but the table prefers fp32 unless --precision says otherwise
        profile_record("big", precision="fp16", macs=50_000_000, p50=0.4, throughput=50_000,
                       created_at="2025-01-12T09:00:00+00:00"),
    ]
    return recs


@pytest.fixture
def results(tmp_path):
    write_store(tmp_path / "results", base_records())
    return tmp_path / "results"




def by_model(board) -> dict[str, dict]:
    return {r["model"]: r for r in board.to_records()}


def test_aggregates_seeds_exactly(results):
    rows = by_model(load_leaderboard(results))
    for model, accs in ACCS.items():
        r = rows[model]
        assert r["seeds"] == len(accs)
        assert r["acc_mean"] == pytest.approx(statistics.mean(accs), abs=1e-12)
        if len(accs) > 1:
            assert r["acc_std"] == pytest.approx(statistics.stdev(accs), abs=1e-12)  # sample std, ddof=1
        else:
            assert r["acc_std"] is None
        assert r["f1_macro_mean"] == pytest.approx(statistics.mean(a - 0.02 for a in accs))
    big = rows["big"]
    assert big["auc_mean"] == pytest.approx(statistics.mean([0.99, 0.989, 0.988]))
    assert big["train_seconds_mean"] == pytest.approx(110.0)
    assert big["epochs_mean"] == pytest.approx(11.0)
    assert big["stop_reasons"] == "converged ×2, epoch_budget"
    assert "half" not in rows  # a diverged run is never averaged in
    assert rows["mid"]["seeds"] == 2 and rows["mid"]["acc_mean"] == pytest.approx(statistics.mean(ACCS["mid"]))


def test_rerun_seed_counts_once_newest_wins(tmp_path):
    recs = [train_record("m", 0, 0.80, created_at="2025-01-01T00:00:00+00:00"),
            train_record("m", 1, 0.90)]
    newer = train_record("m", 0, 0.92, epochs=20, created_at="2025-02-01T00:00:00+00:00")  # other config hash
    write_store(tmp_path / "r", recs + [newer])
    r = by_model(load_leaderboard(tmp_path / "r"))["m"]
    assert r["seeds"] == 2 and r["acc_mean"] == pytest.approx(0.91)


def test_seeds_of_one_recipe_are_averaged_and_other_recipes_footnoted(tmp_path, capsys):
    recs = [train_record("m", s, acc) for s, acc in enumerate((0.95, 0.96, 0.97))]
    # a newer run with another recipe (say GPU bf16 or another lr): shown only in a footnote
    recs.append(train_record("m", 0, 0.50, lr=3e-3, created_at="2025-02-01T00:00:00+00:00"))
    # two seeds of a second model under a new recipe beat its one old-recipe seed
    recs.append(train_record("n", 0, 0.80, lr=3e-3))
    recs += [train_record("n", s, 0.90, lr=1e-2, created_at="2025-02-01T00:00:00+00:00") for s in (0, 1)]
    write_store(tmp_path, recs)
    rows = by_model(load_leaderboard(tmp_path))
    assert rows["m"]["seeds"] == 3 and rows["m"]["acc_mean"] == pytest.approx(0.96)
    assert rows["n"]["seeds"] == 2 and rows["n"]["acc_mean"] == pytest.approx(0.90)
    assert rows["m"]["recipe"] != rows["n"]["recipe"]  # the hash of the config that was averaged
    rc, out, _ = run_cli(capsys, "leaderboard", "--results", str(tmp_path))
    assert rc == 0
    note = [line for line in out.splitlines() if "another recipe" in line]
    assert len(note) == 1 and "m (seed 0)" in note[0] and "n (seed 0)" in note[0]


def test_cost_columns_prefer_fp32_and_name_the_device(results):
    board = load_leaderboard(results)
    assert board.device == "cuda" and board.device_names == ["NVIDIA H100 80GB HBM3"]
    rows = by_model(board)
    big = rows["big"]
    assert (big["precision"], big["latency_p50_ms"], big["throughput"]) == ("fp32", 1.0, 20_000)
    assert big["params"] == 100_000 and big["macs"] == 50_000_000 and big["flops"] == 100_000_000
    assert big["device"] == "cuda" and big["device_name"] == "NVIDIA H100 80GB HBM3"
    fp16 = by_model(load_leaderboard(results, precision="fp16"))["big"]
    assert (fp16["precision"], fp16["latency_p50_ms"]) == ("fp16", 0.4)
    cpu = load_leaderboard(results, device="cpu")
    assert cpu.device == "cpu" and by_model(cpu)["big"]["latency_p50_ms"] == 10.0
    assert by_model(load_leaderboard(results, device="H100"))["mid"]["latency_p50_ms"] == 0.5


def test_pareto_flags_and_dominated_by(results):
    rows = by_model(load_leaderboard(results))
    assert [rows[m]["pareto_macs"] for m in ("big", "mid", "small", "bad")] == [True, True, True, False]
    assert rows["bad"]["dominated_by_macs"] == "mid"
    assert [rows[m]["pareto_latency"] for m in ("big", "mid", "small", "bad")] == [True, True, False, False]
    assert rows["small"]["dominated_by_latency"] == "mid" and rows["bad"]["dominated_by_latency"] == "mid"
    assert rows["small"]["pareto"] is True and rows["bad"]["pareto"] is False
    # Rows missing a value are neither on nor off a front.
    assert rows["untrained"]["pareto_macs"] is None and rows["untrained"]["dominated_by_macs"] is None
    assert rows["noprof"]["pareto_latency"] is None and rows["noprof"]["pareto"] is None


def test_pareto_front_edge_cases():
    df = pd.DataFrame({
        "model": ["a", "b", "c", "d", "e"], "dataset": ["x"] * 4 + ["y"], "size": [28] * 5,
        "acc_mean": [0.9, 0.9, 0.95, 0.8, 0.5], "macs": [10, 10, 40, 5, 1000],
    })
    on, dom = pareto_front(df, "macs")
    assert list(on) == [True, True, True, True, True]  # ties do not dominate; e is alone in its dataset
    df.loc[3, "acc_mean"] = 0.96
    on, dom = pareto_front(df, "macs")
    assert list(on) == [False, False, False, True, True]
    assert list(dom[:3]) == ["d", "d", "d"]


def test_gap_footnotes(results, capsys):
    rc, out, _ = run_cli(capsys, "leaderboard", "--results", str(results))
    assert rc == 0
    assert "¹ no profile on NVIDIA H100 80GB HBM3 fp32 (this table's machine) for: noprof" in out
    assert "² not trained (no finished run): untrained" in out
    assert "³ diverged in training, not averaged in: half (seed 0), mid (seed 2)" in out
    assert "| noprof¹" in out and "| untrained²" in out and "| mid³" in out
    rc, out, _ = run_cli(capsys, "leaderboard", "--results", str(results), "--device", "cpu")
    assert "no profile on Intel(R) Xeon(R) Platinum 8480+ (2 threads) fp32 (this table's machine) for: bad, mid, noprof, small" in out


def test_diverged_seed_rerun_to_completion_is_not_footnoted():
    recs = [train_record("m", 0, 0.3, status="diverged", created_at="2025-01-01T00:00:00+00:00"),
            train_record("m", 0, 0.9, epochs=20), train_record("m", 1, 0.2, status="diverged"),
            train_record("m", 2, 0.2, status="diverged")]
    board = build_leaderboard(recs, [profile_record("m", macs=1_000_000, p50=0.1, throughput=1000)])
    assert board.footnotes == ["¹ diverged in training, not averaged in: m (seeds 1, 2)"]
    assert by_model(board)["m"]["seeds"] == 1


def test_formats_parse(results, capsys):
    rc, out, _ = run_cli(capsys, "leaderboard", "--results", str(results), "--format", "json")
    rows = json.loads(out)
    need = {"model", "dataset", "size", "seeds", "acc_mean", "acc_std", "f1_macro_mean", "auc_mean", "params",
            "macs", "latency_p50_ms", "throughput", "device", "pareto", "pareto_macs", "pareto_latency",
            "dominated_by_macs", "dominated_by_latency"}
    assert rc == 0 and need <= set(rows[0])
    assert [r["model"] for r in rows][:4] == ["big", "mid", "noprof", "small"]  # acc desc
    rc, out, _ = run_cli(capsys, "leaderboard", "--results", str(results), "--format", "csv")
    df = pd.read_csv(io.StringIO(out))
    assert rc == 0 and len(df) == 6 and df.loc[df.model == "bad", "macs"].item() == 20_000_000
    rc, out, _ = run_cli(capsys, "leaderboard", "--results", str(results))
    assert rc == 0
    for header in ("| model", "test acc (%)", "MACs (M)", "FLOPs (M) = 2×MACs", "p50 latency (ms)",
                   "throughput (img/s)", "Pareto MACs"):
        assert header in out
    assert "cost on cuda: NVIDIA H100 80GB HBM3" in out
    assert "95.23 ± 0.91" in out  # big: mean ± sample std in percent


def test_filters_and_sort(results, tmp_path, capsys):
    write_store(results, [train_record("big", 0, 0.97, size=64), profile_record("big", macs=200_000_000, p50=2.0,
                                                                             throughput=5000, size=64)])
    rows = json.loads(run_cli(capsys, "leaderboard", "--results", str(results), "--format", "json",
                              "--size", "64")[1])
    assert [(r["model"], r["size"]) for r in rows] == [("big", 64)]
    rows = json.loads(run_cli(capsys, "leaderboard", "--results", str(results), "--format", "json",
                              "--dataset", "bloodmnist", "--size", "28", "--models", "small,bad,big",
                              "--sort", "macs")[1])
    assert [r["model"] for r in rows] == ["small", "bad", "big"]
    rows = json.loads(run_cli(capsys, "leaderboard", "--results", str(results), "--format", "json",
                              "--size", "28", "--sort=-latency")[1])
    assert [r["model"] for r in rows][:2] == ["big", "bad"] and rows[-1]["model"] == "noprof"  # blanks last
    rows = json.loads(run_cli(capsys, "leaderboard", "--results", str(results), "--format", "json",
                              "--size", "28", "--sort", "throughput")[1])
    assert rows[0]["model"] == "untrained"
    rc, _, err = run_cli(capsys, "leaderboard", "--results", str(results), "--sort", "nonsense")
    assert rc == 2 and err.startswith("error: cannot sort by 'nonsense'")
    rc, _, err = run_cli(capsys, "leaderboard", "--results", str(results), "--models", "nope")
    assert rc == 2 and err.count("\n") == 1


def test_multi_group_pareto_is_per_dataset_size(results):
    write_store(results, [train_record("tiny", 0, 0.50, size=64),
                          profile_record("tiny", macs=1, p50=0.01, throughput=1e6, size=64)])
    rows = {(r["model"], r["size"]): r for r in load_leaderboard(results).to_records()}
    assert rows[("tiny", 64)]["pareto_macs"] is True  # cheapest of all, but alone in its group
    assert rows[("bad", 28)]["dominated_by_macs"] == "mid"


def test_benchmark_json_ingestion(tmp_path, capsys):
    bench = write_benchmark_json(tmp_path / "bench.json", [
        benchmark_entry("alpha", batch_size=1, p50=0.8, images_per_s=1250, macs=3_000_000),
        benchmark_entry("alpha", batch_size=64, p50=4.0, images_per_s=16_000, macs=3_000_000),
        benchmark_entry("alpha", batch_size=256, p50=12.0, images_per_s=21_333, macs=3_000_000),
        benchmark_entry("alpha", batch_size=64, p50=9.0, images_per_s=7000, macs=3_000_000, kind="train_step"),
        benchmark_entry("beta", batch_size=1, p50=0.5, images_per_s=2000, macs=9_000_000),
        benchmark_entry("beta", batch_size=1, p50=3.0, images_per_s=333, macs=9_000_000, device="cpu"),
    ])
    write_store(tmp_path / "r", [train_record("alpha", 0, 0.93), train_record("beta", 0, 0.92)])
    board = load_leaderboard(tmp_path / "r", benchmark_json=[bench])
    rows = by_model(board)
    assert board.device == "cuda" and board.device_names == ["NVIDIA H100 80GB HBM3"]
    assert rows["alpha"]["latency_p50_ms"] == 0.8 and rows["alpha"]["latency_p99_ms"] == pytest.approx(0.96)
    assert rows["alpha"]["throughput"] == 21_333  # best inference images/s, train_step ignored
    assert rows["alpha"]["macs"] == 3_000_000 and rows["alpha"]["cost_source"] == "benchmark:bench.json"
    assert rows["beta"]["pareto_latency"] is True and rows["alpha"]["pareto_latency"] is True  # faster vs acc
    assert rows["beta"]["dominated_by_macs"] == "alpha"
    cpu = by_model(load_leaderboard(tmp_path / "r", benchmark_json=[bench], device="cpu"))
    assert cpu["beta"]["latency_p50_ms"] == 3.0 and cpu["alpha"]["latency_p50_ms"] is None
    rc, out, _ = run_cli(capsys, "leaderboard", "--results", str(tmp_path / "r"), "--benchmark-json", str(bench))
    assert rc == 0 and "| alpha" in out
    assert out.startswith("_cost on cuda: NVIDIA H100 80GB HBM3 (fp32), every cost cell from this one machine; "
                          "source: pytest-benchmark bench.json_\n")
    # beta's CPU figure is another machine's: a table of its own below the main one, never in it
    assert "\n## Cost on Intel(R) Xeon(R) Platinum 8480+ (2 threads) (fp32)\n" in out
    # Next to profile records, the line says which rows the benchmark file took over.
    write_store(tmp_path / "r", [train_record("gamma", 0, 0.9),
                                 profile_record("gamma", macs=1_000_000, p50=0.3, throughput=5000)])
    out = run_cli(capsys, "leaderboard", "--results", str(tmp_path / "r"), "--benchmark-json", str(bench))[1]
    assert "; source: pytest-benchmark bench.json for alpha, beta; profile records for the other rows_" in out
    assert "source: profile records_" in run_cli(capsys, "leaderboard", "--results", str(tmp_path / "r"))[1]
    # From a benchmark file alone (the default results dir does not exist): cost rows, untrained.
    rc, out, _ = run_cli(capsys, "leaderboard", "--benchmark-json", str(bench), "--format", "json")
    assert rc == 0 and {r["model"] for r in json.loads(out)} == {"alpha", "beta"}


def _entry_with(**extra) -> dict:
    entry = benchmark_entry("alpha", batch_size=1, p50=0.8, images_per_s=1250, macs=3_000_000)
    entry["extra_info"].update(extra)
    return entry


@pytest.mark.parametrize("benchmarks, message", [
    ([1], "benchmarks[0] is 1, not an object"),
    ([{"extra_info": "model=alpha"}], "benchmarks[0].extra_info is 'model=alpha', not an object"),
    ([_entry_with(), _entry_with(size="abc")], "benchmarks[1].extra_info.size is 'abc', not an integer"),
    ([_entry_with(batch_size=2.5)], "benchmarks[0].extra_info.batch_size is 2.5, not an integer"),
])
def test_malformed_benchmark_entries_are_one_line_errors(tmp_path, capsys, benchmarks, message):
    path = write_benchmark_json(tmp_path / "bench.json", benchmarks)
    rc, out, err = run_cli(capsys, "leaderboard", "--benchmark-json", str(path))
    assert rc == 2 and out == "" and err == f"error: {path}: {message}\n"


def test_bad_benchmark_json_is_one_line_error(tmp_path, capsys):
    (tmp_path / "x.json").write_text('{"not": "a benchmark"}')
    rc, out, err = run_cli(capsys, "leaderboard", "--benchmark-json", str(tmp_path / "x.json"))
    assert rc == 2 and err.startswith("error:") and err.count("\n") == 1 and "Traceback" not in err
    rc, out, err = run_cli(capsys, "leaderboard", "--benchmark-json", str(tmp_path / "missing.json"))
    assert rc == 2 and "not found" in err


@pytest.mark.parametrize("field", ["model", "size"])
def test_record_without_a_key_is_named_and_skipped(results, capsys, field):
    path = next(iter(sorted((results / "train").glob("big-*/record.json"))))
    rec = json.loads(path.read_text())
    if field == "model":
        del rec["model"]
    else:
        rec["size"] = "big"
    path.write_text(json.dumps(rec))
    rc, out, err = run_cli(capsys, "leaderboard", "--results", str(results))
    assert rc == 0 and err.count("\n") == 1
    assert err.startswith(f"warning: skipped train record {path}: ")
    assert ("no 'model' field" if field == "model" else "size 'big' is not int") in err
    assert by_model(load_leaderboard(results))["big"]["seeds"] == 2  # the other two seeds


def test_size_must_be_a_real_size(results, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["leaderboard", "--results", str(results), "--size", "0"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and "invalid choice: 0" in err and "28, 64" in err
    with pytest.raises(BloodbenchError, match="no finished training or profile records match size=0"):
        load_leaderboard(results, size=0)  # the API filters on 0 too, rather than ignoring it


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_empty_or_missing_results_dir(tmp_path, capsys, make):
    root = tmp_path / "res"
    if make == "empty":
        root.mkdir()
    rc, out, err = run_cli(capsys, "leaderboard", "--results", str(root))
    assert rc == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_default_results_dir_comes_from_env(tmp_path, monkeypatch, capsys):
    write_store(tmp_path / "published", base_records())
    monkeypatch.setenv("BLOODBENCH_RESULTS", str(tmp_path / "published"))
    rc, out, _ = run_cli(capsys, "leaderboard")
    assert rc == 0 and "| big" in out


def test_default_results_dir_falls_back_to_the_repository(tmp_path, monkeypatch, capsys):
    """--results > $BLOODBENCH_RESULTS > ./reports/results > the checkout's reports/results."""
    import bloodbench
    from bloodbench.store import results as results_mod

    assert results_mod.REPO_RESULTS == Path(bloodbench.__file__).resolve().parents[1] / "reports" / "results"
    write_store(tmp_path / "repo", [train_record("from_repo", 0, 0.9)])
    monkeypatch.setattr(results_mod, "REPO_RESULTS", tmp_path / "repo")
    monkeypatch.delenv("BLOODBENCH_RESULTS")
    monkeypatch.chdir(tmp_path)  # another cwd, without reports/results
    assert results_mod.resolve_results_dir() == tmp_path / "repo"
    rc, out, _ = run_cli(capsys, "leaderboard")
    assert rc == 0 and "| from_repo" in out

    write_store(tmp_path / "reports" / "results", [train_record("from_cwd", 0, 0.9)])
    assert "| from_cwd" in run_cli(capsys, "leaderboard")[1]
    write_store(tmp_path / "env", [train_record("from_env", 0, 0.9)])
    monkeypatch.setenv("BLOODBENCH_RESULTS", str(tmp_path / "env"))
    assert "| from_env" in run_cli(capsys, "leaderboard")[1]
    assert "| from_repo" in run_cli(capsys, "leaderboard", "--results", str(tmp_path / "repo"))[1]


def test_unknown_device_is_a_clear_error(results):
    with pytest.raises(BloodbenchError, match="no profile records on 'tpu'"):
        load_leaderboard(results, device="tpu")


def test_build_from_records_in_memory():
    board = build_leaderboard([train_record("m", 0, 0.9)], [])
    assert board.device is None and "no profile records for: m" in board.to_markdown()
    assert by_model(board)["m"]["params"] == 100_000  # params from the training record


def test_notes_are_numbered_in_one_place():
    from bloodbench.leaderboard.notes import Note, number_notes, superscript

    merged = pd.DataFrame({"model": ["a", "b"], "dataset": ["x", "x"], "size": [28, 28]})
    notes = [Note("dagger", {("a", "x", 28): "seed 1"}, mark="†"), Note("empty"),
             *[Note(f"n{i}", {("b", "x", 28): ""}, list_rows=False) for i in range(1, 11)]]
    lines, markers = number_notes(notes, merged)
    assert lines[0] == "¹ n1" and lines[9] == "¹⁰ n10" and lines[-1] == "† dagger: a (seed 1)"
    assert len(lines) == 11 and markers[("a", "x", 28)] == "†"
    assert markers[("b", "x", 28)] == "".join(superscript(i) for i in range(1, 11))
