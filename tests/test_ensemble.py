"""Ensemble and TTA rows from saved predictions, and the paired comparisons of the report."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from records_factory import profile_record, train_record

from bloodbench.formatting import device_label
from bloodbench.leaderboard import build_leaderboard, load_leaderboard
from bloodbench.leaderboard.ensemble import GREEDY, caruana_select, topk_by_val_acc, val_log_loss, weighted_average
from bloodbench.stats.paired import accuracy_ci, mcnemar_exact, paired_comparison
from bloodbench.stats.temperature import fit_temperature, scale_temperature
from bloodbench.store.predictions import load_predictions, save_predictions
from bloodbench.store.results import REPO_RESULTS, ResultsStore

N_CLASSES = 4


# --------------------------------------------------------------------------------------
# the committed records
# --------------------------------------------------------------------------------------
def test_ensemble_row_accuracy_is_recomputed_from_its_members_saved_predictions():
    rows = load_leaderboard(REPO_RESULTS).to_records()
    ensembles = [r for r in rows if r["kind"] == "ensemble"]
    assert ensembles and all(r["kind"] in ("model", "tta") for r in rows if r["family"] != "ensemble")
    assert "ensemble + TTA×8" in {r["model"] for r in ensembles}, "every committed member saved 8-view predictions"
    store = ResultsStore(REPO_RESULTS)
    for row in ensembles:
        tta = row["model"].endswith(" + TTA×8")  # selected on 8-view val, scored on 8-view test
        suffix = "_tta" if tta else ""
        weights = row["weights"] or [None] * len(row["members"])
        temps = row["temperatures"] or [None] * len(row["members"])
        by_seed: dict[int, list] = {}
        for run_id, w, t in zip(row["members"], weights, temps):
            seed = int(re.search(r"-s(\d+)-", run_id).group(1))
            y, score = load_predictions(store.run_dir(run_id) / f"test_predictions{suffix}.npz")
            if t is not None:  # each member's temperature is its val log-loss optimum
                y_val, val = load_predictions(store.run_dir(run_id) / f"val_predictions{suffix}.npz")
                assert t == pytest.approx(fit_temperature(y_val, val))
                nll = [-np.log(scale_temperature(val, t * f)[np.arange(len(y_val)), y_val]).mean() for f in (0.98, 1, 1.02)]
                assert nll[1] <= min(nll[0], nll[2])
                score = scale_temperature(score, t)
            by_seed.setdefault(seed, []).append((y, score, w))
        accs = []
        for members in by_seed.values():
            y = members[0][0]
            w = [1 / len(members) if w is None else w for _, _, w in members]
            p = sum(wi * s.astype(np.float64) for ((_, s, _), wi) in zip(members, w))
            accs.append(np.mean(p.argmax(1) == y))
        assert row["seeds"] == len(by_seed) and len(row["members"]) >= 2 * len(by_seed)
        assert abs(np.mean(accs) - row["acc_mean"]) < 1e-9
        # cost: the members' MACs summed (each distinct model once), under the row's budget
        macs = {r["model"]: r["macs"] for r in rows if r["kind"] == "model"}
        seed_macs = [sum({macs[rid.split("-bloodmnist")[0]] for rid in row["members"] if f"-s{s}-" in rid})
                     for s in by_seed]
        assert row["macs"] == (8 if tta else 1) * max(seed_macs)
        budget = re.search(r"≤(\d+)M", row["model"])
        if budget:
            assert row["macs"] <= float(budget.group(1)) * 1e6


def test_committed_tta_rows_are_recomputed_from_saved_tta_predictions():
    """baseline_cnn's runs saved 8-view TTA predictions: its TTA row is their mean accuracy, at 8x the cost."""
    rows = load_leaderboard(REPO_RESULTS).to_records()
    tta = [r for r in rows if r["kind"] == "tta"]
    assert tta, "the committed baseline_cnn runs carry TTA predictions"
    store = ResultsStore(REPO_RESULTS)
    for row in tta:
        accs = []
        for run_id in row["members"]:
            y, score = load_predictions(store.run_dir(run_id) / "test_predictions_tta.npz")
            accs.append(np.mean(score.argmax(1) == y))
        assert row["seeds"] == len(row["members"]) and abs(np.mean(accs) - row["acc_mean"]) < 1e-9
        plain = next(r for r in rows if r["kind"] == "model" and r["model"] == row["model"].split(" + ")[0])
        assert row["macs"] == 8 * plain["macs"]


