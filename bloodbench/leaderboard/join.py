"""Build the leaderboard in one pipeline: select (filters, recipe, one device's cost) -> merge (one row
per key, ensemble and TTA rows) -> annotate (Pareto, sort, footnotes, the CUDA-graphs column).

Records are validated once: by :func:`build_leaderboard` for records in memory, by
:func:`read_results` for a results dir (then :func:`assemble_leaderboard` takes them as they are).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import pandas as pd

from bloodbench.errors import BloodbenchError, warn
from bloodbench.leaderboard.columns import COLUMNS, FRONTS, KEYS, typed_frame
from bloodbench.leaderboard.ensemble import PredictionRows, prediction_notes, prediction_rows
from bloodbench.leaderboard.frames import (
    aggregate_training,
    cost_conflicts,
    cost_frame,
    family_of,
    finished_runs_frame,
    learned_nothing_runs,
    other_recipe_runs,
    pareto_front,
    pick_recipe,
    resolve_sort,
    select_costs,
    unfinished_runs,
)
from bloodbench.leaderboard.graphs_column import attach_graphs_p50, split_graphs
from bloodbench.leaderboard.machines import Machine, choose_machine, other_machines, warn_other_benchmarks
from bloodbench.leaderboard.notes import Note, gap_notes, noisy_note, number_notes, plugin_note, unconverged_rows
from bloodbench.leaderboard.table import Leaderboard
from bloodbench.leaderboard.train_source import quiet_frame, train_throughput
from bloodbench.store.results import check_records, read_results


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


@dataclass
class _Selection:
    """What the filters and the cost choice keep: the chosen recipes' runs, and one device's cost rows."""

    train_records: list[dict]
    runs: pd.DataFrame          # every finished run
    picked: pd.DataFrame        # the chosen recipe's runs, before the filters
    train: pd.DataFrame         # ... after them
    costs: pd.DataFrame         # eager cost rows that pass the filters, every device
    graphs: pd.DataFrame        # CUDA-graphs cost rows of the shown machine (their own column)
    machine: Machine | None     # the one machine (device name, precision) of every cost cell
    others: list[Machine]       # the other machines measured: tables of their own
    on_device: pd.DataFrame     # the shown machine's cost rows
    chosen: pd.DataFrame        # one cost row per key on it
    conflicts: dict[tuple, str]
    keep: Callable[[pd.DataFrame], pd.DataFrame]
    benchmark_json: Sequence[str | os.PathLike] = ()


def _filter(dataset: str | None, size: int | None, models: Sequence[str] | None) -> Callable[[pd.DataFrame], pd.DataFrame]:
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
    return keep


def _select(train_records: list[dict], profile_records: list[dict], benchmark_json: Sequence[str | os.PathLike],
            device: str | None, precision: str | None, dataset: str | None, size: int | None,
            models: Sequence[str] | None) -> _Selection:
    """The rows to show and the cost to show beside them; fails when nothing matches the filters."""
    keep = _filter(dataset, size, models)
    runs = finished_runs_frame(train_records)
    picked = pick_recipe(runs)
    train, costs = keep(picked), keep(cost_frame(profile_records, benchmark_json))
    costs, graphs = split_graphs(costs)  # the launch-free figure gets its own column, never the eager cell
    if train.empty and costs.empty:
        what = ", ".join(f"{k}={v}" for k, v in (("dataset", dataset), ("size", size),
                                                  ("models", ",".join(models or []) or None)) if v is not None)
        raise BloodbenchError(f"no finished training or profile records match {what or 'anything'}"
                              + (": drop a filter" if what else ""))
    _warn_benchmark_only_sections(train, costs)
    machine, on_device = choose_machine(costs, device, precision, train.get("train_machine"))
    others = other_machines(costs, machine)
    warn_other_benchmarks(others, machine)
    chosen = select_costs(on_device)
    if machine is None or graphs.empty:
        graphs = graphs.iloc[0:0]
    else:  # the launch-free figure of the same machine and precision only
        graphs = graphs[(graphs["device_name"] == machine.name) & (graphs["precision"] == machine.precision)]
    return _Selection(train_records, runs, picked, train, costs, graphs, machine, others, on_device, chosen,
                      cost_conflicts(on_device, chosen), keep, list(benchmark_json))


def _merge(sel: _Selection, precision: str | None, results_root: str | os.PathLike | None,
           ) -> tuple[pd.DataFrame, PredictionRows | None]:
    """One row per key: the seeds' aggregate beside the chosen cost, then the ensemble and TTA rows."""
    # train images/s from a train_step benchmark on the shown device, even where a profile gives the cost
    cols = KEYS + ["train_throughput", "train_batch_size", "source"]
    trained = sel.on_device[sel.on_device["train_throughput"].notna()] if not sel.on_device.empty else sel.on_device
    trained = select_costs(trained)[cols] if not trained.empty else pd.DataFrame(columns=cols)
    chosen = sel.chosen.drop(columns=["train_throughput", "train_batch_size"], errors="ignore")
    chosen = chosen.merge(typed_frame(trained.rename(columns={"source": "train_source"})), on=KEYS, how="left")
    merged = aggregate_training(sel.train).merge(chosen, on=KEYS, how="outer", suffixes=("", "_cost"))
    merged = merged.rename(columns={"source": "cost_source"})
    # Params and MACs do not depend on the device: borrow them from any profile (or the
    # training record, for params) when the chosen device was not profiled.
    any_cost = sel.costs.sort_values(KEYS + ["created_at"], kind="stable").drop_duplicates(KEYS, keep="last")
    fallback = merged[KEYS].merge(any_cost[KEYS + ["params", "macs", "flops"]], on=KEYS, how="left")
    for col in ("params", "macs", "flops"):
        merged[col] = merged[col].fillna(pd.Series(fallback[col].to_numpy(), index=merged.index))
    if "train_params" in merged:
        merged["params"] = merged["params"].fillna(merged["train_params"])
    quiet = sel.keep(quiet_frame(results_root, sel.benchmark_json))
    train_throughput(merged, quiet, sel.machine.name if sel.machine is not None else None)
    if "family" not in merged:
        merged["family"] = None
    missing_family = merged["family"].isna()
    if missing_family.any():
        merged.loc[missing_family, "family"] = [family_of({"model": m}) for m in merged.loc[missing_family, "model"]]

    merged["kind"] = "model"
    predictions = None
    if results_root is not None:  # ensemble and TTA rows from the saved predictions
        predictions = prediction_rows(sel.train, sel.train_records, results_root, merged)
        if not predictions.rows.empty:
            merged = pd.concat([merged, predictions.rows], ignore_index=True)
    for col in COLUMNS:
        if col not in merged:
            merged[col] = None
    return merged, predictions


