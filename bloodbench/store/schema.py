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


def field_problem(rec: dict[str, Any], kind: str) -> str | None:
    """Why ``rec`` breaks its kind's field types (a required field missing or empty, a wrong type), or None."""
    missing = [k for k in REQUIRED[kind] if rec.get(k) in (None, "")]
    if missing:
        return f"no {', '.join(map(repr, missing))} field"
    for key, want in REQUIRED[kind].items():
        if not typed(rec[key], want):
            return f"{key} {rec[key]!r:.40} is not {type_name(want)}"
    for key, want in OPTIONAL[kind].items():
        if rec.get(key) is not None and not typed(rec[key], want):
            return f"{key} is {type(rec[key]).__name__}, not {type_name(want)}"
    if kind == "train" and rec["status"] == "finished":
        acc = (rec.get("test") or {}).get("acc")
        if not typed(acc, NUMBER):
            return "status is 'finished' but it has no test accuracy ('test.acc')"
    return None


def check_written(rec: dict[str, Any], kind: str) -> dict[str, Any]:
    """A writer's own check before it stores ``rec``: every field declared here, every type right.
    Raises ``ValueError`` (a bug in the writer, not a user error); returns ``rec``."""
    undeclared = sorted(set(rec) - set(FIELDS[kind]))
    problem = f"undeclared field(s) {', '.join(undeclared)}" if undeclared else field_problem(rec, kind)
    if problem:
        raise ValueError(f"{kind} record {rec.get('run_id')}: {problem} (bloodbench/store/schema.py)")
    return rec
