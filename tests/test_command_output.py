"""What the commands print (issue 20 item 4): accuracy in percent everywhere, every seed's per-class figures,
durations a person reads, why a job is pending, and where the data is looked for."""

from __future__ import annotations

import re

from bloodbench.cli import main
from bloodbench.store.results import REPO_RESULTS, ResultsStore


def test_evaluate_prints_percent_and_every_seed_per_class(capsys):
    assert main(["evaluate", "resnet18", "--results", str(REPO_RESULTS)]) == 0
    out = capsys.readouterr().out
    finished = [r for r in ResultsStore(REPO_RESULTS).records("train")
                if r["model"] == "resnet18" and r["status"] == "finished"]
    seeds = sorted({r["seed"] for r in finished})
    for r in finished:  # percent with two decimals, as the leaderboard prints
        assert re.search(rf"^\| {r['seed']} +\| {100 * r['test']['acc']:.2f} ", out, re.M), r["run_id"]
    header = next(line for line in out.splitlines() if line.startswith("| class"))
    assert all(f"F1 seed {s}" in header for s in seeds)
    assert f"per class (mean over seeds {', '.join(map(str, seeds))}; F1 per seed)" in out
    assert main(["evaluate", "resnet18", "--seed", "1", "--results", str(REPO_RESULTS)]) == 0
    assert "per class (seed 1):" in capsys.readouterr().out
    assert main(["evaluate", "baseline_cnn", "--results", str(REPO_RESULTS)]) == 0  # several recipes ran seeds 0-2
    out = capsys.readouterr().out
    runs = [r for r in ResultsStore(REPO_RESULTS).records("train")
            if r["model"] == "baseline_cnn" and r["status"] == "finished"]
    assert len(runs) > len({r["seed"] for r in runs})
    assert f"per class (mean over the {len(runs)} runs above; F1 per run):" in out and "F1 seed 0 (" in out


def test_dry_run_says_why_each_job_is_pending_and_durations_read_as_durations(tmp_path, capsys):
    import torch

    from records_factory import profile_record, train_record, write_store

    from bloodbench.config import ProfileConfig
    from bloodbench.sweep import run

    here = ProfileConfig.build(device=torch.device("cpu"))
    old = profile_record("baseline_cnn", device="cpu", macs=20_000_000, p50=1.0, throughput=1000.0,
                         device_name=here.device_name)
    old["config"] = {**here.as_dict(), "rounds": 3, "round_s": 0.05}  # profiled with older settings
    other_seed = train_record("baseline_cnn", 0, 0.97, device="cpu")  # seed 0 under another recipe
    write_store(tmp_path, [old, other_seed])
    assert main(["run", "--models", "baseline_cnn,resnet18", "--seeds", "0,1", "--results", str(tmp_path),
                 "--profile-devices", "cpu", "--device", "cpu", "--dry-run"]) == 0
    out = capsys.readouterr().out
    row = {tuple(c.strip() for c in line.strip("|").split("|")[:3]): line for line in out.splitlines()
           if line.startswith("| ")}
    assert "settings changed since the last profile (round_s, rounds)" in row[("profile", "baseline_cnn", "")]
    assert "not profiled yet" in row[("profile", "resnet18", "")]
    assert "recipe changed since the last run of this seed" in row[("train", "baseline_cnn", "0")]
    assert "not trained yet" in row[("train", "baseline_cnn", "1")]
    assert not re.search(r"\d+:\d\d:\d\d", out) and re.search(r"about \d+ (h|min)", out)
    assert run.about(12 * 3600 + 30 * 60 + 56) == "about 12 h 31 min" and run.about(7200) == "about 2 h"


def test_leaderboard_columns_and_a_narrow_terminal_default(capsys):
    from bloodbench.choices import TERMINAL_COLUMNS
    from bloodbench.commands.leaderboard import shown_columns

    assert main(["leaderboard", "--results", str(REPO_RESULTS), "--columns", "acc,latency,graphs"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("| model"))
    cells = [c.strip() for c in header.strip("|").split("|")]
    assert cells[0] == "model" and cells[1] == "test acc (%)" and all("latency" in c for c in cells[2:])
    assert shown_columns(None, terminal=True) == list(TERMINAL_COLUMNS)  # a terminal: narrow by default
    assert shown_columns(None, terminal=False) is None and shown_columns("all", terminal=True) is None
    assert main(["leaderboard", "--results", str(REPO_RESULTS), "--columns", "acc,speed"]) == 2
    assert "unknown column(s) speed" in capsys.readouterr().err
    # a pipe or a file gets every column, as the report does
    assert main(["leaderboard", "--results", str(REPO_RESULTS)]) == 0
    full = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| model"))
    narrow = main(["leaderboard", "--results", str(REPO_RESULTS), "--columns", ",".join(TERMINAL_COLUMNS)])
    short = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| model"))
    assert narrow == 0 and len(short) < 0.45 * len(full) and "train time (s)" in full and "stop" in full
