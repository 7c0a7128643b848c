"""Records as flat frames: finished runs, the recipe each row averages, cost rows, aggregates, Pareto fronts."""

from __future__ import annotations

import math
import os
from collections import Counter
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from bloodbench.errors import BloodbenchError, warn
from bloodbench.formatting import device_label, fmt
from bloodbench.leaderboard.columns import (
    COLUMNS,
    COST_COLUMNS,
    COST_KEYS,
    HIGHER_IS_BETTER,
    KEYS,
    METRICS,
    PREFERRED_PRECISION,
    PROFILE_COLUMNS,
    SORT_ALIASES,
    typed_frame,
)
from bloodbench.leaderboard.ingest import benchmark_frame
from bloodbench.leaderboard.train_source import one_machine, one_setting, recipe_setting, sweep_load
from bloodbench.store.benchjson import number_or_nan
from bloodbench.store.results import model_info
from bloodbench.store.schema import is_finished


def family_of(rec: dict) -> str | None:
    return model_info(rec["model"], [rec]).get("family")


def _recipe(rec: dict) -> str:
    from bloodbench.config import recipe_hash

    return recipe_hash(rec.get("config") or {}) if rec.get("config") else str(rec.get("run_id"))


def finished_runs_frame(records: Iterable[dict]) -> pd.DataFrame:
    """Every finished training run, one row each, with the hash of its recipe (config less seed)."""
    rows = []
    for rec in records:
        if rec.get("kind", "train") != "train" or rec.get("status") != "finished" or rec.get("learned_nothing"):
            continue  # a run that learned nothing is footnoted (learned_nothing_runs), never averaged
        test = rec.get("test") or {}
        load, cpus = sweep_load(rec)
        rows.append({
            "model": rec["model"], "dataset": rec["dataset"], "size": int(rec["size"]),
            "seed": rec.get("seed"), "run_id": rec.get("run_id"), "family": family_of(rec), "recipe": _recipe(rec),
            **{m: number_or_nan(test.get(m)) for m in METRICS},
            "train_seconds": number_or_nan(rec.get("train_seconds")), "epochs_run": number_or_nan(rec.get("epochs_run")),
            "stop_reason": rec.get("stop_reason"), "params": number_or_nan(rec.get("params")),
            "converged": bool(rec.get("converged", True)), "train_images_per_s": train_images_per_s(rec),
            "train_device": (rec.get("env") or {}).get("device"), "train_machine": train_machine(rec),
            "train_setting": recipe_setting(rec), "train_load": load, "train_cpus": cpus,
            "created_at": str(rec.get("created_at") or ""),
        })
    cols = KEYS + ["seed", "run_id", "family", "recipe", *METRICS, "train_seconds", "epochs_run", "stop_reason",
                   "params", "converged", "train_images_per_s", "train_device", "train_machine", "train_setting",
                   "train_load", "train_cpus", "created_at"]
    return typed_frame(pd.DataFrame(rows, columns=cols))


def pick_recipe(runs: pd.DataFrame) -> pd.DataFrame:
    """One recipe per (model, dataset, size): the one with most seeds, then the newest.

    Mean ± std over seeds only means something when the seeds share a recipe; a CPU fp32
    run and a later GPU bf16 run of the same model must not be averaged together.
    A rerun of the same seed and recipe counts once (the newest).
    """
    if runs.empty:
        return runs
    runs = runs.sort_values(KEYS + ["seed", "created_at", "run_id"], kind="stable")
    runs = runs.drop_duplicates(KEYS + ["recipe", "seed"], keep="last")
    score = runs.groupby(KEYS + ["recipe"], sort=False).agg(n=("seed", "nunique"), newest=("created_at", "max"))
    best = score.reset_index().sort_values(["n", "newest"], kind="stable").drop_duplicates(KEYS, keep="last")
    return runs.merge(best[KEYS + ["recipe"]], on=KEYS + ["recipe"]).reset_index(drop=True)


def train_frame(records: Iterable[dict]) -> pd.DataFrame:
    """Finished training runs of each model's chosen recipe, one row per seed (see :func:`pick_recipe`)."""
    return pick_recipe(finished_runs_frame(records))


