"""pytest-benchmark JSON from bloodbench's own suite (benchmarks/): its shape, and a reader that
keeps foreign entries out.

The suite fills each entry's ``extra_info`` with the keys of its kind (:data:`KIND_KEYS`,
checked by ``benchmarks/conftest.py`` when it runs) and marks the file's ``machine_info``
with :data:`MACHINE_KEYS`. A file without those marks, or an entry without its kind's keys,
was not made by the suite: its figures are left out with a ``warning:`` line, so they can
never take over the table.
"""

from __future__ import annotations

import functools
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from bloodbench.errors import BloodbenchError, warn
from bloodbench.store.schema import registered_models

#: Keys of every entry, whatever it measures.
COMMON_KEYS = ("kind", "model", "dataset", "size", "device", "device_name", "precision", "batch_size")
#: Keys of the per-model entries the leaderboard ingests.
EXTRA_INFO_KEYS = COMMON_KEYS + (
    "in_channels", "num_classes", "params", "macs", "flops", "p50_ms", "p90_ms", "p99_ms", "images_per_s",
)  # the suite also writes latency_method and backend; files made before them still count
KIND_KEYS = {
    "inference": EXTRA_INFO_KEYS,
    "train_step": EXTRA_INFO_KEYS,
    "epoch_time": COMMON_KEYS + ("images", "loop_epoch_s", "pure_epoch_s", "ratio", "target_ratio", "meets_target"),
    "latency_agreement": COMMON_KEYS + ("threads", "ours_p50_ms", "timer_median_ms", "ratio", "ratio_bounds"),
    "train_setting": COMMON_KEYS + ("setting", "channels_last", "compiled", "threads", "step_ms", "ratio",
                                    "compile_s", "epoch_s", "epoch_ratio"),
    "export_latency": COMMON_KEYS + ("format", "threads", "eager_p50_ms", "exported_p50_ms", "ratio"),
    "greedy_loss": COMMON_KEYS + ("images", "sklearn_ms", "ours_ms", "ratio"),
}
#: What benchmarks/conftest.py adds to pytest-benchmark's ``machine_info``.
MACHINE_KEYS = ("torch", "torch_threads", "bb_device", "bb_full", "git_commit")
#: The kinds whose figures become leaderboard cells.
INGESTED_KINDS = ("inference", "train_step")


def extra_info_problem(info: dict) -> str | None:
    """Why ``info`` is not a bloodbench extra_info (unknown kind, a key of its kind missing), or None."""
    kind = info.get("kind")
    if kind not in KIND_KEYS:
        return f"extra_info kind {kind!r} is not one of {', '.join(KIND_KEYS)}"
    missing = [k for k in KIND_KEYS[kind] if k not in info]
    if missing:
        return f"{kind} extra_info lacks {', '.join(missing)}"
    return None


