"""Old vs new: per-model deltas in accuracy, latency and throughput, regressions flagged.

Each side is a results directory or a pytest-benchmark JSON file, so the same code
compares two commits' stores, a store against the published one, or two benchmark runs.
Cost rows are matched by device name (a CPU's carries its thread count): figures of two machines
are listed side by side, never compared, so a hardware change is never called a regression.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bloodbench.errors import BloodbenchError
from bloodbench.formatting import fmt, md_table
from bloodbench.leaderboard import (
    COST_KEYS,
    KEYS,
    aggregate_training,
    benchmark_frame,
    cost_frame,
    train_frame,
)
from bloodbench.leaderboard.graphs_column import split_graphs
from bloodbench.store.results import store_records


def load_side(path: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(accuracy per model, one cost row per model/device/precision) of one side."""
    p = Path(path)
    if p.is_file():
        train = aggregate_training(train_frame([]))
        costs = benchmark_frame([p])
    elif p.is_dir():
        train = aggregate_training(train_frame(store_records(p, "train")))
        costs = split_graphs(cost_frame(store_records(p, "profile")))[0]  # eager only: like with like
    else:
        raise BloodbenchError(f"cannot compare {path}: it is neither a results directory nor a benchmark JSON file")
    if train.empty and costs.empty:
        raise BloodbenchError(f"nothing to compare in {path}: no finished training, profile or benchmark entries")
    if not costs.empty:
        costs = costs.assign(device_name=costs["device_name"].where(costs["device_name"].notna(),
                                                                   "unnamed " + costs["device"].astype(str)))
        costs = costs.sort_values(MATCH + ["created_at", "source"], kind="stable")
        costs = costs.drop_duplicates(MATCH, keep="last").reset_index(drop=True)
    return train, costs


MATCH = COST_KEYS + ["device_name"]  # a cost row is compared only with the same machine's
OTHER_MACHINE = "other machine"


@dataclass
class Comparison:
    old: str
    new: str
    accuracy: pd.DataFrame
    cost: pd.DataFrame
    threshold: float
    acc_threshold_pt: float
    regressions: list[str] = field(default_factory=list)
    machines: tuple[list[str], list[str]] = ([], [])  # the device names of each side's cost rows

    def machines_differ(self) -> bool:
        return set(self.machines[0]) != set(self.machines[1]) and bool(self.machines[0]) and bool(self.machines[1])

    def to_markdown(self) -> str:
        lines = [f"# Comparison: `{self.old}` → `{self.new}`", "",
                 f"Regression: test accuracy down by more than {self.acc_threshold_pt:g} pt, p50 latency up or "
                 f"throughput down by more than {self.threshold:.0%}.", ""]
        if self.machines_differ():
            lines += [f"**The machines differ**: old measured on {'; '.join(self.machines[0])}, new on "
                      f"{'; '.join(self.machines[1])}. Cost is compared only between rows of the same machine; the "
                      f"others are listed side by side (flag \"{OTHER_MACHINE}\"), and a hardware change is never a "
                      "regression.", ""]
        if self.regressions:
            lines += [f"**{len(self.regressions)} regression(s):**", ""] + [f"- {r}" for r in self.regressions] + [""]
        else:
            lines += ["**No regressions.**", ""]

        if not self.accuracy.empty:
            rows = [[r.model, r.dataset, r.size, f"{fmt(r.seeds_old, '.0f')} → {fmt(r.seeds_new, '.0f')}",
                     fmt(r.acc_old, ".2f", 100), fmt(r.acc_new, ".2f", 100), fmt(r.acc_delta_pt, ".2f", sign=True),
                     r.flag] for r in self.accuracy.itertuples()]
            lines += ["## Accuracy", "", md_table(rows, ["model", "dataset", "size", "seeds", "old acc (%)",
                                                         "new acc (%)", "Δ (pt)", "flag"]), ""]
        if not self.cost.empty:
            rows = [[r.model, r.dataset, r.size, r.device_name, r.precision, fmt(r.p50_old, ".3f"), fmt(r.p50_new, ".3f"),
                     fmt(r.p50_delta, ".1%", sign=True), fmt(r.tp_old, ",.0f"), fmt(r.tp_new, ",.0f"),
                     fmt(r.tp_delta, ".1%", sign=True), r.flag] for r in self.cost.itertuples()]
            lines += ["## Cost", "", md_table(rows, ["model", "dataset", "size", "machine", "precision",
                                                     "old p50 (ms)", "new p50 (ms)", "Δ latency",
                                                     "old throughput (img/s)", "new throughput (img/s)",
                                                     "Δ throughput", "flag"]), ""]
        return "\n".join(lines).rstrip() + "\n"


