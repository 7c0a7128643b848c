"""The report's "Which model should I pick" section: paired comparisons with the best row
and the best row under MACs budgets and latency budgets on each machine measured, each with a 95 % CI.

Everything comes from the per-image test correctness the leaderboard computed from saved
predictions (``Leaderboard.predictions``), so single models, ensembles and TTA rows are
compared on the very same test images.
"""

from __future__ import annotations

import pandas as pd

from bloodbench.formatting import fmt, md_table
from bloodbench.leaderboard import Leaderboard
from bloodbench.leaderboard.ensemble import MACS_BUDGETS as ENSEMBLE_BUDGETS
from bloodbench.leaderboard.ensemble import SeedEnsemble
from bloodbench.stats.paired import LEVEL, N_RESAMPLES, accuracy_ci, paired_comparison
from bloodbench.store.predictions import TTA_VIEWS

TOP = 8
MACS_BUDGETS = (*((b, f"≤ {b / 1e6:g} M MACs") for b in sorted(ENSEMBLE_BUDGETS)), (None, "any"))
#: Batch-1 p50 latency budgets (ms) by device kind, offered for every machine with latency figures.
LATENCY_BUDGETS = {"cuda": (1.0, 5.0), "cpu": (2.0, 10.0)}


def _pct(v: float) -> str:
    return fmt(v, ".2f", 100)


def _ci(lo_hi: tuple[float, float]) -> str:
    return f"[{_pct(lo_hi[0])}, {_pct(lo_hi[1])}]"


def _key(r) -> tuple:
    return r.model, r.dataset, int(r.size)


def _members(ens: list[SeedEnsemble]) -> str:
    parts = []
    for e in ens:
        total, equal = sum(e.counts), len(set(e.counts)) == 1
        temps = e.temperatures or [None] * len(e.models)
        names = []
        for m, c, t in zip(e.models, e.counts, temps):
            extra = [] if equal else [f"{c}/{total}"]
            extra += [] if t is None else [f"T {t:.2f}"]
            names.append(f"{m} ({', '.join(extra)})" if extra else m)
        parts.append(f"seed {e.seed}: " + ", ".join(names))
    return "; ".join(parts)


def pick_section(board: Leaderboard, machines: dict[str, Leaderboard] | None = None) -> list[str]:
    """Markdown lines of the section, or none when no row has saved test predictions.

    ``machines``: a board per machine measured (the table's included), whose latency budgets are offered."""
    preds = board.predictions
    if preds is None or not preds.correct:
        return []
    lines = ["## Which model should I pick", "",
             "From the saved test predictions alone. A row's accuracy CI is a percentile bootstrap over test "
             f"images of its mean-over-seeds accuracy ({int(LEVEL * 100)} %); it covers the sampling of test "
             "images, not seed-to-seed variation (the ± in the leaderboard).", ""]
    for (dataset, size), g in board.groups():
        rows = g[[(_key(r) in preds.correct) for r in g.itertuples()]]
        rows = rows.sort_values(["acc_mean", "model"], ascending=[False, True], kind="stable")
        if rows.empty:
            continue
        if len(board.groups()) > 1:
            lines += [f"### {dataset}, {size}×{size} px", ""]
        ci = {_key(r): accuracy_ci(preds.correct[_key(r)]) for r in rows.itertuples()}
        lines += _budget_table(board, machines or {}, rows, ci) + _paired_table(rows, preds, ci) \
            + _ensemble_list(rows, preds)
    return lines


