"""A hardened results store and ingest (issue 15): no traceback and no silently wrong number.

Malformed or duplicate records, runs that learned nothing or did not converge, foreign
pytest-benchmark entries, unwritable results folders, torn predictions, file modes.
"""

from __future__ import annotations

import json
import os
import re
import stat

import numpy as np
import pytest
from conftest import run_cli
from records_factory import (
    THREE_SEEDS_ACCS,
    benchmark_entry,
    profile_record,
    row,
    three_seed_store,
    train_record,
    write_benchmark_json,
    write_store,
)

from bloodbench.leaderboard import load_leaderboard
from bloodbench.store import verdicts
from bloodbench.store.fsutil import atomic_write_bytes
from bloodbench.store.predictions import load_predictions, save_predictions
from bloodbench.store.results import ResultsStore

ACCS = THREE_SEEDS_ACCS




@pytest.fixture
def store(tmp_path):
    return three_seed_store(tmp_path / "r")


# -- records ---------------------------------------------------------------------------
@pytest.mark.parametrize("content", [[1, 2], None, "hi", {"kind": "train"}])
def test_a_record_that_is_not_a_record_is_one_warning_and_skipped(store, capsys, content):
    path = store / "train" / "junk" / "record.json"
    path.parent.mkdir()
    path.write_text(json.dumps(content))
    rc, out, err = run_cli(capsys, "leaderboard", "--results", store)
    assert rc == 0 and "| m" in out and "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith(f"warning: skipped train record {path}: ")


def test_a_record_without_seed_is_skipped_by_report(store, tmp_path, capsys):
    path = next((store / "train").glob("m-*s1-*/record.json"))
    rec = json.loads(path.read_text())
    del rec["seed"]
    path.write_text(json.dumps(rec))
    rc, out, err = run_cli(capsys, "report", "--results", store, "--out", tmp_path / "out")
    assert rc == 0 and f"warning: skipped train record {path}: no 'seed' field" in err
    assert re.search(r"^\| m\S* +\| 2 ", (tmp_path / "out" / "README.md").read_text(), re.M)
    assert row(load_leaderboard(store), "m")["seeds"] == 2


def test_a_copied_record_without_test_does_not_replace_the_real_run(store, capsys):
    """The issue's case: a copy with status finished and no test silently replaced seed 0."""
    real = next((store / "train").glob("m-*s0-*/record.json"))
    rec = json.loads(real.read_text())
    del rec["test"]
    rec["written_at"] = rec["finished_at"] = "2030-01-01T00:00:00+00:00"  # newer than the real one
    copy = store / "train" / "copy" / "record.json"
    copy.parent.mkdir()
    copy.write_text(json.dumps(rec))
    board = load_leaderboard(store)
    err = capsys.readouterr().err
    assert f"warning: skipped train record {copy}: status is 'finished' but it has no test accuracy" in err
    r = row(board, "m")
    assert r["seeds"] == 3 and r["acc_mean"] == pytest.approx(np.mean(ACCS))


def test_duplicate_run_ids_are_loud_and_the_finished_newest_wins(store, capsys):
    real = next((store / "train").glob("m-*s0-*/record.json"))
    rec = json.loads(real.read_text())
    newer = dict(rec, written_at="2030-01-01T00:00:00+00:00", finished_at="2030-01-01T00:00:00+00:00",
                 test=dict(rec["test"], acc=0.99))
    older = dict(rec, written_at="2020-01-01T00:00:00+00:00", finished_at="2020-01-01T00:00:00+00:00",
                 test=dict(rec["test"], acc=0.10))
    for name, r in (("a_newer", newer), ("z_older", older)):
        (store / "train" / name).mkdir()
        (store / "train" / name / "record.json").write_text(json.dumps(r))
    board = load_leaderboard(store)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith(f"warning: duplicate train run_id {rec['run_id']} in ")
                                 for line in err)
    assert all(str(store / "train" / "a_newer" / "record.json") in line for line in err)
    r = row(board, "m")  # seed 0 is the newest copy; still 3 seeds, the count matches the mean
    assert r["seeds"] == 3 and r["acc_mean"] == pytest.approx(np.mean([0.99, *ACCS[1:]]))
    assert row(load_leaderboard(store), "m")["acc_mean"] == r["acc_mean"]  # deterministic