def test_committed_report_says_how_ensembles_were_chosen_and_offers_latency_budgets_per_machine():
    readme = (REPO_RESULTS.parent / "README.md").read_text()
    assert "## Which model should I pick" in readme
    machines = {device_label(r.get("device_name")) for r in ResultsStore(REPO_RESULTS).iter_records("profile")}
    for name in machines:  # a latency budget for every machine measured, none for one that was not
        assert re.search(rf"^\| ≤ [\d.]+ ms batch-1 latency on {re.escape(name)} \(", readme, re.M), name
    assert "GPU latency" not in readme
    store = ResultsStore(REPO_RESULTS)
    members = {m for r in load_leaderboard(REPO_RESULTS).to_records() if r["kind"] == "ensemble" for m in r["members"]}
    assert members, "the committed report has ensembles"
    test_only = {m for m in members if not (store.run_dir(m) / "val_predictions.npz").is_file()}
    # greedy selection on val predictions where every member has them; the fallback is said only while one lacks them
    assert ("test-only members" in readme and "recorded val acc" in readme) == bool(test_only), sorted(test_only)
    assert "greedy forward selection" in readme
    if not test_only:
        assert GREEDY in readme and "temperature-scaled" in readme


# --------------------------------------------------------------------------------------
# selection sees validation only
# --------------------------------------------------------------------------------------
def _onehot(y: np.ndarray, conf: float) -> np.ndarray:
    p = np.full((len(y), N_CLASSES), (1 - conf) / (N_CLASSES - 1))
    p[np.arange(len(y)), y] = conf
    return p


def _scores(y: np.ndarray, right: np.ndarray, conf: float = 0.7) -> np.ndarray:
    """Probabilities that put ``conf`` on the true class where ``right``, else on the next class."""
    return _onehot(np.where(right, y, (y + 1) % N_CLASSES), conf).astype(np.float32)


def test_greedy_selection_with_replacement_on_hand_made_val_scores():
    y = np.arange(12) % N_CLASSES
    good = _scores(y, np.arange(12) != 0)          # 11/12 right
    mid = _scores(y, np.arange(12) % 4 != 1)       # 9/12 right, errors elsewhere
    bad = _scores(y, np.zeros(12, bool))           # all wrong
    counts = caruana_select([bad, mid, good], y)
    assert counts[0] == 0 and counts[1] >= 1 and counts[2] > 1  # picked again: with replacement
    from sklearn.metrics import log_loss
    mix = weighted_average([bad, mid, good], counts)
    assert log_loss(y, mix / mix.sum(1, keepdims=True)) < log_loss(y, good / good.sum(1, keepdims=True))  # better on val than the best single candidate
    # a budget that leaves room for one of the two only
    counts = caruana_select([bad, mid, good], y, costs=[1, 1, 5], budget=2)
    assert counts[2] == 0 and counts[1] >= 1
    # by accuracy: mid and good disagree only on 4 images, where their average ties and argmax takes
    # the lower class, the true one here: 12/12 beats good's 11/12
    assert caruana_select([mid, good], y, metric="acc") == [1, 1]
    assert caruana_select([good, good], y, metric="acc") == [1, 0]  # no gain from a second pick: stays small
    with pytest.raises(ValueError):
        caruana_select([mid], y, metric="f1")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_greedy_loss_is_sklearns_log_loss(dtype):
    """The selection's log-loss skips sklearn's input checks for speed; its value must stay sklearn's, on
    float32 rows that sum to 1 only to rounding, and with a zero probability on the true class."""
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(8) * 0.3, size=500).astype(dtype)
    y = rng.integers(0, 8, size=500)
    p[0] = 0.0
    p[0, (y[0] + 1) % 8] = 1.0
    want = log_loss(y, np.clip(p, 1e-12, 1) / np.clip(p, 1e-12, 1).sum(1, keepdims=True), labels=list(range(8)))
    assert val_log_loss(y, p) == pytest.approx(want, rel=1e-9)


def test_temperature_scaling_lets_the_more_accurate_but_less_confident_run_win_the_selection():
    """Raw log-loss rewards confidence: a 90 % run sure of itself beats a 95 % run that hedges (as label
    smoothing makes a run hedge). Scaled to its val temperature first, the more accurate run leads."""
    n = 400
    y = np.arange(n) % N_CLASSES
    sure = _scores(y, np.arange(n) % 10 != 0, conf=0.97)
    hedging = _scores(y, np.arange(n) % 20 != 1, conf=0.4)
    raw = caruana_select([sure, hedging], y)
    assert raw[0] > raw[1]
    temps = [fit_temperature(y, p) for p in (sure, hedging)]
    assert temps[0] > 1 > temps[1]
    scaled = caruana_select([scale_temperature(p, t) for p, t in zip((sure, hedging), temps)], y)
    assert scaled[1] > scaled[0]


