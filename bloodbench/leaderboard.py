"""Join training and profiling records into one accuracy-vs-cost table with Pareto fronts.

One row per (model, dataset, size): test metrics aggregated over seeds (mean, sample std,
count) next to the cost of that model on one device. Cost comes from profile records and
from pytest-benchmark JSON files (``pytest benchmarks/ --benchmark-json out.json``), which
are turned into the same shape so either source can feed the table.

Gaps are kept, not hidden: a model trained but not profiled (or the reverse) keeps its
row with empty cells, and a footnote names what is missing.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd

from bloodbench.choices import LEADERBOARD_FORMATS
from bloodbench.errors import BloodbenchError
from bloodbench.formatting import device_label, fmt, fmt_count, machine_device_name, md_table, mean_std
from bloodbench.results import ResultsStore, resolve_results_dir

KEYS = ["model", "dataset", "size"]
COST_KEYS = KEYS + ["device", "precision"]
METRICS = ("acc", "f1_macro", "auc")
FORMATS = LEADERBOARD_FORMATS
PREFERRED_PRECISION = "fp32"

# Columns of a cost row, whether it came from a profile record or a benchmark JSON.
COST_COLUMNS = COST_KEYS + [
    "device_name", "params", "macs", "flops", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms",
    "latency_batch_size", "throughput", "peak_memory_mb", "created_at", "source",
]

# The public row layout (JSON / CSV) in order.
COLUMNS = [
    "model", "family", "dataset", "size", "seeds",
    "acc_mean", "acc_std", "f1_macro_mean", "f1_macro_std", "auc_mean", "auc_std",
    "train_seconds_mean", "epochs_mean", "stop_reasons", "recipe",
    "params", "macs", "flops",
    "latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "throughput", "peak_memory_mb",
    "device", "device_name", "precision", "cost_source",
    "pareto", "pareto_macs", "dominated_by_macs", "pareto_latency", "dominated_by_latency",
]
INT_COLUMNS = ("size", "seeds", "params", "macs", "flops")

# Friendly names accepted by --sort, and which direction is "better" for each column.
SORT_ALIASES = {
    "acc": "acc_mean", "accuracy": "acc_mean", "f1": "f1_macro_mean", "f1_macro": "f1_macro_mean",
    "auc": "auc_mean", "latency": "latency_p50_ms", "p50": "latency_p50_ms", "p90": "latency_p90_ms",
    "p99": "latency_p99_ms", "memory": "peak_memory_mb", "train_seconds": "train_seconds_mean",
    "epochs": "epochs_mean",
}
HIGHER_IS_BETTER = {"acc_mean", "f1_macro_mean", "auc_mean", "throughput", "seeds"}

FRONTS = {"macs": "macs", "latency": "latency_p50_ms"}


# --------------------------------------------------------------------------------------
# records -> flat frames
# --------------------------------------------------------------------------------------
def _typed(df: pd.DataFrame) -> pd.DataFrame:
    """Key dtypes fixed even when empty, so merges of an empty side do not fail on dtypes."""
    df = df.copy()
    for col in ("model", "dataset", "device", "precision"):
        if col in df:
            df[col] = df[col].astype(object)
    if "size" in df:
        df["size"] = df["size"].astype("int64")
    return df


def _num(value: Any) -> float:
    """A record value as float, NaN when absent (so pandas aggregates skip it)."""
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _family(rec: dict) -> str | None:
    info = rec.get("model_info") or {}
    if info.get("family"):
        return info["family"]
    try:
        from bloodbench.models import get_model_info

        return get_model_info(rec["model"]).family
    except (BloodbenchError, ImportError):
        return None


def _recipe(rec: dict) -> str:
    from bloodbench.train.config import recipe_hash

    return recipe_hash(rec.get("config") or {}) if rec.get("config") else str(rec.get("run_id"))


def finished_runs_frame(records: Iterable[dict]) -> pd.DataFrame:
    """Every finished training run, one row each, with the hash of its recipe (config less seed)."""
    rows = []
    for rec in records:
        if rec.get("kind", "train") != "train" or rec.get("status") != "finished":
            continue
        test = rec.get("test") or {}
        rows.append({
            "model": rec["model"], "dataset": rec["dataset"], "size": int(rec["size"]),
            "seed": rec.get("seed"), "run_id": rec.get("run_id"), "family": _family(rec), "recipe": _recipe(rec),
            **{m: _num(test.get(m)) for m in METRICS},
            "train_seconds": _num(rec.get("train_seconds")), "epochs_run": _num(rec.get("epochs_run")),
            "stop_reason": rec.get("stop_reason"), "params": _num(rec.get("params")),
            "created_at": str(rec.get("created_at") or ""),
        })
    cols = KEYS + ["seed", "run_id", "family", "recipe", *METRICS, "train_seconds", "epochs_run", "stop_reason",
                   "params", "created_at"]
    return _typed(pd.DataFrame(rows, columns=cols))


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


def _run_key(rec: dict) -> tuple[str, str, int, Any]:
    """(model, dataset, size, seed): what a rerun of the same seed shares."""
    return rec["model"], rec["dataset"], int(rec["size"]), rec.get("seed")


def unfinished_runs(records: Iterable[dict]) -> dict[tuple[str, str, str, int], list]:
    """Seeds whose training did not finish, by (status, model, dataset, size): worth a footnote, never a number.

    The trainer marks a run "finished" or "diverged"; a seed that was rerun to completion is
    left out, since its finished run is in the table.
    """
    runs = [r for r in records if r.get("kind", "train") == "train"]
    done = {_run_key(r) for r in runs if r.get("status") == "finished"}
    seeds: dict[tuple[str, str, str, int], set] = {}
    for r in runs:
        if r.get("status") != "finished" and _run_key(r) not in done:
            seeds.setdefault((str(r.get("status") or "no status"), *_run_key(r)[:3]), set()).add(r.get("seed"))
    return {k: sorted(v, key=lambda s: (s is None, s)) for k, v in sorted(seeds.items())}


def _record_problem(rec: dict) -> str | None:
    """Why a record cannot be joined on (model, dataset, size), or None."""
    missing = [k for k in KEYS if rec.get(k) in (None, "")]
    if missing:
        return f"no {', '.join(map(repr, missing))} field"
    try:
        int(rec["size"])
    except (TypeError, ValueError):
        return f"size {rec['size']!r} is not an integer"
    return None


def check_records(records: Iterable[dict], kind: str, store: ResultsStore | None = None) -> list[dict]:
    """The records, each checked for the keys rows are joined on: a malformed file is named in
    one line instead of surfacing as a KeyError."""
    records = list(records)
    for rec in records:
        problem = _record_problem(rec)
        if problem:
            run_id = rec.get("run_id")
            where = (store.record_path(kind, run_id) if store and run_id else f"of run {run_id}" if run_id
                     else f"under {store.root / kind}" if store else "without a run_id")
            raise BloodbenchError(f"malformed {kind} record {where}: {problem}; fix or delete it")
    return records


def store_records(root: Path, kind: str) -> list[dict]:
    """Checked records of one kind in a results dir (none if the dir does not exist)."""
    store = ResultsStore(root)
    return check_records(store.records(kind), kind, store) if root.is_dir() else []


def read_results(results: str | os.PathLike | None = None,
                 benchmark_json: Sequence[str | os.PathLike] = ()) -> tuple[Path, list[dict], list[dict]]:
    """(root, train records, profile records), or one line saying why there is nothing to show.

    Shared by ``leaderboard`` and ``report`` so both fail the same way: a ``--results`` dir
    that does not exist, or no records at all and no benchmark JSON to take cost from.
    """
    root = resolve_results_dir(results)
    if results and not root.is_dir():
        raise BloodbenchError(f"results directory {root} does not exist: check the path, or leave --results "
                              f"out to use the committed reports/results")
    train, profiles = store_records(root, "train"), store_records(root, "profile")
    if not train and not profiles and not benchmark_json:
        what = f"no results in {root}" if root.is_dir() else f"results directory {root} does not exist"
        raise BloodbenchError(f"{what}: run `bloodbench run` (or `bloodbench train` and `bloodbench profile`), "
                              f"or point --results at a results directory")
    return root, train, profiles


def profile_frame(records: Iterable[dict]) -> pd.DataFrame:
    """Profile records as cost rows."""
    rows = []
    for rec in records:
        if rec.get("kind", "profile") != "profile":
            continue
        lat = rec.get("latency") or {}
        macs = _num(rec.get("macs"))
        flops = _num(rec.get("flops"))
        rows.append({
            "model": rec["model"], "dataset": rec["dataset"], "size": int(rec["size"]),
            "device": rec.get("device") or (rec.get("env") or {}).get("device"),
            "precision": rec.get("precision") or PREFERRED_PRECISION,
            "device_name": device_label(rec.get("device_name") or (rec.get("env") or {}).get("device_name")),
            "params": _num(rec.get("params")), "macs": macs,
            "flops": flops if not math.isnan(flops) else 2 * macs,
            "latency_p50_ms": _num(lat.get("p50_ms")), "latency_p90_ms": _num(lat.get("p90_ms")),
            "latency_p99_ms": _num(lat.get("p99_ms")), "latency_batch_size": _num(lat.get("batch_size")),
            "throughput": _num(rec.get("peak_throughput")), "peak_memory_mb": _num(rec.get("peak_memory_mb")),
            "created_at": str(rec.get("created_at") or ""), "source": "profile",
        })
    return _typed(pd.DataFrame(rows, columns=COST_COLUMNS))


def read_benchmark_json(path: str | os.PathLike) -> dict:
    """A pytest-benchmark JSON file, checked enough to give a one-line error instead of a KeyError."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise BloodbenchError(f"benchmark JSON {path} not found: make it with "
                              f"`pytest benchmarks/ --benchmark-json {path}`") from None
    except (OSError, ValueError) as exc:
        raise BloodbenchError(f"benchmark JSON {path} is unreadable ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise BloodbenchError(f"{path} is not a pytest-benchmark JSON file (no 'benchmarks' list)")
    return data


def _benchmark_entries(path: str | os.PathLike, data: dict) -> Iterator[tuple[str, dict, dict]]:
    """(where, extra_info, stats) per benchmark, each checked to be an object, so a stray value in
    the file is a one-line error naming it instead of an AttributeError."""
    for i, bench in enumerate(data["benchmarks"]):
        where = f"{path}: benchmarks[{i}]"
        if not isinstance(bench, dict):
            raise BloodbenchError(f"{where} is {bench!r:.40}, not an object")
        parts = {name: bench.get(name) or {} for name in ("extra_info", "stats")}
        for name, part in parts.items():
            if not isinstance(part, dict):
                raise BloodbenchError(f"{where}.{name} is {part!r:.40}, not an object")
        yield where, parts["extra_info"], parts["stats"]


def _int_field(extra: dict, key: str, default: int, where: str) -> int:
    """An integer ``extra_info`` field (28, 28.0 or "28"), or a one-line error naming the entry."""
    value = extra.get(key)
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not number.is_integer():
        raise BloodbenchError(f"{where}.extra_info.{key} is {value!r}, not an integer")
    return int(number)


def benchmark_frame(paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """Inference entries of pytest-benchmark files as cost rows, like profile records.

    Latency is read from the batch-1 entries (a per-image figure), throughput is the
    best images/s over every batch size, as in profile records.
    """
    entries = []
    for path in paths:
        data = read_benchmark_json(path)
        machine = data.get("machine_info") if isinstance(data.get("machine_info"), dict) else {}
        when = str(data.get("datetime") or "")
        for where, extra, stats in _benchmark_entries(path, data):
            if extra.get("kind", "inference") != "inference" or not extra.get("model"):
                continue
            batch = _int_field(extra, "batch_size", 1, where)
            median_s = _num(stats.get("median"))
            p50 = _num(extra.get("p50_ms"))
            if math.isnan(p50) and not math.isnan(median_s):
                p50 = median_s * 1e3
            ips = _num(extra.get("images_per_s"))
            if math.isnan(ips) and median_s > 0:
                ips = batch / median_s
            device = extra.get("device") or "cpu"
            entries.append({
                "model": extra["model"], "dataset": extra.get("dataset", "bloodmnist"),
                "size": _int_field(extra, "size", 28, where), "device": device,
                "precision": extra.get("precision") or PREFERRED_PRECISION,
                "device_name": extra.get("device_name") or machine_device_name(machine, device),
                "params": _num(extra.get("params")), "macs": _num(extra.get("macs")),
                "flops": _num(extra.get("flops")), "batch_size": batch,
                "p50": p50, "p90": _num(extra.get("p90_ms")), "p99": _num(extra.get("p99_ms")),
                "images_per_s": ips, "created_at": when, "source": f"benchmark:{Path(path).name}",
            })
    if not entries:
        return _typed(pd.DataFrame(columns=COST_COLUMNS))
    df = pd.DataFrame(entries)
    rows = []
    for key, g in df.groupby(COST_KEYS + ["source"], sort=True):
        one = g[g["batch_size"] == 1]
        lat = one.iloc[-1] if len(one) else None
        macs = g["macs"].dropna()
        flops = g["flops"].dropna()
        rows.append({
            **dict(zip(COST_KEYS + ["source"], key)),
            "device_name": g["device_name"].dropna().iloc[0] if g["device_name"].notna().any() else None,
            "params": g["params"].dropna().iloc[0] if g["params"].notna().any() else math.nan,
            "macs": macs.iloc[0] if len(macs) else math.nan,
            "flops": flops.iloc[0] if len(flops) else (2 * macs.iloc[0] if len(macs) else math.nan),
            "latency_p50_ms": lat["p50"] if lat is not None else math.nan,
            "latency_p90_ms": lat["p90"] if lat is not None else math.nan,
            "latency_p99_ms": lat["p99"] if lat is not None else math.nan,
            "latency_batch_size": 1.0 if lat is not None else math.nan,
            "throughput": g["images_per_s"].max(), "peak_memory_mb": math.nan,
            "created_at": g["created_at"].max(),
        })
    return _typed(pd.DataFrame(rows, columns=COST_COLUMNS))


def cost_frame(profile_records: Iterable[dict], benchmark_json: Sequence[str | os.PathLike] = ()) -> pd.DataFrame:
    """Every cost row from both sources."""
    frames = [f for f in (profile_frame(profile_records), benchmark_frame(benchmark_json)) if not f.empty]
    if not frames:
        return _typed(pd.DataFrame(columns=COST_COLUMNS))
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------------------
# aggregation, device choice, Pareto
# --------------------------------------------------------------------------------------
def _stop_summary(reasons: pd.Series) -> str:
    counts = Counter(r for r in reasons if r)
    return ", ".join(f"{r} ×{n}" if n > 1 else r for r, n in sorted(counts.items()))


def aggregate_training(train: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample std (ddof=1; blank for one seed) and seed count per (model, dataset, size)."""
    if train.empty:
        cols = KEYS + ["seeds"] + [f"{m}_{s}" for m in METRICS for s in ("mean", "std")] + [
            "train_seconds_mean", "epochs_mean", "train_params", "family", "stop_reasons", "recipe"]
        return _typed(pd.DataFrame(columns=cols))
    g = train.groupby(KEYS, sort=True)
    out = g.agg(
        seeds=("seed", "count"),
        **{f"{m}_{s}": (m, s) for m in METRICS for s in ("mean", "std")},
        train_seconds_mean=("train_seconds", "mean"),
        epochs_mean=("epochs_run", "mean"),
        train_params=("params", "first"),
        family=("family", "first"),
        recipe=("recipe", "first"),  # one per row: see pick_recipe
    )
    out["stop_reasons"] = g["stop_reason"].apply(_stop_summary)
    return out.reset_index()


def choose_device(costs: pd.DataFrame, device: str | None) -> tuple[str | None, pd.DataFrame]:
    """Pick the device whose cost the table shows; returns (device label, its cost rows).

    Default: cuda when any cuda cost exists (the best hardware measured), else cpu.
    ``NAME`` (not cpu/cuda) matches the device name, case-insensitively, as a substring.
    """
    if costs.empty:
        if device:
            raise BloodbenchError(f"no profile records at all, so no cost on {device}: "
                                  f"run `bloodbench profile --all` or drop --device")
        return None, costs
    present = sorted(costs["device"].dropna().unique())
    if device is None:
        device = "cuda" if "cuda" in present else ("cpu" if "cpu" in present else present[0])
    if device in ("cpu", "cuda"):
        rows = costs[costs["device"] == device]
    else:
        rows = costs[costs["device_name"].fillna("").str.lower().str.contains(device.lower(), regex=False)]
    if rows.empty:
        have = ", ".join(f"{d} ({n})" for d, n in sorted(
            costs[["device", "device_name"]].fillna("?").drop_duplicates().itertuples(index=False)))
        raise BloodbenchError(f"no profile records on {device!r}; profiled devices: {have}")
    return device, rows


def select_costs(costs: pd.DataFrame, precision: str | None = None) -> pd.DataFrame:
    """One cost row per (model, dataset, size): the asked precision (else fp32 first), then the newest."""
    if costs.empty:
        return costs
    if precision:
        costs = costs[costs["precision"] == precision]
    ranked = costs.assign(_pref=(costs["precision"] != PREFERRED_PRECISION).astype(int))
    ranked = ranked.sort_values(KEYS + ["_pref", "created_at", "source"], ascending=[True] * 3 + [True, False, True],
                                kind="stable")
    return ranked.drop_duplicates(KEYS, keep="first").drop(columns="_pref").reset_index(drop=True)


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


def _resolve_sort(sort: str | None) -> tuple[str, bool]:
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


# --------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------
@dataclass
class Leaderboard:
    """The joined table plus what a reader needs to trust it: device, footnotes."""

    rows: pd.DataFrame
    device: str | None
    device_names: list[str]
    precision: str | None
    footnotes: list[str] = field(default_factory=list)
    markers: dict[tuple, str] = field(default_factory=dict)

    def groups(self) -> list[tuple[tuple[str, int], pd.DataFrame]]:
        return [((d, int(s)), g) for (d, s), g in self.rows.groupby(["dataset", "size"], sort=True)]

    def device_label(self) -> str:
        if self.device is None:
            return "no profile records: cost columns are empty"
        names = "; ".join(self.device_names) or "unnamed device"
        prec = self.precision or f"{PREFERRED_PRECISION} preferred"
        return f"cost on {self.device}: {names} ({prec}); {self.cost_sources()}"

    def cost_sources(self) -> str:
        """Which rows' cost came from pytest-benchmark JSON and which from profile records:
        a benchmark file takes a row over when it is newer, and the reader should know."""
        rows = self.rows.dropna(subset=["cost_source"])
        bench = rows[rows["cost_source"] != "profile"]
        if bench.empty:
            return "source: profile records"
        one_source = rows["cost_source"].nunique() == 1  # then naming the rows says nothing
        parts = []
        for source, g in bench.groupby("cost_source", sort=True):
            which = "" if one_source else f" for {', '.join(sorted(set(g['model'])))}"
            parts.append(f"pytest-benchmark {str(source).removeprefix('benchmark:')}{which}")
        if len(bench) < len(rows):
            parts.append("profile records for the other rows")
        return "source: " + "; ".join(parts)

    # -- machine-readable -----------------------------------------------------------------
    def to_records(self) -> list[dict[str, Any]]:
        out = []
        for rec in self.rows[COLUMNS].to_dict("records"):
            clean = {}
            for k, v in rec.items():
                if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
                    v = None
                elif isinstance(v, (np.integer,)):
                    v = int(v)
                elif isinstance(v, (np.floating, float)):
                    v = float(v)
                    if k in INT_COLUMNS and v.is_integer():
                        v = int(v)
                elif isinstance(v, np.bool_):
                    v = bool(v)
                clean[k] = v
            out.append(clean)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_records(), indent=1)

    def to_csv(self) -> str:
        df = pd.DataFrame(self.to_records(), columns=COLUMNS)
        for col in INT_COLUMNS:  # counts stay integers in the file even where some are blank
            df[col] = pd.to_numeric(df[col]).round().astype("Int64")
        return df.to_csv(index=False, lineterminator="\n")

    # -- human-readable ------------------------------------------------------------------
    def display_frame(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Formatted strings with unit-honest headers."""
        def front(on, by):
            if pd.isna(on):
                return ""
            return "✓" if on else f"by {by}"

        def col(name, spec, scale=1.0):
            return [fmt(v, spec, scale) for v in rows[name]]

        def spread(metric, spec, scale=1.0):
            return [mean_std(m, s, spec, scale) for m, s in zip(rows[f"{metric}_mean"], rows[f"{metric}_std"])]

        out = pd.DataFrame({
            "model": [f"{r.model}{self.markers.get((r.model, r.dataset, int(r.size)), '')}" for r in rows.itertuples()],
            "seeds": col("seeds", ".0f"),
            # Accuracy is a fraction in the records; percent reads better.
            "test acc (%)": spread("acc", ".2f", 100),
            "F1 macro": spread("f1_macro", ".3f"),
            "AUC": spread("auc", ".3f"),
            "params (M)": col("params", ".3f", 1e-6),
            "MACs (M)": col("macs", ".2f", 1e-6),
            "FLOPs (M) = 2×MACs": col("flops", ".2f", 1e-6),
            "p50 latency (ms)": col("latency_p50_ms", ".3f"),
            "p99 latency (ms)": col("latency_p99_ms", ".3f"),
            "throughput (img/s)": col("throughput", ",.0f"),
            "peak mem (MiB)": col("peak_memory_mb", ".1f"),
            "train time (s)": col("train_seconds_mean", ",.0f"),
            "epochs": [fmt_count(v) for v in rows["epochs_mean"]],
            "stop": list(rows["stop_reasons"].fillna("")),
            "Pareto MACs": [front(o, b) for o, b in zip(rows["pareto_macs"], rows["dominated_by_macs"])],
            "Pareto latency": [front(o, b) for o, b in zip(rows["pareto_latency"], rows["dominated_by_latency"])],
        })
        return out

    def group_markdown(self, rows: pd.DataFrame) -> str:
        table = self.display_frame(rows)
        return md_table(table.to_numpy().tolist(), list(table.columns))

    def to_markdown(self, heading_level: int = 3) -> str:
        parts = [f"_{self.device_label()}_", ""]
        hashes = "#" * heading_level
        for (dataset, size), g in self.groups():
            parts += [f"{hashes} {dataset}, {size}×{size} px", "", self.group_markdown(g), ""]
        parts += self.legend()
        return "\n".join(parts).rstrip() + "\n"

    def legend(self) -> list[str]:
        lines = [
            "Accuracy, F1 and AUC: test split, mean ± sample std over seeds. MACs: multiply-accumulates per "
            "image (fvcore); FLOPs = 2 × MACs. Latency: batch 1; throughput: best images/s over batch sizes.",
            "Pareto: ✓ = not dominated on (accuracy ↑, cost ↓) among the rows of the same dataset and size; "
            "\"by X\" names a model that is at least as accurate and as cheap, and better on one; "
            "blank = a value is missing.",
        ]
        if self.footnotes:
            lines += [""] + [f"{f}  " for f in self.footnotes]
        return lines

    def render(self, fmt: str = "markdown") -> str:
        if fmt == "json":
            return self.to_json() + "\n"
        if fmt == "csv":
            return self.to_csv()
        if fmt == "markdown":
            return self.to_markdown()
        raise BloodbenchError(f"unknown format {fmt!r}: use {', '.join(FORMATS)}")


SUPERSCRIPTS = "¹²³⁴⁵⁶⁷⁸⁹"


def _footnotes(merged: pd.DataFrame, device: str | None, precision: str | None,
               pending: pd.DataFrame) -> tuple[list[str], dict[tuple, str]]:
    """Name every gap so an empty cell is never mistaken for a zero, nor a diverged seed forgotten.

    ``pending``: unfinished seeds (see :func:`unfinished_runs`) as status, model, dataset,
    size, seeds rows. Returns the footnotes and the superscript markers of the rows concerned.
    """
    multi = merged[["dataset", "size"]].drop_duplicates().shape[0] > 1

    def where(d: str, s: int) -> str:
        return f"{d} {s}px" if multi else ""

    gaps: list[tuple[str, dict[tuple, str]]] = []
    if device is not None:
        no_cost = merged[merged["cost_source"].isna() & merged["seeds"].notna()]
        label = f"{device}" + (f" {precision}" if precision else "")
        gaps.append((f"no profile on {label} for", {tuple(r): "" for r in no_cost[KEYS].itertuples(index=False)}))
    else:
        gaps.append(("no profile records for", {tuple(r): "" for r in merged[KEYS].itertuples(index=False)}))
    untrained = merged[merged["seeds"].isna()]
    gaps.append(("not trained (no finished run)", {tuple(r): "" for r in untrained[KEYS].itertuples(index=False)}))
    shown = {(m, d, int(s)) for m, d, s in merged[KEYS].itertuples(index=False)}
    by_status: dict[str, dict[tuple, str]] = {}
    for status, m, d, s, seeds in pending.itertuples(index=False):
        label = "seed" + ("s" if len(seeds) > 1 else "") + " " + ", ".join(str(x) for x in seeds)
        by_status.setdefault(status, {})[(m, d, int(s))] = label
    for status, keys in sorted(by_status.items()):
        text = {"diverged": "diverged in training",
                "other recipe": "trained with another recipe (config) than the seeds shown"}.get(
            status, f"training {status}")
        gaps.append((f"{text}, not averaged in", keys))

    footnotes, markers = [], {}
    for text, keys in gaps:
        if not keys:
            continue
        mark = SUPERSCRIPTS[len(footnotes)]
        names = []
        for m, d, s in sorted(keys, key=lambda k: (k[0], k[1], int(k[2]))):
            detail = ", ".join(x for x in (where(d, int(s)), keys[(m, d, s)]) if x)
            names.append(f"{m} ({detail})" if detail else m)
            if (m, d, int(s)) in shown:
                markers[(m, d, int(s))] = markers.get((m, d, int(s)), "") + mark
        footnotes.append(f"{mark} {text}: {', '.join(names)}")
    return footnotes, markers


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
) -> Leaderboard:
    """The leaderboard from records in memory (see :func:`load_leaderboard` for a results dir)."""
    train_records = check_records(train_records, "train")
    sort_col, ascending = _resolve_sort(sort)
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
    if train.empty and costs.empty:
        what = ", ".join(f"{k}={v}" for k, v in (("dataset", dataset), ("size", size),
                                                  ("models", ",".join(models or []) or None)) if v is not None)
        raise BloodbenchError(f"no finished training or profile records match {what or 'anything'}"
                              + (": drop a filter" if what else ""))

    agg = aggregate_training(train)
    device, on_device = choose_device(costs, device)
    chosen = select_costs(on_device, precision)
    if precision and not costs.empty and chosen.empty:
        raise BloodbenchError(f"no {precision} profile records on {device}: "
                              f"have {', '.join(sorted(on_device['precision'].unique()))}")

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
    if "family" not in merged:
        merged["family"] = None
    missing_family = merged["family"].isna()
    if missing_family.any():
        merged.loc[missing_family, "family"] = [_family({"model": m}) for m in merged.loc[missing_family, "model"]]

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

    left_out = {**unfinished_runs(train_records), **other_recipe_runs(runs, picked)}
    pending = pd.DataFrame([(st, m, d, sz, seeds) for (st, m, d, sz), seeds in left_out.items()],
                           columns=["status", *KEYS, "seeds"])
    footnotes, markers = _footnotes(merged, device, precision, keep(_typed(pending)))
    names = sorted(chosen["device_name"].dropna().unique()) if not chosen.empty else []
    return Leaderboard(merged[COLUMNS], device, names, precision, footnotes, markers)


def load_leaderboard(results: str | os.PathLike | None = None, *,
                     benchmark_json: Sequence[str | os.PathLike] = (), **options: Any) -> Leaderboard:
    """The leaderboard of a results dir (default: the committed ``reports/results``).

    Fails with one line when there is nothing to show (see :func:`read_results`).
    """
    _, train, profiles = read_results(results, benchmark_json)
    return build_leaderboard(train, profiles, benchmark_json=benchmark_json, **options)
