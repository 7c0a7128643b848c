"""Ensemble and TTA rows from saved predictions alone (no checkpoint, no re-inference).

Ensembles follow Caruana et al. (2004): greedy forward selection *with replacement* on the
**validation** predictions, optionally under a MACs budget; a member's weight is how often it
was picked over the number of picks. Before the selection each member is temperature-scaled on
val (``stats/temperature.py``): one temperature per run, fit by val log-loss, so that recipes with
different label smoothing compete on accuracy rather than on confidence. Test predictions are
only scaled by the same temperatures and averaged afterwards.

Runs recorded before val predictions were saved have only test probabilities. They are
test-only members, and their selection falls back to the validation accuracy in the record:
the ``FALLBACK_K`` runs with the highest recorded val accuracy (within the budget), equal
weights. ``k`` is fixed in advance, not tuned: without val probabilities an ensemble cannot be
scored on val, and choosing ``k`` on test would leak.

An ``ensemble + TTA×8`` row repeats the unbudgeted selection on the members' 8-view predictions:
temperatures fit and members picked on their 8-view val probabilities, scored on their 8-view test
ones, at 8 × the members' cost. Its evidence, on held-out val only, is ``scripts/ensemble_val_cv.py``.

Ensembles are built per seed (one from each seed's runs, selected on that seed's val data)
and reported as mean ± std over seeds, like a model. Cost: the sum of the distinct members'
MACs and params (a member picked twice runs once); latency: the sum of their p50s, as the
members run one after another; per-seed selections may differ, so a row shows its costliest seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from bloodbench.leaderboard.columns import METRICS
from bloodbench.leaderboard.notes import Note
from bloodbench.leaderboard.saved import RunPredictions, check_same_images, load_run_predictions
from bloodbench.leaderboard.train_source import one_machine
from bloodbench.stats.metrics import classification_metrics
from bloodbench.stats.temperature import fit_temperature, scale_temperature
from bloodbench.store.predictions import TTA_VIEWS

ROUNDS = 25
GREEDY = "greedy val log-loss, temperature-scaled on val"
FALLBACK_K = 3
#: MAC budgets per image, largest first: ensembles are selected under each, and the report's
#: "Which model should I pick" names the best row under each (report/pick.py).
MACS_BUDGETS = (100e6, 25e6, 5e6)
BUDGETS = (None, *MACS_BUDGETS)   # None = no budget


def weighted_average(scores: Sequence[np.ndarray], counts: Sequence[int]) -> np.ndarray:
    """Probabilities averaged with weights count / total (float64)."""
    total = float(sum(counts))
    return sum((c / total) * np.asarray(s, np.float64) for s, c in zip(scores, counts) if c)


def _fits(members: set[int], cand: int, costs: Sequence[float] | None, budget: float | None) -> bool:
    if budget is None:
        return True
    return sum(costs[i] for i in members | {cand}) <= budget


def val_log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """sklearn's ``log_loss`` of the renormalised rows (float32 files sum to 1 ± 1e-7), without its input
    checks: over the greedy loop's 2,000-odd calls on the same labels they took about a quarter of
    ``bloodbench leaderboard``'s wall clock (benchmarks/test_greedy_loss.py times both). ``y``: class indices."""
    p = np.clip(p, 1e-12, 1)
    eps = np.finfo(p.dtype).eps  # sklearn clips to the dtype's eps
    return -float(np.mean(np.log(np.clip(p[np.arange(len(y)), y] / p.sum(1), eps, 1 - eps))))


