"""The results store: one JSON record per run, written atomically, read back as a DataFrame.

Layout under the results root::

    train/<run_id>/record.json        training + evaluation record
    train/<run_id>/{best,last}.pt     checkpoints (git-ignored)
    train/<run_id>/{val,test}_predictions[_tta].npz   probabilities (see predictions.py)
    profile/<run_id>.json             profiling record

Every run writes its own file under a unique name, so two processes writing to the
same store at once never overwrite each other; readers skip half-written temp files.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

import pandas as pd

from bloodbench.errors import BloodbenchError
from bloodbench.fsutil import atomic_write_text

SCHEMA_VERSION = 1
RESULTS_ENV = "BLOODBENCH_RESULTS"
DEFAULT_RESULTS = Path("reports") / "results"
# The committed store of the checkout this package runs from (``pip install -e .``); in an
# installed copy this path does not exist and the default stays relative to the cwd.
REPO_RESULTS = Path(__file__).resolve().parents[1] / DEFAULT_RESULTS
KINDS = ("train", "profile")
#: What every record is joined on; a record without them cannot be shown.
JOIN_KEYS = ("model", "dataset", "size")


def resolve_results_dir(results: str | os.PathLike | None = None) -> Path:
    """``--results`` beats ``$BLOODBENCH_RESULTS`` beats ``reports/results`` (the committed store).

    The default is ``reports/results`` under the cwd when there is one, else the repository's
    own, so a command run from another folder still finds the committed results.
    """
    if results:
        return Path(results).expanduser()
    if os.environ.get(RESULTS_ENV):
        return Path(os.environ[RESULTS_ENV]).expanduser()
    if not DEFAULT_RESULTS.is_dir() and REPO_RESULTS.is_dir():
        return REPO_RESULTS
    return DEFAULT_RESULTS


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def config_hash(config: dict[str, Any]) -> str:
    """A short stable hash of a config (sorted JSON), used in run ids and for dedup."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:10]


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


class ResultsStore:
    """Reads and writes run records under one results root."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = resolve_results_dir(root)

    # -- paths -------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        """Folder of a training run: its record, checkpoints and predictions."""
        return self.root / "train" / run_id

    def record_path(self, kind: str, run_id: str) -> Path:
        if kind == "train":
            return self.run_dir(run_id) / "record.json"
        if kind == "profile":
            return self.root / "profile" / f"{run_id}.json"
        raise ValueError(f"unknown record kind {kind!r}")

    # -- write -------------------------------------------------------------------------
    def write(self, record: dict[str, Any]) -> Path:
        """Atomically write ``record`` (needs ``kind`` and ``run_id``); returns its path."""
        kind, run_id = record["kind"], record["run_id"]
        record.setdefault("schema", SCHEMA_VERSION)
        record.setdefault("written_at", utc_now())
        path = self.record_path(kind, run_id)
        atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True, default=_json_default) + "\n")
        return path

    # -- read --------------------------------------------------------------------------
    def get(self, kind: str, run_id: str) -> dict[str, Any] | None:
        path = self.record_path(kind, run_id)
        if not path.is_file():
            return None
        return self._read(path)

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise BloodbenchError(f"results record {path} is unreadable ({exc}): delete or restore it") from None

    def iter_records(self, kind: str | None = None) -> Iterator[dict[str, Any]]:
        kinds = KINDS if kind is None else (kind,)
        for k in kinds:
            pattern = "train/*/record.json" if k == "train" else "profile/*.json"
            for path in sorted(self.root.glob(pattern)):
                rec = self._read(path)
                rec.setdefault("kind", k)
                yield rec

    def records(self, kind: str | None = None) -> list[dict[str, Any]]:
        return list(self.iter_records(kind))

    def finished_runs(self, model: str, dataset: str, size: int, seed: int | None = None) -> list[dict[str, Any]]:
        """Finished training records of (model, dataset, size), of one seed or all: what evaluate and explain use."""
        return [r for r in self.iter_records("train")
                if r.get("model") == model and r.get("dataset") == dataset and r.get("size") is not None
                and int(r["size"]) == int(size) and r.get("status") == "finished"
                and (seed is None or r.get("seed") == seed)]

    def load(self, kind: str | None = None) -> pd.DataFrame:
        """All records as a flat DataFrame (nested dicts become ``a.b`` columns)."""
        recs = self.records(kind)
        if not recs:
            return pd.DataFrame()
        return pd.json_normalize(recs, max_level=2)


def model_info(name: str, records: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    """The registry's facts about a model, else the copy its records kept (a model since renamed or
    removed still shows its family and description); {} when neither knows it."""
    try:
        from bloodbench.models import get_model_info

        return get_model_info(name).as_dict()
    except (BloodbenchError, ImportError):
        return next((r.get("model_info") for r in records if r.get("model_info")), None) or {}


def load_results(results: str | os.PathLike | None = None, kind: str | None = None) -> pd.DataFrame:
    return ResultsStore(results).load(kind)


# -- checked reading --------------------------------------------------------------------
def _record_problem(rec: dict) -> str | None:
    """Why a record cannot be joined on (model, dataset, size), or None."""
    missing = [k for k in JOIN_KEYS if rec.get(k) in (None, "")]
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