# -- runs that learned nothing or did not converge --------------------------------------
def test_a_run_that_learned_nothing_is_left_out_with_a_footnote(store, capsys):
    """The issue's case: --lr 100 finished with 13.7 % test accuracy."""
    write_store(store, [train_record("m", 3, 0.137)])
    board = load_leaderboard(store)
    r = row(board, "m")
    assert r["seeds"] == 3 and r["acc_mean"] == pytest.approx(np.mean(ACCS))
    text = board.to_markdown()
    assert "learned nothing (val accuracy ≤ 1.5 × the majority-class rate), not averaged in: m (seed 3)" in text
    rec = ResultsStore(store).get("train", train_record("m", 3, 0.137)["run_id"])
    assert rec["learned_nothing"] is True and verdicts.chance_rate(rec) == pytest.approx(333 / 1711)


def test_learned_nothing_rule():
    rec = train_record("m", 0, 0.9)
    assert not verdicts.learned_nothing(rec)
    rec["val"]["acc"] = 1.5 * 333 / 1711  # at the line: flagged
    assert verdicts.learned_nothing(rec)
    del rec["val"]["per_class"]  # no class counts: chance is 1 / num_classes
    rec["val"]["acc"] = 0.18
    assert verdicts.learned_nothing(rec) and not verdicts.learned_nothing({**rec, "status": "diverged"})


@pytest.mark.parametrize("val_accs, expected", [
    ([0.5, 0.8, 0.9, 0.95, 0.955, 0.9555, 0.955, 0.954, 0.955, 0.9552], True),  # +0.02 pt in the last 20 %
    ([0.5, 0.8, 0.9, 0.93, 0.94, 0.945, 0.95, 0.952, 0.955, 0.96], False),  # still +0.8 pt
    ([0.9, 0.9, 0.9, 0.9], False),  # too few epochs to tell
])
def test_convergence_rule_on_history(val_accs, expected):
    rec = train_record("m", 0, 0.95, stop_reason="epoch_budget")
    rec["history"] = [{"epoch": i + 1, "val_acc": a} for i, a in enumerate(val_accs)]
    assert verdicts.converged(rec) is expected
    assert verdicts.converged({**rec, "stop_reason": "converged"})  # early stopping: converged


def test_rows_averaging_unconverged_runs_are_marked(tmp_path):
    recs = [train_record("m", s, 0.95, stop_reason="converged") for s in range(2)]
    still_climbing = train_record("m", 2, 0.95, stop_reason="epoch_budget")
    still_climbing["history"] = [{"epoch": i + 1, "val_acc": 0.5 + 0.04 * i} for i in range(10)]
    recs.append(still_climbing)
    recs.append(train_record("n", 0, 0.93, stop_reason="converged"))
    write_store(tmp_path, recs)
    board = load_leaderboard(tmp_path)
    text = board.to_markdown()
    assert re.search(r"^\| m¹†", text, re.M) and re.search(r"^\| n¹ ", text, re.M)  # ¹: no profile
    assert "† averages seeds not converged: neither stopped early on patience nor plateaued (" in text and "): m (seed 2)" in text
    assert row(board, "m")["unconverged_seeds"] == 1 and row(board, "n")["unconverged_seeds"] == 0


# -- pytest-benchmark JSON ----------------------------------------------------------------
def test_a_foreign_benchmark_file_cannot_take_over_the_table(store, tmp_path, capsys):
    """The issue's case: one entry for resnet18 on cuda at imagenet 224 px switched the table."""
    path = tmp_path / "foreign.json"
    path.write_text(json.dumps({"datetime": "2031-01-01T00:00:00", "machine_info": {"node": "x"}, "benchmarks": [
        {"stats": {"median": 0.5}, "extra_info": {"model": "m", "device": "cuda", "dataset": "imagenet",
                                                   "size": 224}}]}))
    before = load_leaderboard(store).to_markdown()
    capsys.readouterr()
    rc, out, err = run_cli(capsys, "leaderboard", "--results", store, "--benchmark-json", path)
    assert rc == 0 and out == before
    assert err.startswith(f"warning: left out 1 of 1 entries of {path}, not from bloodbench's benchmark suite "
                          f"(machine_info lacks ") and err.count("\n") == 1