def test_fallback_ranks_by_recorded_val_accuracy_within_the_budget():
    assert topk_by_val_acc([0.9, 0.95, 0.8, 0.97], k=3) == [1, 1, 0, 1]
    assert topk_by_val_acc([0.9, 0.95, 0.8, 0.97], k=3, costs=[1, 10, 1, 1], budget=3) == [1, 0, 1, 1]


def _store(tmp_path, test_truth_flip: bool, *, val: bool = True, tta: bool = False):
    """Three models, two seeds, saved predictions. On val, a and b are right on different halves (a good
    pair) and c is alone best; on test the opposite holds, or with ``test_truth_flip`` c looks perfect."""
    rng = np.random.default_rng(0)
    store = ResultsStore(tmp_path)
    n_val, n_test = 200, 300
    y_val, y_test = rng.integers(0, N_CLASSES, n_val), rng.integers(0, N_CLASSES, n_test)
    half_v, half_t = np.arange(n_val) < n_val // 2, np.arange(n_test) < n_test // 2
    right_val = {"a": half_v | (np.arange(n_val) % 5 == 0), "b": ~half_v | (np.arange(n_val) % 5 == 1),
                 "c": np.arange(n_val) % 4 != 0}
    right_test = {"a": half_t, "b": ~half_t, "c": np.ones(n_test, bool) if test_truth_flip else half_t}
    val_acc = {"a": 0.9, "b": 0.8, "c": 0.95}
    recs, profs = [], []
    for m, macs in (("a", 10e6), ("b", 12e6), ("c", 30e6)):
        profs.append(profile_record(m, macs=int(macs), p50=1.0 + macs / 1e7, throughput=1000.0))
        for seed in (0, 1):
            rec = train_record(m, seed, 0.9)
            rec["val"]["acc"] = val_acc[m]
            # the record fits its files: they are checked against its classes and images
            rec["num_classes"], rec["val"]["n"], rec["test"]["n"] = N_CLASSES, n_val, n_test
            rec["data"].update(n_val=n_val, n_test=n_test)
            run_dir = store.run_dir(rec["run_id"])
            conf = {"a": 0.6, "b": 0.6, "c": 0.9}[m]
            save_predictions(run_dir / "test_predictions.npz", y_test, _scores(y_test, right_test[m], conf))
            arts = {"predictions": "test_predictions.npz", "test_predictions": "test_predictions.npz"}
            if val:
                save_predictions(run_dir / "val_predictions.npz", y_val, _scores(y_val, right_val[m], conf))
                arts["val_predictions"] = "val_predictions.npz"
            if tta:
                save_predictions(run_dir / "test_predictions_tta.npz", y_test, _scores(y_test, right_test[m] | (
                    np.arange(n_test) % 3 == 0), conf))
                arts["test_predictions_tta"] = "test_predictions_tta.npz"
                if val:
                    save_predictions(run_dir / "val_predictions_tta.npz", y_val, _scores(y_val, right_val[m] | (
                        np.arange(n_val) % 3 == 0), conf))
                    arts["val_predictions_tta"] = "val_predictions_tta.npz"
            rec["artifacts"] = arts
            store.write(rec)
            recs.append(rec)
    return recs, profs


def _ensembles(board) -> dict[str, dict]:
    return {r["model"]: r for r in board.to_records() if r["kind"] == "ensemble"}


@pytest.mark.parametrize("val", [True, False], ids=["greedy-on-val", "fallback-on-recorded-val-acc"])
def test_ensemble_selection_never_reads_test(tmp_path, val):
    chosen = []
    for flip in (False, True):
        root = tmp_path / str(flip)
        recs, profs = _store(root, flip, val=val)
        board = build_leaderboard(recs, profs, results_root=root)
        ens = _ensembles(board)
        assert ens, "no ensemble row"
        chosen.append({k: (r["members"], r["weights"], r["temperatures"]) for k, r in ens.items()})
        assert all((r["temperatures"] is not None) is val for r in ens.values())  # no val: nothing to fit on
        assert {r["recipe"] for r in ens.values()} == ({GREEDY} if val else {"top-3 recorded val acc"})
        assert ("test-only members" in board.to_markdown()) is (not val)
    assert chosen[0] == chosen[1]  # test labels and scores that would change the choice did not