def _status(old, new) -> str | None:
    if pd.isna(old) and pd.notna(new):
        return "new"
    if pd.notna(old) and pd.isna(new):
        return "removed"
    return None


def compare(old: str | os.PathLike, new: str | os.PathLike, *, threshold: float = 0.05,
            acc_threshold_pt: float = 0.5, device: str | None = None, precision: str | None = None) -> Comparison:
    """Join two sides on (model, dataset, size[, device, precision]) and flag regressions."""
    if threshold < 0 or acc_threshold_pt < 0:
        raise BloodbenchError("thresholds must be >= 0")
    (acc_o, cost_o), (acc_n, cost_n) = load_side(old), load_side(new)
    regressions: list[str] = []

    acc = acc_o[KEYS + ["seeds", "acc_mean"]].merge(acc_n[KEYS + ["seeds", "acc_mean"]], on=KEYS, how="outer",
                                                   suffixes=("_old", "_new"))
    acc = acc.rename(columns={"acc_mean_old": "acc_old", "acc_mean_new": "acc_new"})
    acc["acc_delta_pt"] = (acc["acc_new"] - acc["acc_old"]) * 100
    flags = []
    for r in acc.itertuples():
        flag = _status(r.acc_old, r.acc_new) or ""
        if pd.notna(r.acc_delta_pt) and r.acc_delta_pt < -acc_threshold_pt - 1e-9:
            flag = "⚠ regression"
            regressions.append(f"{r.model} ({r.dataset} {r.size}px): test accuracy {r.acc_delta_pt:+.2f} pt")
        flags.append(flag)
    acc["flag"] = flags
    acc = acc.sort_values(KEYS, kind="stable").reset_index(drop=True)

    def filt(c: pd.DataFrame) -> pd.DataFrame:
        if c.empty:
            return c
        if device:
            c = c[(c["device"] == device) | c["device_name"].fillna("").str.lower().str.contains(device.lower(),
                                                                                                  regex=False)]
        if precision:
            c = c[c["precision"] == precision]
        return c

    cols = MATCH + ["latency_p50_ms", "throughput"]
    side_o, side_n = filt(cost_o), filt(cost_n)
    cost = side_o[cols].merge(side_n[cols], on=MATCH, how="outer", suffixes=("_old", "_new"))
    keys_o = set(side_o[COST_KEYS].itertuples(index=False, name=None)) if not side_o.empty else set()
    keys_n = set(side_n[COST_KEYS].itertuples(index=False, name=None)) if not side_n.empty else set()
    cost = cost.rename(columns={"latency_p50_ms_old": "p50_old", "latency_p50_ms_new": "p50_new",
                                "throughput_old": "tp_old", "throughput_new": "tp_new"})
    with np.errstate(divide="ignore", invalid="ignore"):
        cost["p50_delta"] = cost["p50_new"].astype(float) / cost["p50_old"].astype(float) - 1
        cost["tp_delta"] = cost["tp_new"].astype(float) / cost["tp_old"].astype(float) - 1
    flags = []
    for r in cost.itertuples():
        flag = _status(r.p50_old if pd.notna(r.p50_old) else r.tp_old, r.p50_new if pd.notna(r.p50_new) else r.tp_new)
        key = (r.model, r.dataset, r.size, r.device, r.precision)
        if (flag == "new" and key in keys_o) or (flag == "removed" and key in keys_n):
            flag = OTHER_MACHINE  # the other side measured it on another machine: not comparable, not new
        what = []
        if pd.notna(r.p50_delta) and np.isfinite(r.p50_delta) and r.p50_delta > threshold + 1e-12:
            what.append(f"p50 latency {r.p50_delta:+.1%}")
        if pd.notna(r.tp_delta) and np.isfinite(r.tp_delta) and r.tp_delta < -threshold - 1e-12:
            what.append(f"throughput {r.tp_delta:+.1%}")
        if what:
            regressions.append(f"{r.model} ({r.dataset} {r.size}px, {r.device} {r.precision} on {r.device_name}): "
                               f"{', '.join(what)}")
            flag = "⚠ regression"
        flags.append(flag or "")
    cost["flag"] = flags
    cost = cost.sort_values(MATCH, kind="stable").reset_index(drop=True)
    machines = tuple(sorted(side["device_name"].unique()) if not side.empty else [] for side in (side_o, side_n))
    return Comparison(str(old), str(new), acc, cost, threshold, acc_threshold_pt, regressions, machines)