def other_recipe_runs(runs: pd.DataFrame, kept: pd.DataFrame) -> dict[tuple[str, str, str, int], list]:
    """Finished seeds of ``runs`` left out of ``kept`` (:func:`pick_recipe`) because they used
    another recipe, keyed like :func:`unfinished_runs` so the leaderboard footnotes them the same way."""
    out: dict[tuple[str, str, str, int], set] = {}
    for r in runs[~runs["run_id"].isin(set(kept["run_id"]))].itertuples(index=False):
        out.setdefault(("other recipe", r.model, r.dataset, int(r.size)), set()).add(r.seed)
    return {k: sorted(v) for k, v in sorted(out.items())}


def train_machine(rec: dict) -> str | None:
    """The machine a run trained on: the GPU, or the CPU with its threads ("AMD EPYC (1 thread)")."""
    env = rec.get("env") or {}
    name = env.get("device_name")
    if not name and env.get("cpu_name"):
        threads = env.get("cpu_threads")
        name = f"{env['cpu_name']} ({threads} threads)" if threads else env["cpu_name"]
    return device_label(name) if name else None


def train_images_per_s(rec: dict) -> float:
    """Training images per second of a run: train images per epoch / median epoch seconds.

    The epoch time includes the validation pass, so this is a lower bound on the pure step rate
    that the ``train_step`` benchmark measures.
    """
    n_train = number_or_nan((rec.get("data") or {}).get("n_train"))
    seconds = [number_or_nan(h.get("epoch_seconds")) for h in rec.get("history") or [] if isinstance(h, dict)]
    seconds = [x for x in seconds if x > 0]
    if math.isnan(n_train) or not seconds:
        return math.nan
    return n_train / float(np.median(seconds))


def learned_nothing_runs(records: Iterable[dict]) -> dict[tuple[str, str, str, int], list]:
    """Finished seeds flagged ``learned_nothing`` (bloodbench.store.verdicts), keyed like :func:`unfinished_runs`."""
    out: dict[tuple[str, str, str, int], set] = {}
    for r in records:
        if r.get("kind", "train") == "train" and r.get("status") == "finished" and r.get("learned_nothing"):
            out.setdefault(("learned nothing", *_run_key(r)[:3]), set()).add(r.get("seed"))
    return {k: sorted(v) for k, v in sorted(out.items())}


def _run_key(rec: dict) -> tuple[str, str, int, Any]:
    """(model, dataset, size, seed): what a rerun of the same seed shares."""
    return rec["model"], rec["dataset"], int(rec["size"]), rec.get("seed")


def unfinished_runs(records: Iterable[dict]) -> dict[tuple[str, str, str, int], list]:
    """Seeds whose training did not finish, by (status, model, dataset, size): worth a footnote, never a number.

    The trainer marks a run "finished" or "diverged"; a seed that was rerun to completion is
    left out, since its finished run is in the table.
    """
    runs = [r for r in records if r.get("kind", "train") == "train"]
    done = {_run_key(r) for r in runs if is_finished(r)}
    seeds: dict[tuple[str, str, str, int], set] = {}
    for r in runs:
        if not is_finished(r) and _run_key(r) not in done:
            seeds.setdefault((str(r.get("status") or "no status"), *_run_key(r)[:3]), set()).add(r.get("seed"))
    return {k: sorted(v, key=lambda s: (s is None, s)) for k, v in sorted(seeds.items())}


def _peak_batch(rec: dict) -> float:
    """The batch size of a profile's best images/s (its ``throughput`` sweep), NaN if not recorded."""
    sweep = [t for t in rec.get("throughput") or [] if isinstance(t, dict) and not math.isnan(number_or_nan(t.get("images_per_s")))]
    if not sweep:
        return math.nan
    return number_or_nan(max(sweep, key=lambda t: number_or_nan(t["images_per_s"])).get("batch_size"))