def test_greedy_rows_follow_the_val_data_and_honour_the_budget(tmp_path):
    recs, profs = _store(tmp_path, False)
    ens = _ensembles(build_leaderboard(recs, profs, results_root=tmp_path))
    free = ens["ensemble"]
    models = {m.split("-bloodmnist")[0] for m in free["members"]}
    assert "c" in models  # the best on val is always picked first
    assert free["macs"] == sum({"a": 10e6, "b": 12e6, "c": 30e6}[m] for m in models)
    assert free["latency_p50_ms"] == pytest.approx(sum(1.0 + {"a": 1.0, "b": 1.2, "c": 3.0}[m] for m in models))
    capped = ens.get("ensemble ≤25M MACs")
    assert capped is not None and capped["macs"] <= 25e6
    assert {m.split("-bloodmnist")[0] for m in capped["members"]} == {"a", "b"}
    csv = pd.read_csv(__import__("io").StringIO(build_leaderboard(recs, profs, results_root=tmp_path).to_csv()))
    assert set(csv["kind"]) == {"model", "ensemble"}
    assert csv.loc[csv["model"] == "ensemble", "members"].iloc[0].count(";") == len(free["members"]) - 1


def test_tta_row_costs_eight_times_the_model_and_scores_its_tta_predictions(tmp_path):
    recs, profs = _store(tmp_path, False, tta=True)
    board = build_leaderboard(recs, profs, results_root=tmp_path)
    rows = {r["model"]: r for r in board.to_records()}
    tta = rows["a + TTA×8"]
    assert tta["kind"] == "tta" and tta["seeds"] == 2
    assert tta["macs"] == 8 * rows["a"]["macs"] and tta["latency_p50_ms"] == pytest.approx(8 * rows["a"]["latency_p50_ms"])
    store = ResultsStore(tmp_path)
    accs = [np.mean(s.argmax(1) == y) for y, s in (load_predictions(store.run_dir(rid) / "test_predictions_tta.npz")
                                                   for rid in tta["members"])]
    assert tta["acc_mean"] == pytest.approx(np.mean(accs), abs=1e-12)
    # without saved TTA predictions there is no TTA row
    recs2, profs2 = _store(tmp_path / "plain", False)
    assert not [r for r in build_leaderboard(recs2, profs2, results_root=tmp_path / "plain").to_records()
                if r["kind"] == "tta"]


def test_tta_ensemble_is_selected_on_eight_view_val_and_scored_on_eight_view_test(tmp_path):
    chosen = []
    for flip in (False, True):  # test labels and scores that would change the choice do not
        root = tmp_path / str(flip)
        recs, profs = _store(root, flip, tta=True)
        board = build_leaderboard(recs, profs, results_root=root)
        rows = {r["model"]: r for r in board.to_records()}
        row = rows["ensemble + TTA×8"]
        chosen.append((row["members"], row["weights"], row["temperatures"]))
    store = ResultsStore(root)
    by_seed: dict[int, list] = {}
    for i, (rid, t) in enumerate(zip(row["members"], row["temperatures"])):
        y_val, val = load_predictions(store.run_dir(rid) / "val_predictions_tta.npz")
        assert t == pytest.approx(fit_temperature(y_val, val))  # fit on the 8-view val predictions
        y, score = load_predictions(store.run_dir(rid) / "test_predictions_tta.npz")
        w = row["weights"][i] if row["weights"] else None
        by_seed.setdefault(int(re.search(r"-s(\d+)-", rid).group(1)), []).append((y, scale_temperature(score, t), w))
    accs = []
    for members in by_seed.values():
        p = sum((1 / len(members) if w is None else w) * s.astype(np.float64) for _, s, w in members)
        accs.append(np.mean(p.argmax(1) == members[0][0]))
    assert row["acc_mean"] == pytest.approx(np.mean(accs), abs=1e-12)
    models = {rid.split("-bloodmnist")[0] for rid in row["members"]}
    assert row["macs"] == 8 * sum({"a": 10e6, "b": 12e6, "c": 30e6}[m] for m in models)
    assert row["params"] == sum(rows[m]["params"] for m in models)
    assert chosen[0] == chosen[1]
    text = board.to_markdown()
    assert re.search(r"^\| ensemble \+ TTA×8[¹²³⁴⁵⁶⁷⁸⁹]*\s", text, re.M)
    # only the unbudgeted ensemble is repeated on 8-view predictions; none without saved 8-view val predictions
    assert not [m for m in rows if "≤" in m and "TTA" in m]
    recs2, profs2 = _store(tmp_path / "plain", False)
    assert "ensemble + TTA×8" not in {r["model"] for r in
                                      build_leaderboard(recs2, profs2, results_root=tmp_path / "plain").to_records()}