def caruana_select(val_scores: Sequence[np.ndarray], y_val: np.ndarray, *, metric: str = "log_loss",
                   rounds: int = ROUNDS, costs: Sequence[float] | None = None,
                   budget: float | None = None) -> list[int]:
    """Greedy forward selection with replacement on validation; returns a pick count per candidate.

    Each round adds the candidate (again, possibly) that most improves the ensemble's val
    ``metric`` (``log_loss`` or ``acc``); the best ensemble over all rounds is returned, the
    smaller one on ties. Under ``budget`` a candidate is allowed only while the distinct
    members' ``costs`` sum to at most the budget. Sees validation data only.
    """
    if metric not in ("log_loss", "acc"):
        raise ValueError(f"metric must be log_loss or acc, not {metric!r}")
    y_val = np.asarray(y_val).reshape(-1).astype(np.int64)

    def score(p: np.ndarray) -> float:  # lower is better
        if metric == "acc":
            return -float(np.mean(p.argmax(1) == y_val))
        return val_log_loss(y_val, p)

    counts = [0] * len(val_scores)
    total = np.zeros_like(np.asarray(val_scores[0], np.float64))
    best_counts, best = None, math.inf
    for r in range(1, rounds + 1):
        members = {i for i, c in enumerate(counts) if c}
        trial = [(score((total + val_scores[i]) / r), i) for i in range(len(val_scores))
                 if _fits(members, i, costs, budget)]
        if not trial:
            break
        s, i = min(trial)  # ties: the lower index
        counts[i] += 1
        total = total + val_scores[i]
        if s < best:
            best, best_counts = s, list(counts)
    return best_counts or counts


def topk_by_val_acc(val_accs: Sequence[float], *, k: int = FALLBACK_K, costs: Sequence[float] | None = None,
                    budget: float | None = None) -> list[int]:
    """The fallback for runs without val probabilities: the ``k`` best recorded val accuracies that
    fit the budget together, equal weights (one pick each)."""
    order = sorted(range(len(val_accs)), key=lambda i: (-val_accs[i] if not math.isnan(val_accs[i]) else math.inf, i))
    chosen: set[int] = set()
    for i in order:
        if len(chosen) < k and _fits(chosen, i, costs, budget):
            chosen.add(i)
    return [int(i in chosen) for i in range(len(val_accs))]


# --------------------------------------------------------------------------------------
# rows
# --------------------------------------------------------------------------------------
@dataclass
class SeedEnsemble:
    seed: int
    members: list[str]          # run_ids
    counts: list[int]
    models: list[str]
    method: str                 # GREEDY | "top-k recorded val acc"
    temperatures: list[float] | None = None   # per member, fit on val (None: the fallback, unscaled)
    tta: bool = False           # selected on, and scoring, the members' 8-view predictions

    def test_scores(self, preds: dict[str, RunPredictions]) -> list[np.ndarray]:
        """The members' test probabilities (8-view ones for a TTA ensemble), each scaled by its val
        temperature where there is one."""
        scores = [(preds[rid].test_tta if self.tta else preds[rid].test)[1] for rid in self.members]
        if not self.temperatures:
            return scores
        return [scale_temperature(p, t) for p, t in zip(scores, self.temperatures)]


@dataclass
class PredictionRows:
    """Extra leaderboard rows and, for every row, per-image test correctness averaged over its runs."""

    rows: pd.DataFrame
    correct: dict[tuple, np.ndarray] = field(default_factory=dict)    # (model, dataset, size) -> (N,)
    n_runs: dict[tuple, int] = field(default_factory=dict)
    ensembles: dict[tuple, list[SeedEnsemble]] = field(default_factory=dict)
    # (dataset, size) -> what the ensembles leave out (runs outside the full grid of seeds × models), said once
    left_out: dict[tuple, str] = field(default_factory=dict)


def budget_name(budget: float | None, tta: bool = False) -> str:
    name = "ensemble" if budget is None else f"ensemble ≤{budget / 1e6:g}M MACs"
    return f"{name} + TTA×{TTA_VIEWS}" if tta else name


def _metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    m = classification_metrics(y, p)
    return {k: m[k] for k in METRICS}


def _summary(per_seed: list[dict[str, float]]) -> dict[str, float]:
    out = {}
    for m in METRICS:
        vals = pd.Series([d[m] for d in per_seed], dtype=float)
        out[f"{m}_mean"], out[f"{m}_std"] = float(vals.mean()), float(vals.std()) if len(vals) > 1 else math.nan
    return out