def profile_frame(records: Iterable[dict]) -> pd.DataFrame:
    """Profile records as cost rows."""
    rows = []
    for rec in records:
        if rec.get("kind", "profile") != "profile":
            continue
        row = {col: number_or_nan(_field(rec, path)) for col, path in PROFILE_COLUMNS.items()}
        if math.isnan(row["flops"]):
            row["flops"] = 2 * row["macs"]
        row["throughput_batch_size"] = _peak_batch(rec)
        rows.append({
            "model": rec["model"], "dataset": rec["dataset"], "size": int(rec["size"]),
            "device": rec.get("device") or (rec.get("env") or {}).get("device"),
            "precision": rec.get("precision") or PREFERRED_PRECISION,
            "device_name": device_label(rec.get("device_name") or (rec.get("env") or {}).get("device_name")),
            **row, "created_at": str(rec.get("created_at") or ""), "source": "profile",
            "cuda_graphs": bool(rec.get("cuda_graphs")), "latency_noisy": bool(_field(rec, ("latency", "noisy"))),
        })
    return typed_frame(pd.DataFrame(rows, columns=COST_COLUMNS))


def _field(rec: dict, path: Sequence[str]) -> Any:
    """``rec[a][b]...``, None where any level is missing."""
    for key in path:
        rec = rec.get(key) if isinstance(rec, dict) else None
    return rec


def cost_frame(profile_records: Iterable[dict], benchmark_json: Sequence[str | os.PathLike] = ()) -> pd.DataFrame:
    """Every cost row from both sources."""
    frames = [f for f in (profile_frame(profile_records), benchmark_frame(benchmark_json)) if not f.empty]
    if not frames:
        return typed_frame(pd.DataFrame(columns=COST_COLUMNS))
    return pd.concat(frames, ignore_index=True)


def _stop_summary(reasons: pd.Series) -> str:
    counts = Counter(r for r in reasons if r)
    return ", ".join(f"{r} ×{n}" if n > 1 else r for r, n in sorted(counts.items()))


