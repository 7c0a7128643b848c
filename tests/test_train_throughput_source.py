"""The train (img/s) column: a quiet benchmark of the setting the row's seeds trained with where one is
committed beside the store (reports/benchmarks/ by reports/results), else the training records, named as a
contended sweep with its load; a benchmark of another model, setting or machine is never used."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
from conftest import REPO, run_cli
from records_factory import profile_record, row, train_record, write_store

from bloodbench.data import dataset_info
from bloodbench.leaderboard import load_leaderboard

COMMITTED = REPO / "reports" / "benchmarks" / "train_settings_cpu.json"
XEON = "Intel(R) Xeon(R) Processor (2 threads)"  # the committed file's machine


def _records(model: str = "baseline_cnn", *, precision: str = "bf16", channels_last: bool = True,
             batch_size: int = 128, load: float = 3.5, machine: str = XEON) -> list[dict]:
    """Three finished CPU seeds of ``model`` with this recipe setting, trained on ``machine`` under ``load``."""
    recs = []
    for seed, acc in enumerate((0.961, 0.964, 0.962)):
        rec = train_record(model, seed, acc, device="cpu")
        rec["config"].update(precision=precision, channels_last=channels_last, compile=False, batch_size=batch_size)
        rec["env"].update(device_name=machine, cpu_name=machine.split(" (")[0], cpu_threads=2)
        rec["resources"] = {"cpu_seconds": 100.0, "epochs_measured": 12, "load_avg_mean": load,
                            "load_avg_max": load + 1, "cpu_count": 2, "torch_threads": 2}
        recs.append(rec)
    return recs


def _committed(keep=lambda extra: True, edit=lambda extra: None) -> dict:
    """The committed quiet benchmark file, its entries filtered by ``keep`` and changed by ``edit``."""
    data = json.loads(COMMITTED.read_text())
    data["benchmarks"] = [b for b in data["benchmarks"] if keep(b["extra_info"])]
    for b in data["benchmarks"]:
        edit(b["extra_info"])
    return data


def _store(tmp_path: Path, records: list[dict], bench: dict | None = None) -> Path:
    """tmp/reports/results with the records, tmp/reports/benchmarks/ with the benchmark file (as committed)."""
    root = tmp_path / "reports" / "results"
    write_store(root, records)
    folder = tmp_path / "reports" / "benchmarks"
    folder.mkdir()
    if bench is None:
        shutil.copy(COMMITTED, folder / COMMITTED.name)
    else:
        (folder / COMMITTED.name).write_text(json.dumps(bench))
    return root


def _quiet_rate(model: str, setting: str) -> float:
    entry = next(b["extra_info"] for b in json.loads(COMMITTED.read_text())["benchmarks"]
                 if b["extra_info"]["model"] == model and b["extra_info"]["setting"] == setting)
    return dataset_info("bloodmnist", 28).n_samples["train"] / entry["epoch_s"]


def test_the_committed_quiet_benchmark_of_the_recipe_setting_is_shown_and_named(tmp_path):
    root = _store(tmp_path, _records())
    board = load_leaderboard(root)
    r = row(board, "baseline_cnn")
    assert r["train_throughput"] == pytest.approx(_quiet_rate("baseline_cnn", "bf16_channels_last"))
    assert r["train_throughput"] != pytest.approx(1195.9)  # not the records' 11,959 images per 10 s epoch
    source = r["train_throughput_source"]
    assert source == f"quiet benchmark (reports/benchmarks/train_settings_cpu.json, {XEON}, bf16+channels_last, batch 128)"
    legend = board.to_markdown()
    assert f"Train (img/s): training images per second, from {source}; a quiet benchmark's rate is the training " \
           "split's images ÷ its epoch_s, the median training step × the steps of one epoch: training steps only, " \
           "no data pipeline and no validation." in legend


def test_the_quiet_figure_is_in_the_csv_and_json_of_the_cli(tmp_path, capsys):
    root = _store(tmp_path, _records())
    code, out, _ = run_cli(capsys, "leaderboard", "--results", str(root), "--format", "json")
    assert code == 0
    r = next(x for x in json.loads(out) if x["model"] == "baseline_cnn")
    assert r["train_throughput"] == pytest.approx(_quiet_rate("baseline_cnn", "bf16_channels_last"))
    assert r["train_throughput_source"].startswith("quiet benchmark (reports/benchmarks/train_settings_cpu.json")
    code, out, _ = run_cli(capsys, "leaderboard", "--results", str(root), "--format", "csv")
    assert code == 0 and "train_throughput_source" in out.splitlines()[0] and "quiet benchmark (" in out


@pytest.mark.parametrize("recipe", [{"batch_size": 256}, {"precision": "fp16"}])
def test_no_quiet_setting_of_the_recipe_falls_back_to_the_records_named_contended(tmp_path, recipe):
    root = _store(tmp_path, _records(**recipe))
    r = row(load_leaderboard(root), "baseline_cnn")
    assert r["train_throughput"] == pytest.approx(1195.9)  # the records: 11,959 images per 10 s epoch
    assert r["train_throughput_source"].startswith(
        f"training records on {XEON} (contended sweep: mean load 3.50 on 2 cores; "
        "train images ÷ median epoch seconds, validation included)")


def test_a_quiet_machine_load_is_not_called_contended(tmp_path):
    root = _store(tmp_path, _records(batch_size=256, load=1.2))
    assert row(load_leaderboard(root), "baseline_cnn")["train_throughput_source"].startswith(
        f"training records on {XEON} (sweep at mean load 1.20 on 2 cores;")


@pytest.mark.parametrize("case", ["another model", "another setting", "another machine", "another size"])
def test_a_benchmark_of_another_model_setting_or_machine_is_never_used(tmp_path, case):
    def keep(extra):
        if case == "another model":
            return extra["model"] != "baseline_cnn"
        if case == "another setting":
            return extra["model"] == "baseline_cnn" and extra["setting"] != "bf16_channels_last"
        return extra["model"] == "baseline_cnn"

    def edit(extra):
        if case == "another machine":
            extra["device_name"] = "AMD EPYC (2 threads)"  # neither the table's machine nor the trained one
        if case == "another size":
            extra["size"] = 64

    root = _store(tmp_path, _records(), _committed(keep, edit))
    r = row(load_leaderboard(root), "baseline_cnn")
    assert r["train_throughput"] == pytest.approx(1195.9)
    assert r["train_throughput_source"].startswith(f"training records on {XEON} (contended sweep")


def test_the_tables_own_machine_is_preferred_and_named(tmp_path):
    """Seeds trained on one Xeon, the table's cost on another machine that has its own quiet benchmark: that
    one is shown, named; without it the training machine's benchmark is."""
    table = "AMD EPYC (2 threads)"
    bench = _committed(lambda extra: extra["model"] == "baseline_cnn")
    mine = copy.deepcopy(bench["benchmarks"])
    for b in mine:
        b["extra_info"].update(device_name=table, epoch_s=b["extra_info"]["epoch_s"] * 2)
    bench["benchmarks"] += mine
    profile = profile_record("baseline_cnn", device="cpu", macs=21_000_000, p50=2.0, throughput=500, device_name=table)
    root = _store(tmp_path, _records() + [profile], bench)
    board = load_leaderboard(root)
    r = row(board, "baseline_cnn")
    assert board.machine_name() == table
    assert r["train_throughput"] == pytest.approx(_quiet_rate("baseline_cnn", "bf16_channels_last") / 2)
    assert f"train_settings_cpu.json, {table}, bf16+channels_last" in r["train_throughput_source"]