def select_seed_ensemble(runs: list[RunPredictions], macs: dict[str, float], budget: float | None,
                         *, tta: bool = False) -> SeedEnsemble | None:
    """One seed's ensemble: greedy on val when every run has val predictions, else the fallback.
    With ``tta``, greedy on the runs' 8-view val predictions, and None unless every run has them."""
    runs = sorted(runs, key=lambda r: r.run_id)
    if budget is not None:
        runs = [r for r in runs if not math.isnan(macs.get(r.model, math.nan))]
    if len(runs) < 2:
        return None
    costs = [macs.get(r.model, math.nan) for r in runs]
    temps = None
    vals = [r.val_tta if tta else r.val for r in runs]
    if all(v is not None for v in vals):
        temps = [fit_temperature(*v) for v in vals]
        counts = caruana_select([scale_temperature(v[1], t) for v, t in zip(vals, temps)], vals[0][0],
                                costs=costs, budget=budget)
        method = GREEDY
    elif tta:  # no fallback on 8-view predictions
        return None
    else:
        counts = topk_by_val_acc([r.val_acc for r in runs], costs=costs, budget=budget)
        method = f"top-{FALLBACK_K} recorded val acc"
    picked = [i for i, c in enumerate(counts) if c]
    if len(picked) < 2:
        return None
    return SeedEnsemble(runs[0].seed, [runs[i].run_id for i in picked], [counts[i] for i in picked],
                        [runs[i].model for i in picked], method, [temps[i] for i in picked] if temps else None, tta)


def prediction_rows(train: pd.DataFrame, records: list[dict], root: str | Path | None,
                    models: pd.DataFrame) -> PredictionRows:
    """Ensemble and TTA rows for the leaderboard, from the runs in ``train`` (the chosen recipes).

    ``models``: the leaderboard's model rows, whose cost columns the new rows are built from.
    Rows get the leaderboard's columns plus ``kind``, ``members`` and ``weights``.
    """
    preds = load_run_predictions(records, root, train["run_id"]) if not train.empty else {}
    out = PredictionRows(pd.DataFrame())
    rows = []
    for (dataset, size), g in train.groupby(["dataset", "size"], sort=True):
        cost = models[(models["dataset"] == dataset) & (models["size"] == size)].set_index("model")
        num = lambda col, m: float(cost[col].get(m, math.nan)) if col in cost else math.nan  # noqa: E731
        runs = [preds[r] for r in g["run_id"] if r in preds]
        check_same_images(runs)
        by_model: dict[str, list[RunPredictions]] = {}
        for r in runs:
            by_model.setdefault(r.model, []).append(r)
        # per-image correctness of the single-model rows, averaged over seeds
        for m, rs in by_model.items():
            out.correct[(m, dataset, int(size))] = np.mean([r.test[1].argmax(1) == r.test[0] for r in rs], axis=0)
            out.n_runs[(m, dataset, int(size))] = len(rs)
        macs = {m: num("macs", m) for m in by_model}
        base = {"dataset": dataset, "size": int(size), "device": _first(cost, "device"),
                "device_name": _first(cost, "device_name"), "precision": _first(cost, "precision")}

        # TTA rows: only where saved TTA predictions exist
        for m, rs in sorted(by_model.items()):
            tta = [r for r in rs if r.test_tta is not None]
            if not tta:
                continue
            name = f"{m} + TTA×{TTA_VIEWS}"
            per_seed = [_metrics(*r.test_tta) for r in tta]
            out.correct[(name, dataset, int(size))] = np.mean([r.test_tta[1].argmax(1) == r.test_tta[0]
                                                               for r in tta], axis=0)
            out.n_runs[(name, dataset, int(size))] = len(tta)
            rows.append({**base, "model": name, "family": _first(cost.loc[[m]] if m in cost.index else cost, "family"),
                         "kind": "tta", "seeds": len(tta), **_summary(per_seed),
                         "params": num("params", m), "macs": TTA_VIEWS * num("macs", m),
                         "flops": TTA_VIEWS * num("flops", m), "latency_p50_ms": TTA_VIEWS * num("latency_p50_ms", m),
                         "cost_source": f"{TTA_VIEWS} × the model's", "members": [r.run_id for r in tta],
                         "weights": None})

        # per-seed ensembles under each MACs budget, then the unbudgeted one on 8-view predictions
        seen: set[tuple] = set()
        by_seed, left = ensemble_grid(runs)
        if left:
            out.left_out[(dataset, int(size))] = left
        with_tta = all(r.test_tta is not None for rs in by_seed.values() for r in rs)
        for budget, tta in [(b, False) for b in BUDGETS] + [(None, True)] * with_tta:
            ens = [select_seed_ensemble(rs, macs, budget, tta=tta) for _, rs in sorted(by_seed.items())]
            if not ens or any(e is None for e in ens):
                continue
            key = (tta, *((tuple(e.members), tuple(e.counts)) for e in ens))
            if key in seen:  # the budget did not bind: same ensembles as a larger budget
                continue
            seen.add(key)
            name = budget_name(budget, tta)
            row, correct = _ensemble_row(name, ens, preds, g, num)
            rows.append({**base, **row})
            out.correct[(name, dataset, int(size))] = correct
            out.n_runs[(name, dataset, int(size))] = len(ens)
            out.ensembles[(name, dataset, int(size))] = ens
    out.rows = pd.DataFrame(rows)
    return out