def aggregate_training(train: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample std (ddof=1; blank for one seed) and seed count per (model, dataset, size)."""
    if train.empty:
        cols = KEYS + ["seeds"] + [f"{m}_{s}" for m in METRICS for s in ("mean", "std")] + [
            "train_seconds_mean", "epochs_mean", "train_params", "family", "stop_reasons", "recipe",
            "unconverged_seeds", "train_images_per_s", "train_device", "train_machine", "train_setting",
            "train_load_mean", "train_cpu_count"]
        return typed_frame(pd.DataFrame(columns=cols))
    if "converged" not in train:  # frames made by hand, before the convergence rule
        train = train.assign(converged=True)
    for col in ("train_images_per_s", "train_device", "train_machine", "train_setting", "train_load", "train_cpus"):
        if col not in train:
            train = train.assign(**{col: None})
    train = train.assign(unconverged=~train["converged"].astype(bool),
                         **{c: pd.to_numeric(train[c]) for c in ("train_images_per_s", "train_load", "train_cpus")})
    g = train.groupby(KEYS, sort=True)
    out = g.agg(
        seeds=("acc", "count"),  # the seeds actually averaged: the count must match the mean
        unconverged_seeds=("unconverged", "sum"),
        train_images_per_s=("train_images_per_s", "mean"),
        train_device=("train_device", "first"),
        train_machine=("train_machine", one_machine),
        train_setting=("train_setting", one_setting),
        train_load_mean=("train_load", "mean"),  # the seeds' mean 1-minute load while they trained
        train_cpu_count=("train_cpus", "max"),
        **{f"{m}_{s}": (m, s) for m in METRICS for s in ("mean", "std")},
        train_seconds_mean=("train_seconds", "mean"),
        epochs_mean=("epochs_run", "mean"),
        train_params=("params", "first"),
        family=("family", "first"),
        recipe=("recipe", "first"),  # one per row: see pick_recipe
    )
    out["stop_reasons"] = g["stop_reason"].apply(_stop_summary)
    return out.reset_index()


CONFLICT_TOLERANCE = 0.2  # relative: timings of two tools on one machine differ by less than this


def select_costs(costs: pd.DataFrame, precision: str | None = None) -> pd.DataFrame:
    """One cost row per (model, dataset, size): the asked precision (else fp32 first), then a
    profile record before a benchmark file (a measured profile is never overridden), then the newest."""
    if costs.empty:
        return costs
    if precision:
        costs = costs[costs["precision"] == precision]
    ranked = costs.assign(_pref=(costs["precision"] != PREFERRED_PRECISION).astype(int),
                          _bench=(costs["source"] != "profile").astype(int))
    ranked = ranked.sort_values(KEYS + ["_pref", "_bench", "created_at", "source"],
                                ascending=[True] * 3 + [True, True, False, True], kind="stable")
    return ranked.drop_duplicates(KEYS, keep="first").drop(columns=["_pref", "_bench"]).reset_index(drop=True)


def cost_conflicts(costs: pd.DataFrame, chosen: pd.DataFrame) -> dict[tuple, str]:
    """Rows where another source measured the shown (device, precision) and disagrees by more than
    :data:`CONFLICT_TOLERANCE` on p50 latency or throughput: (model, dataset, size) -> what it said.
    Each is also one warning line, since the shown figure set the other aside."""
    out: dict[tuple, str] = {}
    if chosen.empty:
        return out
    others = costs.merge(chosen[COST_KEYS + ["source", "latency_p50_ms", "throughput"]], on=COST_KEYS,
                         suffixes=("", "_shown"))
    others = others[others["source"] != others["source_shown"]]
    for r in others.itertuples(index=False):
        said = []
        for col, label, unit in (("latency_p50_ms", "p50", " ms"), ("throughput", "throughput", " img/s")):
            mine, shown = getattr(r, col), getattr(r, f"{col}_shown")
            if pd.notna(mine) and pd.notna(shown) and abs(mine - shown) > CONFLICT_TOLERANCE * max(abs(shown), 1e-12):
                said.append(f"{label} {fmt(mine, ',.3f' if unit == ' ms' else ',.0f')}{unit} vs "
                            f"{fmt(shown, ',.3f' if unit == ' ms' else ',.0f')}{unit}")
        if said:
            name = lambda src: "profile record" if src == "profile" else str(src).removeprefix("benchmark:")
            text = f"{name(r.source)} says {'; '.join(said)} in the {name(r.source_shown)} shown"
            key = (r.model, r.dataset, int(r.size))
            out[key] = f"{out[key]}; {text}" if key in out else text
            warn(f"cost conflict for {r.model} ({r.dataset} {int(r.size)}px, {r.device} {r.precision}): {text}")
    return out


def pareto_front(df: pd.DataFrame, cost: str, acc: str = "acc_mean",
                 by: Sequence[str] = ("dataset", "size")) -> tuple[pd.Series, pd.Series]:
    """(on_front, dominated_by) for accuracy up / ``cost`` down, within each ``by`` group.

    A row is dominated when another is at least as accurate and at least as cheap, and
    strictly better on one. ``dominated_by`` names the most accurate dominating model
    (then the cheapest, then by name). Rows missing either value get NA on both.
    """
    on = pd.Series(pd.NA, index=df.index, dtype="boolean")
    dom = pd.Series(None, index=df.index, dtype=object)
    valid = df.dropna(subset=[acc, cost])
    for _, g in valid.groupby(list(by), sort=True):
        for i, row in g.iterrows():
            better = g[(g[acc] >= row[acc]) & (g[cost] <= row[cost]) & ((g[acc] > row[acc]) | (g[cost] < row[cost]))]
            if better.empty:
                on[i] = True
            else:
                best = better.sort_values([acc, cost, "model"], ascending=[False, True, True], kind="stable").iloc[0]
                on[i] = False
                dom[i] = best["model"]
    return on, dom


def resolve_sort(sort: str | None) -> tuple[str, bool]:
    """(column, ascending). ``-col`` / ``+col`` force the direction; else better-first."""
    sort = (sort or "acc").strip()
    forced = None
    if sort[:1] in "+-":
        forced, sort = sort[0] == "+", sort[1:]
    col = SORT_ALIASES.get(sort, sort)
    if col not in COLUMNS:
        raise BloodbenchError(f"cannot sort by {sort!r}: use one of acc, f1, auc, latency, p99, throughput, "
                              f"params, macs, memory, model, seeds, train_seconds, epochs (prefix - or + for order)")
    return col, forced if forced is not None else col not in HIGHER_IS_BETTER