def test_gpu_trained_seeds_in_a_cpu_table_get_the_cpu_rate_of_their_recipe(tmp_path):
    """Seeds trained on an H200, the table's cost on the Xeon: the Xeon's quiet benchmark of the recipe's setting
    is the row's figure (a table's cost cells are one machine's), not the H200's records."""
    recs = _records(machine="NVIDIA H200")
    for rec in recs:
        rec["env"]["device"] = "cuda"
    profile = profile_record("baseline_cnn", device="cpu", macs=21_000_000, p50=2.0, throughput=500, device_name=XEON)
    board = load_leaderboard(_store(tmp_path, recs + [profile]))
    r = row(board, "baseline_cnn")
    assert board.machine_name() == XEON
    assert r["train_throughput"] == pytest.approx(_quiet_rate("baseline_cnn", "bf16_channels_last"))
    assert r["train_throughput_source"] == \
        f"quiet benchmark (reports/benchmarks/train_settings_cpu.json, {XEON}, bf16+channels_last, batch 128)"


def test_an_unreadable_file_in_the_benchmarks_folder_is_left_out_with_a_warning(tmp_path, capsys):
    root = _store(tmp_path, _records())
    (root.parent / "benchmarks" / "notes.json").write_text("{not json")
    r = row(load_leaderboard(root), "baseline_cnn")
    assert r["train_throughput_source"].startswith("quiet benchmark (")
    assert "quiet benchmarks: benchmark JSON" in capsys.readouterr().err