def _ensemble_row(name: str, ens: list[SeedEnsemble], preds: dict[str, RunPredictions], train: pd.DataFrame,
                  num) -> tuple[dict, np.ndarray]:
    """An ensemble row (metrics and costs over its seeds' ensembles) and its per-image test correctness,
    averaged over seeds. ``num(col, model)``: a model row's cost."""
    views = TTA_VIEWS if ens[0].tta else 1
    per_seed, right = [], []
    for e in ens:
        p = weighted_average(e.test_scores(preds), e.counts)
        y = (preds[e.members[0]].test_tta if e.tta else preds[e.members[0]].test)[0]
        per_seed.append(_metrics(y, p))
        right.append(p.argmax(1) == y)
    per_seed_cost = [{col: sum(num(col, m) for m in set(e.models)) for col in ("params", "macs", "flops", "latency_p50_ms")}
                     for e in ens]
    sums = {col: v * (views if col != "params" else 1) for col, v in _costliest(per_seed_cost).items()}
    scaled = all(e.temperatures for e in ens)
    equal = all(len(set(e.counts)) == 1 for e in ens)
    runs = train.set_index("run_id")
    train_s = [sum(float(runs.loc[rid, "train_seconds"]) for rid in e.members) for e in ens]
    return {"model": name, "family": "ensemble", "kind": "ensemble", "seeds": len(ens), **_summary(per_seed), **sums,
            "train_seconds_mean": float(np.mean(train_s)),
            "train_machine": one_machine(runs.loc[rid, "train_machine"] for e in ens for rid in e.members),
            "cost_source": f"{views} × the sum of members" if views > 1 else "sum of members",
            "recipe": "; ".join(sorted({e.method for e in ens})),
            "members": [rid for e in ens for rid in e.members],
            "weights": None if equal else [c / sum(e.counts) for e in ens for c in e.counts],
            "temperatures": [t for e in ens for t in e.temperatures] if scaled else None}, np.mean(right, axis=0)


