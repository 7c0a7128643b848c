"""The user cache folder, and the registry's static cost figures cached in it.

``bloodbench models`` shows params and MACs of every registered model. fvcore traces each
model to count MACs, which takes seconds per call, yet the figures only change when a
model's source, torch, torchvision or fvcore change. So they are kept in
``<cache>/model_costs.json`` under a key hashed from exactly those, and recomputed on any
mismatch. Nothing here imports torch: a warm ``bloodbench models`` never loads it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from importlib import metadata
from pathlib import Path
from typing import Callable

CACHE_DIR_ENV = "BLOODBENCH_CACHE_DIR"
MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
# How params and MACs are counted: a change there changes the figures as much as a model's.
COUNTING_SOURCES = (Path(__file__).resolve().parents[1] / "profile" / "counting.py",)
COSTS_FILE = "model_costs.json"
# Packages whose version can change a model's params or MAC count.
KEY_PACKAGES = ("torch", "torchvision", "fvcore")


def cache_dir() -> Path:
    """``$BLOODBENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/bloodbench``, else ``~/.cache/bloodbench``."""
    root = os.environ.get(CACHE_DIR_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "bloodbench")
    return Path(root)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def registry_key(*settings: object, models_dir: Path = MODELS_DIR,
                 extra_sources: tuple[Path, ...] = COUNTING_SOURCES) -> str:
    """Hash of the registry's source files (builders and their metadata), the counting code,
    the package versions that count, and ``settings`` (input size, channels, classes)."""
    h = hashlib.sha256()
    for path in [*sorted(models_dir.glob("*.py")), *(p for p in extra_sources if p.is_file())]:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for package in KEY_PACKAGES:
        h.update(f"{package}={_version(package)}\0".encode())
    h.update(json.dumps(settings).encode())
    return h.hexdigest()[:16]


#: A registry cost row (``bloodbench models``): its text fields, and its counts (finite, not negative).
COST_TEXT = ("name", "family", "description", "origin")
COST_COUNTS = ("params", "macs", "flops")


def valid_cost_rows(rows: object) -> bool:
    """Rows as ``bloodbench models`` shows them: a non-empty list of objects, each with its text fields
    as strings and its counts as finite numbers >= 0. Anything else in the cache is a miss, not a figure."""
    def ok(row: object) -> bool:
        return (isinstance(row, dict) and all(isinstance(row.get(k), str) for k in COST_TEXT)
                and all(isinstance(row.get(k), (int, float)) and not isinstance(row.get(k), bool)
                        and math.isfinite(row[k]) and row[k] >= 0 for k in COST_COUNTS))

    return isinstance(rows, list) and bool(rows) and all(ok(r) for r in rows)


def cached(key: str, compute: Callable[[], list[dict]], name: str = COSTS_FILE,
           valid: Callable[[object], bool] = valid_cost_rows) -> list[dict]:
    """``compute()``'s rows, from ``<cache>/name`` when its key matches and ``valid(rows)``, else computed
    and stored.

    The cache is only a speed-up: an unreadable file, or one whose key matches but whose rows are
    malformed (or empty), is recomputed; an unwritable folder is ignored.
    """
    path = cache_dir() / name
    try:
        entry = json.loads(path.read_text()) if path.is_file() else None
        if isinstance(entry, dict) and entry.get("key") == key and valid(entry.get("rows")):
            return entry["rows"]
    except (OSError, ValueError, RecursionError):
        pass
    rows = compute()
    try:
        from bloodbench.store.fsutil import atomic_write_text, strict_json

        atomic_write_text(path, strict_json({"key": key, "rows": rows}, indent=1) + "\n")
    except OSError:
        pass
    return rows
