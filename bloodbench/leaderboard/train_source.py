"""The train (img/s) column: per row, a quiet benchmark of the setting the row's seeds trained with where one
is committed, else the training records, each row's figure named with its source and machine.

A sweep shares its machine with other work, so the epoch times in its records are contended timings; a
quiet measurement of the same setting (``benchmarks/test_train_settings.py``, committed as pytest-benchmark
JSON under ``reports/benchmarks/``, beside the results store) is what the column should show. The match
is strict: the same model, dataset and size, the recipe's precision, channels_last, compile and batch size, on
the table's own machine (of whatever device kind: a table's cost cells are one machine's), else of the same
device kind on the machine that trained the row's seeds.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd

from bloodbench.errors import BloodbenchError, warn
from bloodbench.formatting import device_label, fmt, machine_device_name
from bloodbench.leaderboard.columns import KEYS
from bloodbench.store.benchjson import (
    QUIET_FOLDER,
    number_or_nan,
    quiet_files,
    setting_key,
    train_setting_entries,
)
from bloodbench.store.verdicts import load_problem

SEVERAL_MACHINES = "several machines: "
RECORDS_RATE = "train images ÷ median epoch seconds, validation included"
QUIET = "quiet benchmark ("
#: What a quiet benchmark's figure is: said once in the legend (``Leaderboard.legend``).
QUIET_RATE = ("a quiet benchmark's rate is the training split's images ÷ its epoch_s, the median training step × "
              "the steps of one epoch: training steps only, no data pipeline and no validation")


def recipe_setting(rec: dict) -> tuple | None:
    """(device, precision, channels_last, compile, batch_size) a train record trained with, None if unknown."""
    cfg = rec.get("config") or {}
    device = (rec.get("env") or {}).get("device")
    values = (device, cfg.get("precision"), cfg.get("channels_last"), cfg.get("compile", False), cfg.get("batch_size"))
    if any(v is None for v in values):
        return None
    return str(device), str(values[1]), bool(values[2]), bool(values[3]), int(values[4])


def sweep_load(rec: dict) -> tuple[float, float]:
    """(mean 1-minute load over the run's epochs, cores) from its ``resources``; NaN where not recorded."""
    res = rec.get("resources") if isinstance(rec.get("resources"), dict) else {}
    return number_or_nan(res.get("load_avg_mean")), number_or_nan(res.get("cpu_count"))


def one_machine(names: Iterable) -> str | None:
    """One machine, or :data:`SEVERAL_MACHINES` and their names: a mean or a sum over them is not like for
    like."""
    have = sorted({str(n) for n in names if isinstance(n, str) and n})
    if len(have) > 1:
        return SEVERAL_MACHINES + "; ".join(have)
    return have[0] if have else None


def one_setting(settings: pd.Series) -> tuple | None:
    """The one setting of a row's seeds (channels_last and compile are not in the recipe hash, so seeds of one
    recipe may differ): None when unknown for any seed, or when they differ."""
    have = list(settings)
    if not have or any(not isinstance(s, tuple) for s in have) or len(set(have)) > 1:
        return None
    return have[0]


def setting_label(precision: str, channels_last: bool, compiled: bool) -> str:
    return precision + ("+channels_last" if channels_last else "") + ("+compile" if compiled else "")


def _label(path: Path, results_root: str | os.PathLike | None) -> str:
    """A quiet file's name as the legend gives it: reports/benchmarks/<file> for the store's own folder."""
    if results_root is not None:
        parent = Path(results_root).resolve().parent
        if path.resolve().parent == parent / QUIET_FOLDER:
            return f"{parent.name}/{QUIET_FOLDER}/{path.name}"
    return str(path)


def quiet_frame(results_root: str | os.PathLike | None, benchmark_json: Sequence[str | os.PathLike] = ()
                ) -> pd.DataFrame:
    """Quiet ``train_setting`` measurements of the store's benchmarks folder and of ``benchmark_json``, with
    their train images/s: the dataset's training split (its own dataset info) ÷ ``epoch_s``. A file of the
    folder that cannot be read is left out with a warning: the default folder never fails a table."""
    from bloodbench.data import dataset_info

    rows = []
    given = {Path(p).resolve() for p in benchmark_json}  # read for cost too: their foreign entries were named
    paths = [(p, _label(p, results_root), p.resolve() in given) for p in quiet_files(results_root)]
    seen = {p.resolve() for p, _, _ in paths}
    paths += [(Path(p), str(p), True) for p in benchmark_json if Path(p).resolve() not in seen]
    for path, label, given in paths:
        try:
            entries = train_setting_entries([path], machine_device_name, say=not given)
        except BloodbenchError as exc:
            if given:
                raise
            warn(f"quiet benchmarks: {exc}; left out")
            continue
        for e in entries:
            try:
                n_train = dataset_info(e["dataset"], e["size"]).n_samples["train"]
            except BloodbenchError:
                continue  # a dataset or size this install does not know: no split size, no rate
            rows.append({**e, "device_name": device_label(e["device_name"]), "label": label,
                         "images_per_s": n_train / e["epoch_s"]})
    return pd.DataFrame(rows)


def _quiet_match(quiet: pd.DataFrame, key: tuple, setting: tuple | None, machines: Iterable[str | None]
                 ) -> pd.Series | None:
    """The newest quiet entry of the row's key and setting, on the first of ``machines`` that has one. The
    device kind (the key's second field) is not compared: a machine's name says it (a GPU's or a CPU's)."""
    if quiet.empty or setting is None:
        return None
    device, precision, channels_last, compiled, batch = setting
    want = setting_key(key[0], device, precision, key[1], key[2], channels_last, compiled, batch)
    same = quiet[[k[:1] + k[2:] == want[:1] + want[2:] for k in quiet["setting_key"]]]
    for name in machines:
        if not isinstance(name, str) or not name or name.startswith(SEVERAL_MACHINES):
            continue
        mine = same[same["device_name"] == name]
        if not mine.empty:
            return mine.sort_values(["created_at", "label"], kind="stable").iloc[-1]
    return None


def _contended(load: Any, cores: Any) -> str:
    """What the records' load says of their timing: contended (:func:`load_problem`), or just the load."""
    if pd.notna(load) and pd.notna(cores):
        said = f"mean load {fmt(load, '.2f')} on {int(cores)} cores"
        return f"contended sweep: {said}" if load_problem(float(load), float(cores)) else f"sweep at {said}"
    return "machine load not recorded"


def train_throughput(merged: pd.DataFrame, quiet: pd.DataFrame, table_machine: str | None) -> None:
    """``train_throughput`` (images/s) and ``train_throughput_source`` per row, in place, first found:

    1. a quiet ``train_setting`` benchmark of the row's setting on the table's machine, whatever device the
       seeds trained on (GPU-trained seeds in a CPU table get the CPU's rate for their recipe: one machine a table);
    2. a pytest-benchmark ``train_step`` entry on the table's machine (``--benchmark-json``);
    3. a quiet ``train_setting`` benchmark of the row's setting on the machine that trained its seeds;
    4. the training records (a contended sweep: their load is named), unless the seeds trained on several
       machines (not like for like: not shown).
    """
    n = len(merged)

    def col(name: str) -> pd.Series:
        return merged[name] if name in merged else pd.Series([None] * n, index=merged.index)

    sources, values = [], []
    for key, b, r, bs, src, name, tmachine, setting, load, cores in zip(
            merged[KEYS].itertuples(index=False), col("train_throughput"), col("train_images_per_s"),
            col("train_batch_size"), col("train_source"), col("device_name"), col("train_machine"),
            col("train_setting"), col("train_load_mean"), col("train_cpu_count")):
        several = isinstance(tmachine, str) and tmachine.startswith(SEVERAL_MACHINES)
        setting = setting if isinstance(setting, tuple) else None
        mine = _quiet_match(quiet, tuple(key), setting, [table_machine])
        theirs = None if mine is not None or pd.notna(b) else _quiet_match(quiet, tuple(key), setting, [tmachine])
        if mine is not None or theirs is not None:
            q = mine if mine is not None else theirs
            sources.append(f"{QUIET}{q['label']}, {q['device_name']}, "
                           f"{setting_label(q['precision'], q['channels_last'], q['compiled'])}, "
                           f"batch {int(q['batch_size'])})")
            values.append(float(q["images_per_s"]))
        elif pd.notna(b):
            sources.append(f"pytest-benchmark {str(src).removeprefix('benchmark:')} train_step on {name}, "
                           f"batch {int(bs)}" if pd.notna(bs) else f"pytest-benchmark train_step on {name}")
            values.append(float(b))
        elif pd.notna(r) and not several:
            sources.append(f"training records on {tmachine or 'an unrecorded machine'} "
                           f"({_contended(load, cores)}; {RECORDS_RATE})")
            values.append(float(r))
        else:
            sources.append(f"not shown: seeds trained on {tmachine.removeprefix(SEVERAL_MACHINES)}" if several
                           and pd.notna(r) else None)
            values.append(math.nan)
    merged["train_throughput"] = pd.Series(values, index=merged.index, dtype=float)
    merged["train_throughput_source"] = sources
