"""Judge ensemble selection methods on validation alone: 2-fold cross-fitting on val.

For each seed's runs (the leaderboard's chosen recipes), val is split in two at random; a method
selects (and fits temperatures) on one half and is scored on the other, both ways, over ``--splits``
random splits. Test predictions are loaded with the runs but never used. This is the evidence behind temperature-scaling
members before greedy selection, and behind the ``ensemble + TTA×8`` row, the same selection on the runs' 8-view val
predictions (docs/ARCHITECTURE.md, "Ensemble and TTA rows").

    python scripts/ensemble_val_cv.py [--results reports/results] [--splits 10]
"""
from __future__ import annotations

import argparse

import numpy as np

from bloodbench.leaderboard.ensemble import caruana_select, ensemble_grid, weighted_average
from bloodbench.leaderboard.frames import finished_runs_frame, pick_recipe
from bloodbench.store.results import read_results
from bloodbench.leaderboard.saved import load_run_predictions
from bloodbench.stats.temperature import fit_temperature, scale_temperature


def nll(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-12, 1)
    return float(-np.log((p / p.sum(1, keepdims=True))[np.arange(len(y)), y]).mean())


def methods(P: list[np.ndarray], y: np.ndarray, a: np.ndarray,
            Q: list[np.ndarray] | None = None) -> dict[str, tuple[list[np.ndarray], list[int]]]:
    """Each method's (scores, pick counts), selected on the rows ``a`` of val only. ``Q``: the runs'
    8-view val predictions, where every run has them."""
    def scaled(S: list[np.ndarray]) -> list[np.ndarray]:
        return [scale_temperature(p, fit_temperature(y[a], p[a])) for p in S]

    def best(S: list[np.ndarray]) -> list[int]:
        top = int(np.argmax([np.mean(p[a].argmax(1) == y[a]) for p in S]))
        return [int(i == top) for i in range(len(S))]

    Pt = scaled(P)
    out = {
        "greedy log-loss, raw": (P, caruana_select([p[a] for p in P], y[a])),
        "greedy log-loss, temperature-scaled": (Pt, caruana_select([p[a] for p in Pt], y[a])),
        "greedy accuracy, raw": (P, caruana_select([p[a] for p in P], y[a], metric="acc")),
        "best single run on val": (P, best(P)),
    }
    if Q is not None:
        Qt = scaled(Q)
        out["greedy log-loss, temperature-scaled, 8-view"] = (Qt, caruana_select([q[a] for q in Qt], y[a]))
        out["best single run on val, 8-view"] = (Q, best(Q))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=None)
    ap.add_argument("--splits", type=int, default=10)
    args = ap.parse_args()
    root, records, _ = read_results(args.results, [])
    chosen = pick_recipe(finished_runs_frame(records))  # each model's recipe, as the leaderboard picks it
    chosen = chosen[(chosen["dataset"] == "bloodmnist") & (chosen["size"] == 28)]
    runs = load_run_predictions(records, root, chosen["run_id"]).values()
    rng = np.random.default_rng(0)
    scores: dict[str, dict[int, list[tuple[float, float]]]] = {}
    for seed, rs in sorted(ensemble_grid(list(runs))[0].items()):
        rs = sorted(rs, key=lambda r: r.run_id)
        y, P = rs[0].val[0], [np.asarray(r.val[1], np.float64) for r in rs]
        Q = [np.asarray(r.val_tta[1], np.float64) for r in rs] if all(r.val_tta is not None for r in rs) else None
        for _ in range(args.splits):
            idx = rng.permutation(len(y))
            halves = (idx[: len(y) // 2], idx[len(y) // 2:])
            for a, b in (halves, halves[::-1]):
                for name, (PP, counts) in methods(P, y, a, Q).items():
                    e = weighted_average([p[b] for p in PP], counts)
                    scores.setdefault(name, {}).setdefault(seed, []).append((np.mean(e.argmax(1) == y[b]), nll(e, y[b])))
    print(f"held-out val accuracy (%) and log-loss, {args.splits} random 2-fold splits per seed")
    for name, by_seed in scores.items():
        accs = [100 * np.mean([s[0] for s in v]) for v in by_seed.values()]
        losses = [np.mean([s[1] for s in v]) for v in by_seed.values()]
        print(f"{name:44s} per seed {' '.join(f'{a:.2f}' for a in accs)} | mean {np.mean(accs):.2f} | "
              f"log-loss {np.mean(losses):.4f}")


if __name__ == "__main__":
    main()