def test_foreign_entries_in_a_bloodbench_file_are_left_out(store, tmp_path, capsys):
    path = write_benchmark_json(tmp_path / "b.json", [
        benchmark_entry("m", batch_size=1, p50=20.0, images_per_s=50, macs=21_000_000, device="cpu"),
        {"stats": {"median": 0.5}, "extra_info": {"model": "m"}}])
    board = load_leaderboard(store, benchmark_json=[path])
    err = capsys.readouterr().err
    assert "left out 1 of 2 entries" in err and "benchmarks[1] (m): extra_info kind None" in err
    assert row(board, "m")["latency_p50_ms"] == 22.0  # the profile record


def test_a_benchmark_never_overrides_a_profile_and_conflicts_are_reported(store, tmp_path, capsys):
    """The issue's case: {"model": "resnet18"} with a newer date replaced 21.996 ms with 500 ms."""
    path = write_benchmark_json(tmp_path / "b.json", [
        benchmark_entry("m", batch_size=1, p50=500.0, images_per_s=2, macs=21_000_000, device="cpu")],
        when="2031-01-01T00:00:00")
    board = load_leaderboard(store, benchmark_json=[path])
    err = capsys.readouterr().err
    assert row(board, "m")["latency_p50_ms"] == 22.0 and row(board, "m")["cost_source"] == "profile"
    assert "warning: cost conflict for m (bloodmnist 28px, cpu fp32): b.json says p50 500.000 ms vs 22.000 ms" in err
    text = board.to_markdown()
    assert "| m¹" in text and "¹ cost measured on this machine by two sources that disagree: m (b.json says p50 500.000 ms" in text


def test_benchmark_entries_on_another_device_or_size_do_not_switch_the_table_silently(store, tmp_path, capsys):
    path = write_benchmark_json(tmp_path / "b.json", [
        benchmark_entry("m", batch_size=1, p50=0.5, images_per_s=2000, macs=21_000_000, device="cuda"),
        benchmark_entry("m", batch_size=1, p50=9.0, images_per_s=100, macs=400_000_000, device="cpu", size=224)])
    board = load_leaderboard(store, benchmark_json=[path])
    err = capsys.readouterr().err
    assert board.device == "cpu"  # the profiled device, not the benchmark's cuda
    assert "b.json was measured on NVIDIA H100 80GB HBM3 fp32, not the table's Intel(R) Xeon(R) Platinum 8480+ " \
           "(2 threads) fp32: its figures are a table of their own" in err
    assert "b.json adds a bloodmnist 224px section that has no training or profile records" in err
    assert load_leaderboard(store, benchmark_json=[path], device="cuda").device == "cuda"  # when asked


def test_throughput_note_names_the_batch_of_the_peak(tmp_path, capsys):
    path = write_benchmark_json(tmp_path / "b.json", [
        benchmark_entry("m", batch_size=1, p50=1.0, images_per_s=1000, macs=1_000_000, device="cpu"),
        benchmark_entry("n", batch_size=1, p50=1.0, images_per_s=1000, macs=1_000_000, device="cpu"),
        benchmark_entry("n", batch_size=64, p50=10.0, images_per_s=6400, macs=1_000_000, device="cpu")])
    write_store(tmp_path / "r", [train_record("m", 0, 0.9), train_record("n", 0, 0.9)])
    board = load_leaderboard(tmp_path / "r", benchmark_json=[path])
    assert row(board, "n")["throughput_batch_size"] == 64 and row(board, "m")["throughput_batch_size"] == 1
    assert ("throughput: best images/s over the batch sizes measured, reached at batch 1 (batch 64 for n)"
            in board.to_markdown())


def test_train_throughput_from_train_step_entries_or_records(tmp_path):
    path = write_benchmark_json(tmp_path / "b.json", [
        benchmark_entry("m", batch_size=1, p50=1.0, images_per_s=1000, macs=1_000_000, device="cpu"),
        benchmark_entry("m", batch_size=32, p50=80.0, images_per_s=400, macs=1_000_000, device="cpu",
                        kind="train_step")])
    write_store(tmp_path / "r", [train_record("m", 0, 0.9), train_record("n", 0, 0.9),
                                 profile_record("m", device="cpu", macs=1_000_000, p50=1.01, throughput=990)])
    board = load_leaderboard(tmp_path / "r", benchmark_json=[path], device="cpu")
    m, n = row(board, "m"), row(board, "n")
    assert m["cost_source"] == "profile" and m["train_throughput"] == 400  # a profile has no train rate
    assert m["train_throughput_source"].startswith("pytest-benchmark b.json train_step on Intel(R) Xeon(R) Platinum 8480+ (2 threads), batch 32")
    # the factory's records: 11,959 train images, 10 s per epoch
    assert n["train_throughput"] == pytest.approx(1195.9) and n["train_throughput_source"].startswith("training records on NVIDIA H100 80GB HBM3")
    text = board.to_markdown()
    assert "train (img/s)" in text and "1,196" in text and "Train (img/s): training images per second, from " in text


