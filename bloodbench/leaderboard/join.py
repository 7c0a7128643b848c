"""Build the leaderboard: training aggregates joined to one device's cost, filtered, sorted, footnoted."""

from __future__ import annotations

import math
import os
from typing import Any, Iterable, Sequence

import pandas as pd

from bloodbench.errors import BloodbenchError, warn
from bloodbench.leaderboard.columns import COLUMNS, FRONTS, KEYS, typed_frame
from bloodbench.leaderboard.ensemble import footnotes as prediction_footnotes, prediction_rows
from bloodbench.leaderboard.frames import (
    aggregate_training, choose_device, cost_conflicts, cost_frame, finished_runs_frame,
    family_of, learned_nothing_runs, other_recipe_runs, pareto_front, pick_recipe, resolve_sort, select_costs,
    unfinished_runs,
)
from bloodbench.launch_free import attach_graphs_p50, split_graphs
from bloodbench.leaderboard.table import SUPERSCRIPTS, Leaderboard, build_footnotes
from bloodbench.results import check_records, read_results


def _warn_benchmark_only_sections(train: pd.DataFrame, costs: pd.DataFrame) -> None:
    """A benchmark file's dataset/size without any training or profile record adds a section: say so."""
    if costs.empty:
        return
    recorded = {(d, int(sz)) for d, sz in train[["dataset", "size"]].itertuples(index=False)}
    recorded |= {(d, int(sz)) for d, sz in costs[costs["source"] == "profile"][["dataset", "size"]]
                 .itertuples(index=False)}
    if not recorded:
        return  # a benchmark file alone: every section is its own
    bench = costs[costs["source"] != "profile"]
    for (d, sz, source), _ in bench.groupby(["dataset", "size", "source"], sort=True):
        if (d, int(sz)) not in recorded:
            warn(f"{str(source).removeprefix('benchmark:')} adds a {d} {int(sz)}px section that has no training "
                 f"or profile records")


def _train_throughput(merged: pd.DataFrame) -> None:
    """``train_throughput`` (images/s) and its source per row, in place: the pytest-benchmark
    ``train_step`` entry on the cost device where there is one, else the training records."""
    bench = merged["train_throughput"] if "train_throughput" in merged else pd.Series(math.nan, index=merged.index)
    from_records = merged["train_images_per_s"] if "train_images_per_s" in merged else bench * math.nan
    sources = []
    for b, r, bs, src, dev, tdev in zip(bench, from_records, merged.get("train_batch_size", bench * math.nan),
                                         merged.get("train_source", [None] * len(merged)),
                                         merged.get("device", [None] * len(merged)),
                                         merged.get("train_device", [None] * len(merged))):
        if pd.notna(b):
            sources.append(f"pytest-benchmark {str(src).removeprefix('benchmark:')} train_step, {dev}, "
                           f"batch {int(bs)}" if pd.notna(bs) else f"pytest-benchmark train_step, {dev}")
        elif pd.notna(r):
            sources.append(f"training records on {tdev or 'an unrecorded device'} (train images ÷ median epoch seconds, validation included)")
        else:
            sources.append(None)
    merged["train_throughput"] = bench.where(bench.notna(), from_records)
    merged["train_throughput_source"] = sources