def _pareto(merged: pd.DataFrame) -> None:
    """The Pareto columns, in place: on each front, dominated by whom, and on any front."""
    for name, cost in FRONTS.items():
        on, dom = pareto_front(merged, cost)
        merged[f"pareto_{name}"] = on
        merged[f"dominated_by_{name}"] = dom
    fronts = merged[[f"pareto_{n}" for n in FRONTS]]
    merged["pareto"] = pd.Series(
        [pd.NA if r.isna().all() else bool(r.fillna(False).any()) for _, r in fronts.iterrows()],
        index=merged.index, dtype="boolean")


def _notes(merged: pd.DataFrame, sel: _Selection, precision: str | None,
           predictions: PredictionRows | None) -> list[Note]:
    """Every note of the table, in the order they are numbered: gaps, then ensemble and TTA rows."""
    left_out = {**unfinished_runs(sel.train_records), **other_recipe_runs(sel.runs, sel.picked),
                **learned_nothing_runs(sel.train_records)}
    pending = pd.DataFrame([(st, m, d, sz, seeds) for (st, m, d, sz), seeds in left_out.items()],
                           columns=["status", *KEYS, "seeds"])
    shown = f"{sel.machine.name} {sel.machine.precision}" if sel.machine is not None else None
    notes = gap_notes(merged, shown, sel.keep(typed_frame(pending)), unconverged_rows(merged, sel.train),
                      sel.conflicts)
    notes.append(noisy_note(merged, sel.train))
    notes.append(plugin_note(merged, sel.train_records))
    return notes + (prediction_notes(merged, predictions) if predictions is not None else [])


def _annotate(merged: pd.DataFrame, sel: _Selection, precision: str | None, sort: str | None,
              predictions: PredictionRows | None) -> Leaderboard:
    """Pareto fronts, the sort, the footnotes and the CUDA-graphs column: the finished table."""
    sort_col, ascending = resolve_sort(sort)
    _pareto(merged)
    merged = merged.sort_values(["dataset", "size", sort_col, "model"], ascending=[True, True, ascending, True],
                                na_position="last", kind="stable").reset_index(drop=True)
    footnotes, markers = number_notes(_notes(merged, sel, precision, predictions), merged)
    m = sel.machine
    extra = attach_graphs_p50(merged, sel.graphs, KEYS)
    return Leaderboard(merged[COLUMNS + extra], m.device if m else None, [m.name] if m else [],
                       m.precision if m else precision, footnotes, markers, predictions, others=sel.others)


def assemble_leaderboard(
    train_records: list[dict],
    profile_records: list[dict] = (),
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
    """The leaderboard of records already validated (:func:`read_results`, :func:`check_records`):
    select -> merge -> annotate."""
    resolve_sort(sort)  # an unknown --sort fails before any work
    sel = _select(list(train_records), list(profile_records), benchmark_json, device, precision, dataset, size, models)
    merged, predictions = _merge(sel, precision, results_root)
    return _annotate(merged, sel, precision, sort, predictions)


def build_leaderboard(train_records: Iterable[dict], profile_records: Iterable[dict] = (), **options: Any
                      ) -> Leaderboard:
    """The leaderboard from records in memory, validated here (see :func:`load_leaderboard` for a
    results dir); ``options``: those of :func:`assemble_leaderboard`."""
    return assemble_leaderboard(check_records(train_records, "train"), check_records(profile_records, "profile"),
                                **options)


def load_leaderboard(results: str | os.PathLike | None = None, *,
                     benchmark_json: Sequence[str | os.PathLike] = (), **options: Any) -> Leaderboard:
    """The leaderboard of a results dir (default: the committed ``reports/results``).

    Fails with one line when there is nothing to show (see :func:`read_results`).
    """
    root, train, profiles = read_results(results, benchmark_json)
    return assemble_leaderboard(train, profiles, benchmark_json=benchmark_json, results_root=root, **options)
