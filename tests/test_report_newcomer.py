"""The report read as a newcomer (issue 20 item 3): latency budgets for the machines measured, the †
footnote stated as what happened, a front on the parameters plot, a short Environment table, spreads
that never print as ± 0.000, and the training recipe on each model card."""

from __future__ import annotations

import pytest
from records_factory import profile_record, train_record, write_store

from bloodbench.formatting import mean_std
from bloodbench.leaderboard import load_leaderboard
from bloodbench.report import build, plots, write_report
from bloodbench.report.environment import environment_table
from bloodbench.report.pick import pick_section
from bloodbench.store.results import REPO_RESULTS


def test_pick_offers_latency_budgets_for_each_machine_with_figures():
    board = load_leaderboard(REPO_RESULTS)
    machines = build.machine_boards(board, lambda name, prec: load_leaderboard(REPO_RESULTS, device=name,
                                                                               precision=prec))
    text = "\n".join(pick_section(board, machines))
    assert "GPU latency" not in text and "no GPU latency recorded" not in text
    for name, b in machines.items():
        assert b.device_names == [name]
        budgets = [line for line in text.splitlines() if f"batch-1 latency on {name} (" in line]
        assert len(budgets) == 2, name  # two budgets per machine, on its own figures
    cpu = next(line for line in text.splitlines() if "≤ 2 ms batch-1 latency on Intel(R) Xeon(R)" in line)
    latency = float(cpu.rstrip(" |").rsplit("|", 1)[1])
    assert latency <= 2.0  # the Xeon's own p50, not the H200's


def test_unconverged_footnote_says_what_happened(tmp_path):
    still_climbing = train_record("m", 0, 0.95, stop_reason="epoch_budget")
    still_climbing["history"] = [{"epoch": i + 1, "val_acc": 0.5 + 0.04 * i} for i in range(10)]
    write_store(tmp_path, [still_climbing])
    note = next(line for line in load_leaderboard(tmp_path).to_markdown().splitlines() if line.startswith("†"))
    assert note.startswith("† averages seeds not converged: neither stopped early on patience nor plateaued")
    assert "rule: stopped early" not in note


def test_parameters_plot_marks_its_front(tmp_path, monkeypatch):
    recs = [train_record("small_good", 0, 0.96, params=100_000), train_record("big_bad", 0, 0.94, params=1_000_000),
            profile_record("small_good", macs=1_000_000, p50=1.0, throughput=100, params=100_000),
            profile_record("big_bad", macs=2_000_000, p50=0.5, throughput=100, params=1_000_000)]
    write_store(tmp_path / "r", recs)
    calls = {}
    real = plots.scatter_tradeoff

    def spy(rows, x, **kw):
        calls[x] = (rows.copy(), kw.get("front"))
        return real(rows, x, **kw)

    monkeypatch.setattr(plots, "scatter_tradeoff", spy)
    write_report(tmp_path / "r", tmp_path / "out")
    rows, front = calls["params"]
    assert front == "pareto_params"
    on = dict(zip(rows["model"], rows[front]))
    assert bool(on["small_good"]) and not bool(on["big_bad"])  # big_bad is dominated on both axes: hollow


def test_environment_summarises_many_commits_and_kernels():
    recs = []
    for i in range(10):
        rec = train_record("m", i, 0.9, created_at=f"2025-01-{10 + i}T00:00:00+00:00")
        rec["env"]["git_commit"] = f"c{i:02d}" + ("-dirty" if i % 2 else "")
        rec["env"]["platform"] = f"Linux-6.{i % 4}"
        recs.append(rec)
    table = environment_table(recs, [])
    commits = next(line for line in table.splitlines() if line.startswith("| git commit"))
    assert "c09-dirty (the newest of 10; 5 with uncommitted changes)" in commits and "c00" not in commits
    kernel = next(line for line in table.splitlines() if line.startswith("| platform"))
    assert "Linux-6.1 (the newest of 4)" in kernel
    assert "| Python        | 3.11.9" in table  # one value: as is


@pytest.mark.parametrize("mean, std, spec, scale, text", [
    (0.999, 0.0004, ".3f", 1.0, "0.999 ± 0.0004"),
    (0.998, 0.00002, ".3f", 1.0, "0.998 ± 0.00002"),
    (0.975, 0.0014, ".3f", 1.0, "0.975 ± 0.001"),
    (0.9687, 0.0023, ".2f", 100, "96.87 ± 0.23"),
    (0.9, None, ".3f", 1.0, "0.900"),
])
def test_spreads_never_print_as_zero(mean, std, spec, scale, text):
    assert mean_std(mean, std, spec, scale) == text


def test_model_card_gives_the_training_recipe(tmp_path):
    recs = [train_record("m", s, 0.9, epochs=10 + s) for s in range(2)]
    for r in recs:
        r["config"].update(lr=0.003, schedule="plateau", batch_size=128, label_smoothing=0.05, augment=True,
                           color_jitter=0.1, epochs=60, patience=10, optimizer="adamw")
    write_store(tmp_path / "r", recs)
    write_report(tmp_path / "r", tmp_path / "out")
    card = (tmp_path / "out" / "models" / "m.md").read_text()
    section = card.split("### Training recipe", 1)[1].split("\n### ", 1)[0]
    row = next(line for line in section.splitlines() if line.startswith("| `"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    header = [c.strip() for c in section.split("\n")[2].strip("|").split("|")]
    got = dict(zip(header, cells))
    assert got["lr"] == "0.003" and got["schedule"].startswith("plateau") and got["batch size"] == "128"
    assert got["epochs run / budget"] == "10, 11 / 60" and got["label smoothing"] == "0.05"
    assert got["augmentation"].startswith("flips, 90° rotations") and got["in the leaderboard"] == "yes"


def test_model_card_marks_a_noisy_profile(tmp_path):
    noisy = profile_record("m", device="cpu", macs=1_000_000, p50=40.0, throughput=25)
    noisy["latency"]["noisy"] = True
    write_store(tmp_path / "r", [train_record("m", 0, 0.9), noisy,
                                 profile_record("m", macs=1_000_000, p50=0.5, throughput=2000)])
    write_report(tmp_path / "r", tmp_path / "out")
    card = (tmp_path / "out" / "models" / "m.md").read_text()
    assert "| 40.000 (noisy) " in card and "| 0.500 " in card and "0.500 (noisy)" not in card
