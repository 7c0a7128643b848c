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
    assert main(["evaluate", "baseline_cnn", "--results", str(REPO_RESULTS)]) == 0  # two recipes ran seeds 0-2
    out = capsys.readouterr().out
    assert "per class (mean over the 6 runs above; F1 per run):" in out and "F1 seed 0 (" in out