def build_leaderboard(
    train_records: Iterable[dict],
    profile_records: Iterable[dict] = (),
    *,
    benchmark_json: Sequence[str | os.PathLike] = (),
    device: str | None = None,
    precision: str | None = None,
    dataset: str | None = None,
    size: int | None = None,
    models: Sequence[str] | None = None,
    sort: str | None = None,
    results_root: str | os.PathLike | None = None,
) -> Leaderboard:
    """The leaderboard from records in memory (see :func:`load_leaderboard` for a results dir)."""
    train_records = check_records(train_records, "train")
    sort_col, ascending = resolve_sort(sort)
    runs = finished_runs_frame(train_records)
    train = picked = pick_recipe(runs)
    costs = cost_frame(check_records(profile_records, "profile"), benchmark_json)

    def keep(df: pd.DataFrame) -> pd.DataFrame:
        if df.empty:
            return df
        mask = pd.Series(True, index=df.index)
        if dataset:
            mask &= df["dataset"] == dataset
        if size is not None:
            mask &= df["size"] == int(size)
        if models:
            mask &= df["model"].isin(list(models))
        return df[mask]

    train, costs = keep(train), keep(costs)
    costs, graphs = split_graphs(costs)  # the launch-free figure gets its own column, never the eager cell
    if train.empty and costs.empty:
        what = ", ".join(f"{k}={v}" for k, v in (("dataset", dataset), ("size", size),
                                                  ("models", ",".join(models or []) or None)) if v is not None)
        raise BloodbenchError(f"no finished training or profile records match {what or 'anything'}"
                              + (": drop a filter" if what else ""))

    _warn_benchmark_only_sections(train, costs)
    agg = aggregate_training(train)
    device, on_device = choose_device(costs, device)
    chosen = select_costs(on_device, precision)
    if precision and not costs.empty and chosen.empty:
        raise BloodbenchError(f"no {precision} profile records on {device}: "
                              f"have {', '.join(sorted(on_device['precision'].unique()))}")
    conflicts = cost_conflicts(on_device, chosen)

    # train images/s from a train_step benchmark on the shown device, even where a profile gives the cost
    trained = on_device[on_device["train_throughput"].notna()] if not on_device.empty else on_device
    trained = select_costs(trained, precision)[KEYS + ["train_throughput", "train_batch_size", "source"]] \
        if not trained.empty else pd.DataFrame(columns=KEYS + ["train_throughput", "train_batch_size", "source"])
    chosen = chosen.drop(columns=["train_throughput", "train_batch_size"], errors="ignore")
    chosen = chosen.merge(typed_frame(trained.rename(columns={"source": "train_source"})), on=KEYS, how="left")
    merged = agg.merge(chosen, on=KEYS, how="outer", suffixes=("", "_cost"))
    merged = merged.rename(columns={"source": "cost_source"})
    # Params and MACs do not depend on the device: borrow them from any profile (or the
    # training record, for params) when the chosen device was not profiled.
    any_cost = costs.sort_values(KEYS + ["created_at"], kind="stable").drop_duplicates(KEYS, keep="last")
    fallback = merged[KEYS].merge(any_cost[KEYS + ["params", "macs", "flops"]], on=KEYS, how="left")
    for col in ("params", "macs", "flops"):
        merged[col] = merged[col].fillna(pd.Series(fallback[col].to_numpy(), index=merged.index))
    if "train_params" in merged:
        merged["params"] = merged["params"].fillna(merged["train_params"])
    _train_throughput(merged)
    if "family" not in merged:
        merged["family"] = None
    missing_family = merged["family"].isna()
    if missing_family.any():
        merged.loc[missing_family, "family"] = [family_of({"model": m}) for m in merged.loc[missing_family, "model"]]

    merged["kind"] = "model"
    predictions = None
    if results_root is not None:  # ensemble and TTA rows from the saved predictions
        predictions = prediction_rows(train, train_records, results_root, merged)
        if not predictions.rows.empty:
            merged = pd.concat([merged, predictions.rows], ignore_index=True)
    for col in COLUMNS:
        if col not in merged:
            merged[col] = None
    for name, cost in FRONTS.items():
        on, dom = pareto_front(merged, cost)
        merged[f"pareto_{name}"] = on
        merged[f"dominated_by_{name}"] = dom
    fronts = merged[[f"pareto_{n}" for n in FRONTS]]
    merged["pareto"] = pd.Series(
        [pd.NA if r.isna().all() else bool(r.fillna(False).any()) for _, r in fronts.iterrows()],
        index=merged.index, dtype="boolean")

    merged = merged.sort_values(["dataset", "size", sort_col, "model"], ascending=[True, True, ascending, True],
                                na_position="last", kind="stable").reset_index(drop=True)

    left_out = {**unfinished_runs(train_records), **other_recipe_runs(runs, picked),
                **learned_nothing_runs(train_records)}
    pending = pd.DataFrame([(st, m, d, sz, seeds) for (st, m, d, sz), seeds in left_out.items()],
                           columns=["status", *KEYS, "seeds"])
    unconverged = {(r.model, r.dataset, int(r.size)): [] for r in train.itertuples(index=False)}
    for r in train[~train["converged"].astype(bool)].itertuples(index=False) if not train.empty else ():
        unconverged[(r.model, r.dataset, int(r.size))].append(r.seed)
    footnotes, markers = build_footnotes(merged, device, precision, keep(typed_frame(pending)),
                                         {k: v for k, v in unconverged.items() if v}, conflicts)
    dagger = [f for f in footnotes if f.startswith("†")]  # kept last: the numbered notes count on
    footnotes = [f for f in footnotes if not f.startswith("†")]
    if predictions is not None:
        prediction_footnotes(merged, predictions, footnotes, markers, SUPERSCRIPTS)
    footnotes += dagger
    names = sorted(chosen["device_name"].dropna().unique()) if not chosen.empty else []
    extra = attach_graphs_p50(merged, graphs, KEYS)
    return Leaderboard(merged[COLUMNS + extra], device, names, precision, footnotes, markers, predictions)


def load_leaderboard(results: str | os.PathLike | None = None, *,
                     benchmark_json: Sequence[str | os.PathLike] = (), **options: Any) -> Leaderboard:
    """The leaderboard of a results dir (default: the committed ``reports/results``).

    Fails with one line when there is nothing to show (see :func:`read_results`).
    """
    root, train, profiles = read_results(results, benchmark_json)
    return build_leaderboard(train, profiles, benchmark_json=benchmark_json, results_root=root, **options)
