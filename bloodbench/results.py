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
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from bloodbench.errors import BloodbenchError

SCHEMA_VERSION = 1
RESULTS_ENV = "BLOODBENCH_RESULTS"
DEFAULT_RESULTS = Path("reports") / "results"
# The committed store of the checkout this package runs from (``pip install -e .``); in an
# installed copy this path does not exist and the default stays relative to the cwd.
REPO_RESULTS = Path(__file__).resolve().parents[1] / DEFAULT_RESULTS
KINDS = ("train", "profile")


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


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename over ``path``.

    A crash at any point leaves either the old file or the new one, never a torn one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


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

    def load(self, kind: str | None = None) -> pd.DataFrame:
        """All records as a flat DataFrame (nested dicts become ``a.b`` columns)."""
        recs = self.records(kind)
        if not recs:
            return pd.DataFrame()
        return pd.json_normalize(recs, max_level=2)


def load_results(results: str | os.PathLike | None = None, kind: str | None = None) -> pd.DataFrame:
    return ResultsStore(results).load(kind)