def _budget_table(board: Leaderboard, machines: dict[str, Leaderboard], rows: pd.DataFrame, ci: dict) -> list[str]:
    def best(label: str, fit: pd.DataFrame) -> list[str]:
        """The first (best) row that fits a budget, as a table row."""
        if fit.empty:
            return [label, "no row fits", "", "", "", ""]
        r = next(fit.itertuples())
        return [label, f"{r.model} ({r.kind})", _pct(r.acc_mean), _ci(ci[_key(r)]), fmt(r.macs, ".2f", 1e-6),
                fmt(r.latency_p50_ms, ".3f")]

    out = [best(label, rows if budget is None else rows[rows["macs"].notna() & (rows["macs"] <= budget)])
           for budget, label in MACS_BUDGETS]
    shown = board.machine_name()
    boards = ({shown: board} if shown else {}) | dict(sorted(machines.items()))
    for name, b in boards.items():
        same = b.rows[(b.rows["dataset"] == rows["dataset"].iloc[0]) & (b.rows["size"] == rows["size"].iloc[0])]
        mrows = same[[_key(r) in ci for r in same.itertuples()]]
        mrows = mrows.sort_values(["acc_mean", "model"], ascending=[False, True], kind="stable")
        if mrows["latency_p50_ms"].notna().sum() == 0:
            continue
        for budget in LATENCY_BUDGETS.get(b.device, ()):
            fit = mrows[mrows["latency_p50_ms"].notna() & (mrows["latency_p50_ms"] <= budget)]
            out.append(best(f"≤ {budget:g} ms batch-1 latency on {name} ({b.precision})", fit))
    return [md_table(out, ["budget", "best row", "test acc (%)", f"{int(LEVEL * 100)} % CI (%)", "MACs (M)",
                           "p50 latency (ms)"]), "",
            f"Latency: batch 1, on {shown or 'no machine (nothing profiled)'} for the MACs budgets, on the machine "
            f"named for a latency budget. Ensemble latency is the sum of its members' p50s; a TTA row's is "
            f"{TTA_VIEWS} × the model's.", ""]


def _paired_table(rows: pd.DataFrame, preds, ci: dict) -> list[str]:
    top = rows.head(TOP)
    best = next(top.itertuples())
    out = []
    for r in top.itertuples():
        if _key(r) == _key(best):
            out.append([f"**{r.model}**", r.kind, _pct(r.acc_mean), _ci(ci[_key(r)]), "best", "", ""])
            continue
        single = preds.n_runs[_key(r)] == 1 and preds.n_runs[_key(best)] == 1
        res = paired_comparison(preds.correct[_key(best)], preds.correct[_key(r)], single_runs=single)
        diff = f"{res.diff * 100:+.2f} [{res.ci[0] * 100:+.2f}, {res.ci[1] * 100:+.2f}]"
        out.append([r.model, r.kind, _pct(r.acc_mean), _ci(ci[_key(r)]), diff,
                    fmt(res.p_mcnemar, ".3g") if res.p_mcnemar is not None else "",
                    "tied" if res.tied else "worse"])
    header = ["row", "kind", "test acc (%)", f"{int(LEVEL * 100)} % CI (%)", "best − row (pt) [95 % CI]",
              "McNemar p", "vs best"]
    if not any(o[5] for o in out):  # no pair of single runs: the column would be empty
        header.pop(5)
        out = [o[:5] + o[6:] for o in out]
    return [f"**Paired comparison with the best row** (top {len(top)} rows, the same {len(preds.correct[_key(best)]):,} "
            "test images):", "", md_table(out, header), "",
            f"best − row: paired bootstrap over test images (scipy, {N_RESAMPLES:,} resamples) of the difference in "
            "accuracy, "
            "each image carrying its correctness averaged over the row's seeds. McNemar's exact test (statsmodels) "
            "is used when both rows are single runs. *tied*: not significantly worse than the best (CI reaches 0, "
            "or McNemar p ≥ 0.05).", ""]


def _ensemble_list(rows: pd.DataFrame, preds) -> list[str]:
    ens = [r for r in rows.itertuples() if _key(r) in preds.ensembles]
    if not ens:
        return []
    out = [[r.model, preds.ensembles[_key(r)][0].method, _members(preds.ensembles[_key(r)])] for r in ens]
    return ["**Ensemble members** (per seed; weights = pick counts where unequal; T = the run's temperature, "
            "fit on val):", "",
            md_table(out, ["row", "selection", "members"]), ""]


__all__ = ["pick_section"]