def ensemble_grid(runs: list[RunPredictions]) -> tuple[dict[int, list[RunPredictions]], str | None]:
    """The runs the ensembles are built from, by seed, and what is left out (for a footnote), or None.

    Every seed's ensemble must choose among the same models, so the runs used form a full grid of
    seeds × models: the largest one (most runs; more seeds on a tie, then the lower seeds). A model the
    sweep has trained for one seed so far is left out until its other seeds land, rather than cutting
    every ensemble down to that seed; one extra seed of one model leaves out that seed.
    """
    seeds_of: dict[str, set[int]] = {}
    for r in runs:
        seeds_of.setdefault(r.model, set()).add(r.seed)
    all_seeds = sorted({r.seed for r in runs})
    grids = ((set(s), [m for m, have in seeds_of.items() if set(s) <= have])
             for k in range(len(all_seeds), 0, -1) for s in combinations(all_seeds, k))
    seeds, models = max(grids, key=lambda g: (len(g[0]) * len(g[1]) if len(g[1]) > 1 else 0, len(g[0])),
                        default=(set(), []))
    by_seed = {seed: [r for r in runs if r.seed == seed and r.model in models] for seed in sorted(seeds)}
    left = [f"{m} (seed{'s' if len(have) > 1 else ''} {', '.join(map(str, sorted(have)))} only)"
            for m, have in sorted(seeds_of.items()) if m not in models]
    left += [f"seed {s} (runs of {', '.join(sorted(m for m, have in seeds_of.items() if s in have))} only)"
             for s in all_seeds if s not in seeds and any(m in models for m, have in seeds_of.items() if s in have)]
    if not left:
        return by_seed, None
    return by_seed, (f"ensembles of seeds {', '.join(map(str, sorted(seeds)))}, from the models with a run of each; "
                     f"left out: {'; '.join(left)}")


def _first(df: pd.DataFrame, col: str):
    if col not in df or df[col].dropna().empty:
        return None
    return df[col].dropna().iloc[0]


def _costliest(costs: list[dict[str, float]]) -> dict[str, float]:
    """The cost of the seed whose ensemble has the most MACs (all NaN when any seed's MACs are unknown)."""
    if any(math.isnan(c["macs"]) for c in costs):
        return {k: math.nan for k in costs[0]}
    return max(costs, key=lambda c: c["macs"])


def prediction_notes(rows: pd.DataFrame, preds: PredictionRows) -> list[Note]:
    """The leaderboard notes that say how ensemble and TTA rows were made, and which rows they mark
    (numbered by :func:`~bloodbench.leaderboard.notes.number_notes`)."""
    kinds = rows.get("kind", pd.Series(dtype=object))
    ens = [(r.model, r.dataset, int(r.size)) for r in rows[kinds == "ensemble"].itertuples()]
    legacy = [k for k in ens if any(e.method.startswith("top-") for e in preds.ensembles.get(k, []))]
    tta = [(r.model, r.dataset, int(r.size)) for r in rows[kinds == "tta"].itertuples()]
    tta += [k for k in ens if preds.ensembles.get(k) and preds.ensembles[k][0].tta]
    texts = [
        ("ensemble: one per seed from that seed's runs, test probabilities averaged with weights = pick counts / "
         "picks, mean ± std over seeds; members picked on validation by greedy forward selection with "
         "replacement (Caruana et al., 2004), under the MACs budget named, each run first temperature-scaled "
         "(one temperature per run, fit by val log-loss; Guo et al., 2017) so that recipes with different label "
         "smoothing compete on accuracy, not confidence; params, MACs and FLOPs: sum over "
         "distinct members; p50 latency: sum of the members' p50s (they run one after another); the costliest "
         f"seed's ensemble is shown; an ensemble + TTA×{TTA_VIEWS} is selected the same way on its members' "
         f"{TTA_VIEWS}-view val predictions and scored on their {TTA_VIEWS}-view test ones", ens),
        (f"test-only members: these runs were recorded before val predictions were saved, so their ensembles "
         f"cannot be scored on val; selection falls back to the val accuracy in the records: the {FALLBACK_K} "
         f"best runs of the seed that fit the budget, equal weights ({FALLBACK_K} fixed in advance, not tuned; "
         f"test is never looked at)", legacy),
        (f"{TTA_VIEWS}-view test-time augmentation (the 4 rotations by 90°, each also flipped), probabilities "
         f"averaged; MACs, FLOPs and p50 latency are {TTA_VIEWS} × the model's (an ensemble's: {TTA_VIEWS} × its "
         f"members' sum)", tta),
    ]
    notes = [Note(text, dict.fromkeys(keys, ""), list_rows=False) for text, keys in texts]
    for (dataset, size), left in sorted(preds.left_out.items()):
        marked = [k for k in ens if k[1:] == (dataset, size)]
        if marked:
            notes.append(Note(left, dict.fromkeys(marked, ""), list_rows=False))
    return notes
