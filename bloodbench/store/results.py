"""The results store: one JSON record per run, written atomically, read back as a DataFrame.

Layout under the results root::

    train/<run_id>/record.json        training + evaluation record
    train/<run_id>/{best,last}.pt     checkpoints (git-ignored)
    train/<run_id>/{val,test}_predictions[_tta].npz   probabilities (see predictions.py)
    profile/<run_id>.json             profiling record

Every run writes its own file under a unique name, so two processes writing to the
same store at once never overwrite each other; readers skip half-written temp files.
Reading validates each record against its kind's schema (``bloodbench/store/schema.py``): a malformed
record, or the older of two records with one run_id, is named in a ``warning:`` line and
skipped, so it can neither crash a command nor silently replace a real run.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import pandas as pd

from bloodbench.errors import BloodbenchError, warn
from bloodbench.store.fsutil import atomic_write_text, ensure_writable_dir, strict_json
from bloodbench.store.schema import KINDS, SCHEMA_VERSION, field_problem, is_finished, registered_models
from bloodbench.store.verdicts import annotate, profile_choice

RESULTS_ENV = "BLOODBENCH_RESULTS"
DEFAULT_RESULTS = Path("reports") / "results"
# The committed store of the checkout this package runs from (``pip install -e .``); in an
# installed copy this path does not exist and the default stays relative to the cwd.
REPO_RESULTS = Path(__file__).resolve().parents[2] / DEFAULT_RESULTS


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


def refuse_inside_store(path: str | os.PathLike, results: str | os.PathLike | None, option: str) -> None:
    """One error line when an output ``path`` lies in the results store (``leaderboard -o`` over a record.json,
    ``report --out`` in it): the store holds records only, and a record overwritten is a run lost."""
    root = resolve_results_dir(results).resolve()
    target = Path(path).expanduser().resolve()
    if target == root or target.is_relative_to(root):
        raise BloodbenchError(f"{option} {path} is inside the results store {root}: write the output elsewhere")


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def config_hash(config: dict[str, Any]) -> str:
    """A short stable hash of a config (sorted JSON), used in run ids and for dedup."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:10]


class Unreadable(str):
    """What a record file holds when it is not JSON at all: the reason."""


def read_json(path: Path) -> Any:
    """The parsed JSON, or an :class:`Unreadable` saying why it could not be parsed (a problem for
    :func:`record_problem`)."""
    path = Path(path)
    if not path.is_file():  # a FIFO, socket or device named *.json would block or never end
        return Unreadable("it is not a regular file")
    try:
        return json.loads(path.read_text())
    except RecursionError:
        return Unreadable("it is unreadable (nested too deeply)")
    except (OSError, ValueError) as exc:
        return Unreadable(f"it is unreadable ({str(exc).splitlines()[0][:60] if str(exc) else exc})")


def record_problem(rec: Any, kind: str) -> str | None:
    """Why ``rec`` is not a valid record of ``kind``, or None: not an object, a field missing, of the
    wrong type or out of its range (``schema.field_problem``), or a model the live registry lacks."""
    if isinstance(rec, Unreadable):
        return str(rec)
    if not isinstance(rec, dict):
        try:
            shown = json.dumps(rec, default=str)[:40]
        except (RecursionError, ValueError):
            shown = f"a {type(rec).__name__}"
        return f"it is {shown}, not a JSON object"
    if rec.get("kind", kind) != kind:
        return f"its kind is {rec.get('kind')!r:.40}, not {kind!r}"
    try:
        problem = field_problem(rec, kind)
    except RecursionError:
        return "it is nested too deeply"
    registry = registered_models()
    if not problem and registry is not None and rec["model"] not in registry:
        problem = f"model {rec['model']!r:.60} is not registered (`bloodbench models` lists them)"
    return problem


def _recency(rec: dict) -> str:
    return str(rec.get("finished_at") or rec.get("written_at") or rec.get("created_at") or "")