def test_an_ensemble_or_tta_row_with_an_unconverged_member_is_marked(tmp_path):
    recs, profs = _store(tmp_path, False, tta=True)
    climbing = next(r for r in recs if r["model"] == "b" and r["seed"] == 1)  # still gaining at its budget
    climbing["stop_reason"] = "epoch_budget"
    climbing["history"] = [{"epoch": i + 1, "val_acc": 0.5 + 0.04 * i} for i in range(10)]
    board = build_leaderboard(recs, profs, results_root=tmp_path)
    text = board.to_markdown()
    ens = _ensembles(board)
    with_b = {name for name, r in ens.items() if climbing["run_id"] in r["members"]}
    assert with_b and "ensemble ≤25M MACs" in with_b
    for name in [*ens, "a + TTA×8", "b + TTA×8", "a", "b"]:
        marked = re.search(rf"^\| {re.escape(name)}[^|]*†", text, re.M) is not None
        assert marked == (name in with_b or name.startswith("b")), name
    assert "ensemble ≤25M MACs (members b seed 1)" in text and "b + TTA×8 (seed 1)" in text


# --------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------
def test_mcnemar_exact_on_hand_checkable_tables():
    a = np.array([True] * 10 + [True] * 5)
    b = np.array([False] * 10 + [True] * 5)
    assert mcnemar_exact(a, b) == pytest.approx(2 * 0.5 ** 10)       # 10 discordant, all one way
    a = np.array([1, 1, 1, 0, 1, 1], bool)
    b = np.array([0, 0, 0, 1, 1, 1], bool)
    assert mcnemar_exact(a, b) == pytest.approx(2 * (1 + 4) / 16)    # b=3, c=1: 2·P(X≤1 | n=4)


def test_paired_bootstrap_marks_ties_and_clear_losses():
    n = 400
    best = np.ones(n)
    same = paired_comparison(best, best.copy())
    assert same.diff == 0 and same.ci == (0.0, 0.0) and same.tied
    worse = best.copy()
    worse[:100] = 0  # 25 points worse
    res = paired_comparison(best, worse)
    assert res.diff == pytest.approx(0.25) and res.ci[0] > 0.15 and res.ci[0] <= 0.25 <= res.ci[1] and not res.tied
    close = best.copy()
    close[:2] = 0
    close_res = paired_comparison(best, close, single_runs=True)
    assert close_res.tied and close_res.p_mcnemar == pytest.approx(0.5)  # b=2, c=0: 2·0.5²
    lo, hi = accuracy_ci(worse)
    assert lo < 0.75 < hi and hi - lo < 0.1
    with pytest.raises(ValueError):
        paired_comparison(best, best[:10])


def test_a_corrupt_predictions_file_is_one_error_line(tmp_path, capsys):
    from bloodbench.cli import main

    recs, profs = _store(tmp_path, False)
    store = ResultsStore(tmp_path)
    for p in profs:
        store.write(p)
    bad = store.run_dir(recs[0]["run_id"]) / "val_predictions.npz"
    bad.write_bytes(b"not an npz")
    code = main(["leaderboard", "--results", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and str(bad) in err and "Traceback" not in err
    assert bad.read_bytes() == b"not an npz"  # nothing overwritten


def test_runs_scored_on_different_images_are_refused(tmp_path):
    from bloodbench.errors import BloodbenchError

    recs, profs = _store(tmp_path, False)
    path = ResultsStore(tmp_path).run_dir(recs[-1]["run_id"]) / "test_predictions.npz"
    y, s = load_predictions(path)
    save_predictions(path, np.roll(y, 1), s)
    with pytest.raises(BloodbenchError, match="not on the same images"):
        build_leaderboard(recs, profs, results_root=tmp_path)


def test_val_cross_fitting_script_scores_every_selection_method_on_held_out_val(monkeypatch, capsys):
    """scripts/ensemble_val_cv.py, the evidence for temperature scaling, runs on the committed store."""
    import runpy
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "ensemble_val_cv.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--results", str(REPO_RESULTS), "--splits", "1"])
    runpy.run_path(str(script), run_name="__main__")
    rows = [line for line in capsys.readouterr().out.splitlines() if "| mean" in line]
    assert [r.split(" per seed")[0].strip() for r in rows] == [
        "greedy log-loss, raw", "greedy log-loss, temperature-scaled", "greedy accuracy, raw", "best single run on val",
        "greedy log-loss, temperature-scaled, 8-view", "best single run on val, 8-view"]
    for r in rows:
        assert 90 < float(re.search(r"mean ([\d.]+)", r).group(1)) <= 100