def read_benchmark_json(path: str | os.PathLike) -> dict:
    """A pytest-benchmark JSON file, checked enough to give a one-line error instead of a KeyError."""
    path = Path(path)
    if path.exists() and not path.is_file():  # a FIFO would block the read for good
        raise BloodbenchError(f"benchmark JSON {path} is not a regular file")
    try:
        data = _parsed(path.read_bytes())
    except FileNotFoundError:
        raise BloodbenchError(f"benchmark JSON {path} not found: make it with "
                              f"`pytest benchmarks/ --benchmark-json {path}`") from None
    except RecursionError:
        raise BloodbenchError(f"benchmark JSON {path} is unreadable (nested too deeply)") from None
    except (OSError, ValueError) as exc:
        raise BloodbenchError(f"benchmark JSON {path} is unreadable ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise BloodbenchError(f"{path} is not a pytest-benchmark JSON file (no 'benchmarks' list)")
    for key in ("machine_info", "commit_info"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise BloodbenchError(f"{path} is not a pytest-benchmark JSON file ({key} is not an object)")
    return data


@functools.lru_cache(maxsize=16)
def _parsed(raw: bytes) -> Any:
    """One parse per file content: a report reads the same files for cost, for training settings and for every
    machine's table. Callers only read what it returns."""
    return json.loads(raw)


def _entries(path: str | os.PathLike, data: dict) -> Iterator[tuple[str, dict, dict]]:
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


def _int_field(extra: dict, key: str, where: str) -> int:
    """An integer ``extra_info`` field (28, 28.0 or "28"), or a one-line error naming the entry."""
    value = extra.get(key)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not number.is_integer():
        raise BloodbenchError(f"{where}.extra_info.{key} is {value!r}, not an integer")
    return int(number)


def number_or_nan(value: Any) -> float:
    """A JSON or record value as float, NaN when absent or not a number (so pandas aggregates skip it)."""
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _left_out(path: Any, reasons: list[str], count: int, total: int,
              why: str = "not from bloodbench's benchmark suite",
              fix: str = "make cost files with `pytest benchmarks/ --benchmark-json FILE`") -> None:
    shown = "; ".join(reasons[:3]) + (f"; and {len(reasons) - 3} more" if len(reasons) > 3 else "")
    warn(f"left out {count} of {total} entries of {path}, {why} ({shown}): {fix}")


#: An ingested entry's figures: extra_info key -> (low, low excluded). Present ones must be finite and in range.
FIGURES = {"p50_ms": (0.0, True), "p90_ms": (0.0, False), "p99_ms": (0.0, False), "images_per_s": (0.0, True),
           "params": (0.0, False), "macs": (0.0, False), "flops": (0.0, False), "batch_size": (0.0, True),
           "size": (0.0, True), "step_ms": (0.0, True), "epoch_s": (0.0, True)}  # batch_size and size are integers first (one error line otherwise)


def figure_problem(extra: dict, machine: dict, registry: set[str] | None) -> str | None:
    """Why an ingested entry's figures cannot be shown, or None: a figure not a finite number in its
    range, a model the registry lacks, or a cuda entry from a machine without a GPU."""
    for key, (low, open_low) in FIGURES.items():
        value = extra.get(key)
        if value is None:
            continue
        number = number_or_nan(value)
        if not math.isfinite(number) or number < low or (open_low and number == low):
            return f"{key} {value!r:.20}, not a finite number {'>' if open_low else '>='} {low:g}"
    model = extra.get("model")
    if not isinstance(model, str) or (registry is not None and model not in registry):
        return f"model {model!r:.40} is not registered (`bloodbench models` lists them)"
    device = extra.get("device")
    if device not in ("cpu", "cuda"):
        return f"device {device!r:.20} is not cpu or cuda"
    no_gpu = ("gpu" in machine and not machine.get("gpu")) or machine.get("bb_device") == "cpu"
    if device == "cuda" and no_gpu:
        return "a cuda entry in a file made without a GPU (machine_info)"
    return None


def _checked_entries(paths: Sequence[str | os.PathLike], kinds: Sequence[str], row: Callable[..., dict | str],
                     say: bool = True) -> list[dict]:
    """``row(path, machine_info, datetime, where, extra_info, stats)`` of each entry of ``kinds`` whose file
    carries the suite's ``machine_info`` marks, whose ``extra_info`` has its kind's keys and whose figures pass
    :func:`figure_problem`; ``row`` returns the flat dict, or a string: why the entry cannot be shown. Entries
    left out are named in one warning line per file (``say``: False where another reading of it said so)."""
    rows = []
    registry = registered_models()
    for path in paths:
        data = read_benchmark_json(path)
        entries = list(_entries(path, data))
        machine = data.get("machine_info") if isinstance(data.get("machine_info"), dict) else {}
        lacking = [k for k in MACHINE_KEYS if k not in machine]
        if lacking and entries:
            if say:
                _left_out(path, [f"machine_info lacks {', '.join(lacking)}"], len(entries), len(entries))
            continue
        when = str(data.get("datetime") or "")
        foreign, invalid = [], []
        for where, extra, stats in entries:
            name = f"{where.rsplit(': ', 1)[-1]} ({str(extra.get('model') or 'no model'):.40})"
            problem = extra_info_problem(extra)
            if problem:
                foreign.append(f"{name}: {problem}")
                continue
            if extra["kind"] not in kinds:
                continue
            _int_field(extra, "batch_size", where), _int_field(extra, "size", where)
            made = figure_problem(extra, machine, registry) or row(path, machine, when, where, extra, stats)
            if isinstance(made, str):
                invalid.append(f"{name}: {made}")
            else:
                rows.append(made)
        if foreign and say:
            _left_out(path, foreign, len(foreign), len(entries))
        if invalid:
            _left_out(path, invalid, len(invalid), len(entries), "whose figures cannot be shown",
                      "fix or remeasure them")
    return rows


def benchmark_entries(paths: Sequence[str | os.PathLike], device_name: Any = None) -> list[dict]:
    """Every ingested (inference, train_step) entry of the files, one flat dict each.

    ``device_name(machine_info, device)`` names the device when an entry does not. A file
    without the suite's ``machine_info`` marks, or an entry without its kind's keys, is
    left out with one warning line per file.
    """
    def row(path, machine, when, where, extra, stats) -> dict | str:
        batch, size = _int_field(extra, "batch_size", where), _int_field(extra, "size", where)
        median_s = number_or_nan(stats.get("median"))
        p50 = number_or_nan(extra.get("p50_ms"))
        if math.isnan(p50) and not math.isnan(median_s):
            p50 = median_s * 1e3
        ips = number_or_nan(extra.get("images_per_s"))
        if math.isnan(ips) and median_s > 0:
            ips = batch / median_s
        if any(not math.isnan(x) and not (math.isfinite(x) and x > 0) for x in (p50, ips)):
            return f"stats.median {stats.get('median')!r:.20}, not a finite number > 0"
        device = str(extra.get("device") or "cpu")
        return {
            "kind": extra["kind"], "model": str(extra["model"]), "dataset": str(extra["dataset"]),
            "size": size, "device": device,
            "precision": str(extra.get("precision") or "fp32"),
            "device_name": extra.get("device_name") or (device_name(machine, device) if device_name else None),
            "params": number_or_nan(extra.get("params")), "macs": number_or_nan(extra.get("macs")),
            "flops": number_or_nan(extra.get("flops")), "batch_size": batch,
            "p50": p50, "p90": number_or_nan(extra.get("p90_ms")), "p99": number_or_nan(extra.get("p99_ms")),
            "images_per_s": ips, "created_at": when, "source": f"benchmark:{Path(path).name}",
        }

    return _checked_entries(paths, INGESTED_KINDS, row)


#: The folder of committed quiet benchmarks, beside the results store (reports/benchmarks by reports/results).
QUIET_FOLDER = "benchmarks"


def quiet_files(results_root: str | os.PathLike | None) -> list[Path]:
    """The committed quiet benchmarks: every ``*.json`` in the ``benchmarks`` folder beside the results store."""
    if results_root is None:
        return []
    folder = Path(results_root).resolve().parent / QUIET_FOLDER
    return sorted(p for p in folder.glob("*.json") if p.is_file()) if folder.is_dir() else []


def setting_key(model: Any, device: Any, precision: Any, dataset: Any, size: Any, channels_last: Any,
                compiled: Any, batch_size: Any) -> tuple:
    """What makes two training-step measurements the same setting: the sweep's plan and the leaderboard's train
    images/s both look quiet benchmarks up by this one key."""
    return (str(model), str(device), str(precision), str(dataset), int(size), bool(channels_last), bool(compiled),
            int(batch_size))


def train_setting_entries(paths: Sequence[str | os.PathLike], device_name: Any = None, say: bool = True
                          ) -> list[dict]:
    """Every ``train_setting`` entry of the files (``benchmarks/test_train_settings.py``: one model's training
    step in one setting), one flat dict each, checked as :func:`benchmark_entries` checks its kinds.

    ``epoch_s`` there is the median training step × the steps of one epoch of the training split at its batch
    (plus the compile time for a compiled setting): training steps only, on one resident synthetic batch, no
    data pipeline and no validation. An entry without a finite ``epoch_s`` > 0 is left out. ``say``: False
    for a file :func:`benchmark_entries` read too, so its foreign entries are named once.
    """
    def row(path, machine, when, where, extra, stats) -> dict | str:
        epoch_s = number_or_nan(extra.get("epoch_s"))
        if not (math.isfinite(epoch_s) and epoch_s > 0):
            return f"epoch_s {extra.get('epoch_s')!r:.20}, not a finite number > 0"
        device = str(extra.get("device") or "cpu")
        e = {
            "model": str(extra["model"]), "dataset": str(extra["dataset"]),
            "size": _int_field(extra, "size", where), "device": device,
            "device_name": extra.get("device_name") or (device_name(machine, device) if device_name else None),
            "precision": str(extra.get("precision") or "fp32"), "channels_last": extra.get("channels_last") is True,
            "compiled": extra.get("compiled") is True, "batch_size": _int_field(extra, "batch_size", where),
            "setting": str(extra.get("setting")), "epoch_s": epoch_s, "created_at": when, "path": str(path),
        }
        e["setting_key"] = setting_key(e["model"], e["device"], e["precision"], e["dataset"], e["size"],
                                       e["channels_last"], e["compiled"], e["batch_size"])
        return e

    return _checked_entries(paths, ("train_setting",), row, say)