def clean_records(found: list[tuple[Any, Any]], kind: str) -> list[dict]:
    """Valid records of ``kind`` from ``(where, record)`` pairs, one per run_id.

    A malformed record is named in one warning line and skipped. Of two records with one
    run_id (a copied file), the finished one, then the newest, then the one in its own
    folder is kept, and the warning names both files.
    """
    by_id: dict[str, list[tuple[Any, dict]]] = {}
    for where, rec in found:
        problem = record_problem(rec, kind)
        if problem:
            warn(f"skipped {kind} record {where}: {problem}; fix or delete it")
            continue
        rec.setdefault("kind", kind)
        by_id.setdefault(rec["run_id"], []).append((where, rec))
    out = []
    for run_id, copies in by_id.items():
        copies.sort(key=lambda wr: (wr[1].get("status") == "finished", _recency(wr[1]),
                                    run_id in str(wr[0]), str(wr[0])))
        kept_where, kept = copies[-1]
        for where, _ in copies[:-1]:
            warn(f"duplicate {kind} run_id {run_id} in {where} and {kept_where}: using {kept_where} "
                 f"(finished, then newest); delete the other")
        out.append(annotate(kept) if kind == "train" else kept)
    return out


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
        """Atomically write ``record`` (needs ``kind`` and ``run_id``); returns its path.

        A noisy profile record does not replace a quiet one of its setting (:func:`profile_choice`):
        that one stays, with a warning.
        """
        kind, run_id = record["kind"], record["run_id"]
        record.setdefault("schema", SCHEMA_VERSION)
        record.setdefault("written_at", utc_now())
        path = self.record_path(kind, run_id)
        if kind == "profile" and path.is_file():
            local = self._read(path)
            take, why = profile_choice(record, local) if record_problem(local, kind) is None else (True, "")
            if not take:
                warn(f"profile {run_id}: {why}: profile again on a quiet machine")
                return path
        atomic_write_text(path, strict_json(record, indent=1, sort_keys=True, default=_json_default) + "\n")
        return path

    def ensure_writable(self) -> Path:
        """Create the root and probe it: call before any work that will write a record."""
        return ensure_writable_dir(self.root, "results directory",
                                   "pass --results (or $BLOODBENCH_RESULTS) a writable folder")

    # -- read --------------------------------------------------------------------------
    def get(self, kind: str, run_id: str) -> dict[str, Any] | None:
        """The valid record of ``run_id``, or None (a malformed one is warned about, as None)."""
        path = self.record_path(kind, run_id)
        if not path.is_file():
            return None
        recs = clean_records([(path, self._read(path))], kind)
        return recs[0] if recs else None

    def finished(self, kind: str, run_id: str, or_diverged: bool = False) -> dict[str, Any] | None:
        """The record of ``run_id`` if that run is finished (:func:`is_finished`), else None."""
        rec = self.get(kind, run_id)
        return rec if is_finished(rec, or_diverged) else None

    _read = staticmethod(read_json)

    def iter_records(self, kind: str | None = None) -> Iterator[dict[str, Any]]:
        """Valid records of one kind (or all), deduplicated by run_id: see :func:`clean_records`."""
        kinds = KINDS if kind is None else (kind,)
        for k in kinds:
            pattern = "train/*/record.json" if k == "train" else "profile/*.json"
            found = []
            for path in sorted(self.root.glob(pattern)):
                data = self._read(path)
                found.append((path, data))
            yield from clean_records(found, k)

    def records(self, kind: str | None = None) -> list[dict[str, Any]]:
        return list(self.iter_records(kind))

    def finished_runs(self, model: str, dataset: str, size: int, seed: int | None = None) -> list[dict[str, Any]]:
        """Finished training records of (model, dataset, size), of one seed or all: what evaluate and explain use."""
        return [r for r in self.iter_records("train")
                if r.get("model") == model and r.get("dataset") == dataset and r.get("size") is not None
                and int(r["size"]) == int(size) and is_finished(r)
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
def check_records(records: Iterable[dict], kind: str) -> list[dict]:
    """The valid records, one per run_id: a malformed one is named in a warning and skipped
    (see :func:`clean_records`), instead of surfacing as a KeyError."""
    def where(rec: Any) -> str:
        run_id = rec.get("run_id") if isinstance(rec, dict) else None
        return f"of run {run_id}" if run_id else "without a run_id"

    return clean_records([(where(rec), rec) for rec in records], kind)


def store_records(root: Path, kind: str) -> list[dict]:
    """Valid records of one kind in a results dir (none if the dir does not exist)."""
    return ResultsStore(root).records(kind) if root.is_dir() else []


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