# -- writing --------------------------------------------------------------------------------
def _unwritable(tmp_path, case: str):
    if case == "file":
        (tmp_path / "file").write_text("x")
        return tmp_path / "file"
    if case == "under a file":
        (tmp_path / "file").write_text("x")
        return tmp_path / "file" / "results"
    if case == "proc":
        return "/proc/bloodbench-results"
    if os.geteuid() == 0:
        pytest.skip("root writes to read-only folders")
    (tmp_path / "ro").mkdir(mode=0o555)
    return tmp_path / "ro" / "results"


@pytest.mark.parametrize("case", ["file", "under a file", "proc", "read-only"])
@pytest.mark.parametrize("argv", [
    ["train", "baseline_cnn", "--epochs", "1", "--limit-train", "64", "--quiet"],
    ["run", "--models", "baseline_cnn", "--seeds", "0", "--epochs", "1", "--limit-train", "64", "--no-profile",
     "--no-report"],
    ["profile", "baseline_cnn", "--iters", "1", "--warmup", "0"],
])
def test_unwritable_results_is_one_error_before_any_work(tmp_path, capsys, monkeypatch, case, argv):
    from bloodbench.train import trainer

    monkeypatch.setattr(trainer.Trainer, "setup", lambda self: pytest.fail("work started"))
    results = _unwritable(tmp_path, case)
    rc, _, err = run_cli(capsys, *argv, "--results", results)
    assert rc == 2 and err.count("\n") == 1
    assert err.startswith(f"error: cannot write to results directory {results}: ") and "--results" in err


@pytest.mark.parametrize("case", ["file", "under a file", "proc"])
def test_unwritable_leaderboard_output_is_one_error(store, tmp_path, capsys, case):
    target = _unwritable(tmp_path, case)
    rc, out, err = run_cli(capsys, "leaderboard", "--results", store, "-o", f"{target}/board.md")
    assert rc == 2 and out == "" and err.count("\n") == 1 and err.startswith("error: cannot write to output folder")


def test_a_torn_predictions_file_is_one_error_naming_it(store, capsys):
    rec = train_record("m", 0, ACCS[0])
    npz = ResultsStore(store).run_dir(rec["run_id"]) / "test_predictions.npz"
    npz.write_bytes(b"PK\x03\x04 torn")
    rc, out, err = run_cli(capsys, "evaluate", "m", "--seed", "0", "--results", store)
    assert rc == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"error: {npz} is unreadable (") and "--seed 0 --force" in err and "or delete" in err


def test_writes_follow_the_umask_and_sync_the_folder(tmp_path, monkeypatch):
    from bloodbench.store import fsutil

    synced = []
    monkeypatch.setattr(fsutil, "fsync_dir", lambda path: synced.append(path))
    old = os.umask(0o077)
    try:
        atomic_write_bytes(tmp_path / "private", b"x")
        os.umask(0o002)
        save_predictions(tmp_path / "p.npz", np.array([0, 1]), np.eye(2))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "p.npz").stat().st_mode) == 0o664
    assert synced == [tmp_path, tmp_path]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left
    y_true, y_score = load_predictions(tmp_path / "p.npz")
    assert y_true.tolist() == [0, 1] and y_score.dtype == np.float32


def test_report_of_a_model_whose_every_run_learned_nothing(tmp_path, capsys):
    write_store(tmp_path / "r", [train_record("m", 0, 0.95, stop_reason="converged"), train_record("z", 0, 0.12)])
    rc, _, err = run_cli(capsys, "report", "--results", tmp_path / "r", "--out", tmp_path / "out")
    assert rc == 0 and "Traceback" not in err
    card = (tmp_path / "out" / "models" / "z.md").read_text()
    assert "| 0      | learned nothing | yes " in card and "Test accuracy **" not in card
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "not averaged in: z (seed 0)" in readme and "| m¹ " in readme