def test_an_entry_without_a_finite_epoch_time_is_left_out(tmp_path, capsys):
    def edit(extra):
        extra["epoch_s"] = None

    root = _store(tmp_path, _records(), _committed(lambda e: e["model"] == "baseline_cnn", edit))
    r = row(load_leaderboard(root), "baseline_cnn")
    assert r["train_throughput_source"].startswith("training records on")
    assert "epoch_s None, not a finite number > 0" in capsys.readouterr().err


def test_the_legend_names_each_rows_source_and_defines_the_quiet_rate_once(tmp_path):
    root = _store(tmp_path, _records() + _records("encoder_cnn", batch_size=256, load=3.0))
    legend = load_leaderboard(root).to_markdown()
    line = next(x for x in legend.splitlines() if x.startswith("Train (img/s):"))
    assert (f"quiet benchmark (reports/benchmarks/train_settings_cpu.json, {XEON}, bf16+channels_last, batch 128) "
            "for baseline_cnn" in line)
    assert (f"training records on {XEON} (contended sweep: mean load 3.00 on 2 cores; train images ÷ median epoch "
            "seconds, validation included) for encoder_cnn" in line)
    assert line.count("a quiet benchmark's rate is") == 1


def test_train_time_names_the_machine_each_rows_seeds_trained_on(tmp_path, capsys):
    """A row trained on the H200 in the Xeon's table: its train time is the H200's wall clock, and the legend
    and the JSON say so, rather than letting it read as a Xeon cost beside the others."""
    gpu = _records("baseline_cnn", machine="NVIDIA H200")
    for rec in gpu:
        rec["env"]["device"] = "cuda"
    recs = gpu + _records("encoder_cnn") + _records("cnn_attention")
    profiles = [profile_record(m, device="cpu", macs=21_000_000, p50=2.0, throughput=500, device_name=XEON)
                for m in ("baseline_cnn", "encoder_cnn", "cnn_attention")]
    root = _store(tmp_path, recs + profiles)
    board = load_leaderboard(root)
    assert row(board, "baseline_cnn")["train_machine"] == "NVIDIA H200"
    assert row(board, "encoder_cnn")["train_machine"] == XEON
    line = next(x for x in board.to_markdown().splitlines() if x.startswith("Train (img/s):"))
    assert (f"Train time: wall clock of training, validation included, as the runs ran (on machines shared with "
            f"other work: not a quiet measurement), on the machine that trained the row's seeds: NVIDIA H200 for "
            f"baseline_cnn; {XEON} for the other rows (rows from different machines do not compare).") in line
    code, out, _ = run_cli(capsys, "leaderboard", "--results", str(root), "--format", "json")
    assert code == 0
    assert next(x for x in json.loads(out) if x["model"] == "baseline_cnn")["train_machine"] == "NVIDIA H200"


def test_train_time_of_one_machine_names_it_once(tmp_path):
    board = load_leaderboard(_store(tmp_path, _records() + _records("encoder_cnn")))
    line = next(x for x in board.to_markdown().splitlines() if x.startswith("Train (img/s):"))
    assert line.endswith(f"not a quiet measurement), on {XEON}.")
