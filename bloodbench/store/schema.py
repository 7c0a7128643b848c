"""The record schema: each field a train or a profile record carries, its type, and whether a
valid record must have it. One source for three readers:

- the writers (``train/finish.py``, ``profile/record.py``) check what they built with
  :func:`check_written` before it is stored, so an undeclared field fails loudly;
- the validator (``results.record_problem``) reads :data:`REQUIRED` and :data:`OPTIONAL`, derived here;
- docs/ARCHITECTURE.md ("Results store layout") names every field (tests/test_schema.py checks it).

The nested blocks' keys are listed too (:data:`HISTORY_KEYS`, :data:`RESOURCES_KEYS`,
:data:`LATENCY_KEYS`, :data:`METRICS_KEYS`), as the writers fill them. Kept free of heavy imports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = 1
KINDS = ("train", "profile")
#: What every record is joined on; a record without them cannot be shown.
JOIN_KEYS = ("model", "dataset", "size")
NUMBER = (int, float)


@dataclass(frozen=True)
class Field:
    """A record field: its JSON type; ``required``: present, not null and not empty in every valid record."""

    type: type | tuple[type, ...]
    required: bool = False


COMMON: dict[str, Field] = {
    "schema": Field(int), "kind": Field(str), "run_id": Field(str, True), "model": Field(str, True),
    "model_info": Field(dict), "dataset": Field(str, True), "size": Field(int, True), "in_channels": Field(int),
    "num_classes": Field(int), "config": Field(dict), "config_hash": Field(str), "env": Field(dict),
    "created_at": Field(str), "written_at": Field(str),
}

TRAIN: dict[str, Field] = {
    **COMMON,
    "seed": Field(int, True), "status": Field(str, True),  # finished | diverged
    "stop_reason": Field(str),  # converged | epoch_budget | diverged
    "finished_at": Field(str), "epochs_run": Field(int), "best_epoch": Field(int),
    "best_val": Field(NUMBER),  # the best value of the monitored validation metric (config.monitor)
    "train_seconds": Field(NUMBER), "params": Field(NUMBER),
    "resources": Field(dict),  # RESOURCES_KEYS
    "history": Field(list),  # one dict of HISTORY_KEYS per epoch
    "val": Field(dict), "test": Field(dict),  # METRICS_KEYS; test also "ci95"
    "test_tta": Field(dict),  # n, acc, auc, f1_macro with 8-view TTA
    "artifacts": Field(dict), "data": Field(dict),
    "converged": Field(bool), "learned_nothing": Field(bool),  # verdicts.annotate
}

PROFILE: dict[str, Field] = {
    **COMMON,
    "device": Field(str), "device_name": Field(str), "precision": Field(str), "channels_last": Field(bool),
    "compile": Field(bool), "cuda_graphs": Field(bool), "backend": Field(dict),
    "params": Field(NUMBER), "trainable_params": Field(NUMBER), "model_size_mb": Field(NUMBER),
    "macs": Field(NUMBER), "flops": Field(NUMBER), "macs_flopcounter": Field(NUMBER),
    "macs_disagreement": Field(NUMBER), "macs_disagreement_flagged": Field(bool), "activations": Field(NUMBER),
    "oom_stages": Field(list), "peak_memory_mb": Field(NUMBER), "peak_memory_method": Field(str),
    "unsupported_ops": Field(dict), "top_modules": Field(list),
    "latency": Field(dict),  # LATENCY_KEYS
    "throughput": Field(list), "peak_throughput": Field(NUMBER),
}

FIELDS: dict[str, dict[str, Field]] = {"train": TRAIN, "profile": PROFILE}
#: Keys every record of a kind must have (not null, not empty), with their types (bool is never an int here).
REQUIRED = {kind: {k: f.type for k, f in fields.items() if f.required} for kind, fields in FIELDS.items()}
#: Keys that may be missing or null, but have this type when present.
OPTIONAL = {kind: {k: f.type for k, f in fields.items() if not f.required} for kind, fields in FIELDS.items()}

#: A train record's ``history`` rows (``cpu_seconds`` and ``load_avg`` in runs recorded since they exist).
HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_auc", "val_f1_macro", "lr",
                "epoch_seconds", "cpu_seconds", "load_avg")
#: A train record's ``resources``: process CPU seconds over the epochs that measured it, the load
#: the run shared the machine with, and the final prediction pass's wall and CPU seconds.
RESOURCES_KEYS = ("cpu_seconds", "epochs_measured", "load_avg_mean", "load_avg_max", "cpu_count", "torch_threads",
                  "predict_seconds", "predict_cpu_seconds")
#: ``val`` and ``test`` (``metrics.classification_metrics``); ``test`` adds ``ci95`` (``metrics.bootstrap_ci``).
METRICS_KEYS = ("acc", "auc", "f1_macro", "precision_macro", "recall_macro", "f1_weighted", "per_class",
                "class_names", "confusion_matrix", "n")
#: The latency block a profile's timing writes (``profile/timing.py``), then the machine's load.
LATENCY_KEYS = ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "n", "batch_size", "threads", "rounds",
                "rounds_p50_ms", "rounds_spread", "noisy", "warmup_s", "cuda_graphs", "method")
LOAD_KEYS = ("load_avg_1m", "cpu_count", "noise_reasons")  # noise_reasons: why ``noisy`` (rounds, load)


#: The range of every figure a reader may average or show, by kind: dotted path (``*``: each item of
#: a list) -> (low, high, low excluded). A value there that is present must be a finite number in it;
#: null or absent is a gap, left to the required-field rules above.
UNIT = (0.0, 1.0, False)
NON_NEGATIVE = (0.0, math.inf, False)
POSITIVE = (0.0, math.inf, True)
ANY = (-math.inf, math.inf, False)
_SCORES = ("acc", "auc", "f1_macro", "precision_macro", "recall_macro", "f1_weighted")
RANGES: dict[str, dict[str, tuple[float, float, bool]]] = {
    "train": {
        "size": POSITIVE, "seed": NON_NEGATIVE, "in_channels": POSITIVE, "num_classes": POSITIVE,
        **{f"{split}.{m}": UNIT for split in ("val", "test") for m in _SCORES},
        **{f"test_tta.{m}": UNIT for m in ("acc", "auc", "f1_macro")},
        "test.ci95.acc.*": UNIT, "test.ci95.f1_macro.*": UNIT, "val.n": NON_NEGATIVE, "test.n": NON_NEGATIVE,
        "epochs_run": NON_NEGATIVE, "best_epoch": (-1.0, math.inf, False),  # -1: no best epoch (a diverged run)
        "best_val": ANY, "train_seconds": NON_NEGATIVE,
        "params": NON_NEGATIVE, **{f"resources.{k}": NON_NEGATIVE for k in RESOURCES_KEYS},
        "history.*.epoch_seconds": NON_NEGATIVE, "history.*.val_acc": UNIT, "history.*.cpu_seconds": NON_NEGATIVE,
        "data.n_train": NON_NEGATIVE, "data.n_val": NON_NEGATIVE, "data.n_test": NON_NEGATIVE,
    },
    "profile": {
        "size": POSITIVE, "in_channels": POSITIVE, "num_classes": POSITIVE,
        **{k: NON_NEGATIVE for k in ("params", "trainable_params", "model_size_mb", "macs", "flops", "macs_flopcounter",
                                     "macs_disagreement", "activations", "peak_memory_mb", "peak_throughput")},
        "latency.p50_ms": POSITIVE, **{f"latency.{k}": NON_NEGATIVE for k in ("p90_ms", "p99_ms", "mean_ms", "std_ms",
                                                                            "rounds_spread", "warmup_s", "load_avg_1m")},
        "latency.rounds_p50_ms.*": POSITIVE, "latency.batch_size": POSITIVE, "latency.n": NON_NEGATIVE,
        "throughput.*.images_per_s": NON_NEGATIVE, "throughput.*.batch_size": POSITIVE,
    },
}


def _values(value: Any, parts: list[str], path: str = "") -> list[tuple[str, Any]]:
    """(path, value) of every value at ``parts`` under ``value`` (``*``: each list item); absent ones skipped."""
    if not parts:
        return [(path, value)]
    head, rest = parts[0], parts[1:]
    if head == "*":
        if not isinstance(value, list):
            return []
        return [hit for i, v in enumerate(value) for hit in _values(v, rest, f"{path}[{i}]")]
    if not isinstance(value, dict) or value.get(head) is None:
        return []
    return _values(value[head], rest, f"{path}.{head}" if path else head)


def range_problem(rec: dict[str, Any], kind: str) -> str | None:
    """Why a figure of ``rec`` is out of its range (:data:`RANGES`): not a number, not finite, too
    small or too large; None when every one is in range."""
    for dotted, (low, high, open_low) in RANGES[kind].items():
        for where, value in _values(rec, dotted.split(".")):
            if not typed(value, NUMBER):
                return f"{where} {value!r:.40} is not a number"
            if not math.isfinite(value):
                return f"{where} is {value}, not a finite number"
            if value < low or value > high or (open_low and value == low):
                bounds = f"in [{low:g}, {high:g}]" if math.isfinite(high) else ("> 0" if open_low else f">= {low:g}")
                return f"{where} is {value:g}, not {bounds}"
    return None


def registered_models() -> set[str] | None:
    """The live registry's names (plug-ins registered at runtime included), None when it cannot load:
    what a record's or a benchmark entry's model must be one of."""
    try:
        from bloodbench.models import list_models
    except ImportError:
        return None
    return set(list_models())


def is_finished(rec: dict[str, Any] | None, or_diverged: bool = False) -> bool:
    """Is this run finished? The one answer for the trainer, ``train``, the sweep and the reports.

    A profile record always is; a train record when its status is ``finished`` (``or_diverged``:
    a ``diverged`` one too, which a sweep must not rerun, as it would diverge again).
    """
    if rec is None:
        return False
    if rec.get("kind", "train") == "profile":
        return True
    return rec.get("status") in (("finished", "diverged") if or_diverged else ("finished",))


def typed(value: Any, want: type | tuple[type, ...]) -> bool:
    """``value`` is of ``want``; a bool never passes for a number."""
    wanted = want if isinstance(want, tuple) else (want,)
    return isinstance(value, wanted) and not (isinstance(value, bool) and bool not in wanted)


def type_name(want: type | tuple[type, ...]) -> str:
    return getattr(want, "__name__", "a number")


def field_problem(rec: dict[str, Any], kind: str, ranges: bool = True) -> str | None:
    """Why ``rec`` breaks its kind's field types (a required field missing or empty, a wrong type), a name
    holds white space, or (``ranges``) a figure is out of its range (:func:`range_problem`); None if nothing."""
    missing = [k for k in REQUIRED[kind] if rec.get(k) in (None, "")]
    if missing:
        return f"no {', '.join(map(repr, missing))} field"
    for key, want in REQUIRED[kind].items():
        if not typed(rec[key], want):
            return f"{key} {rec[key]!r:.40} is not {type_name(want)}"
    for key, want in OPTIONAL[kind].items():
        if rec.get(key) is not None and not typed(rec[key], want):
            return f"{key} is {type(rec[key]).__name__}, not {type_name(want)}"
    for key in ("model", "dataset", "run_id"):
        if not rec[key].isprintable() or any(ch.isspace() for ch in rec[key]):
            return f"{key} {rec[key]!r:.60} holds white space or control characters"
    if kind == "train" and rec["status"] == "finished":
        acc = (rec.get("test") or {}).get("acc")
        if not typed(acc, NUMBER):
            return "status is 'finished' but it has no test accuracy ('test.acc')"
    return range_problem(rec, kind) if ranges else None


def check_written(rec: dict[str, Any], kind: str) -> dict[str, Any]:
    """A writer's own check before it stores ``rec``: every field declared here, every type right.
    Raises ``ValueError`` (a bug in the writer, not a user error); returns ``rec``. Ranges are the readers'
    check: a figure that cannot be computed (an AUC on one class: NaN) is stored as null, never a lost run."""
    undeclared = sorted(set(rec) - set(FIELDS[kind]))
    problem = f"undeclared field(s) {', '.join(undeclared)}" if undeclared else field_problem(rec, kind, ranges=False)
    if problem:
        raise ValueError(f"{kind} record {rec.get('run_id')}: {problem} (bloodbench/store/schema.py)")
    return rec
