"""Saved per-image probabilities of a training run: the raw material of ensembles, TTA rows
and paired comparisons, so none of them needs a checkpoint.

Each file is ``y_true`` (N,) int and ``y_score`` (N, C) float32, written atomically. The
record's ``artifacts`` names them; keys containing ``val``/``test`` say which split, and a
``_tta`` suffix marks the 8-view dihedral test-time augmentation (see ``train/tta.py``).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from bloodbench.errors import BloodbenchError
from bloodbench.store.fsutil import atomic_write_bytes

#: Views of the saved test-time augmentation: the square's 8 symmetries (bloodbench.train.tta).
TTA_VIEWS = 8

# artifacts key -> file name, as the trainer writes them.
PREDICTION_FILES = {
    "val_predictions": "val_predictions.npz",
    "test_predictions": "test_predictions.npz",
    "val_predictions_tta": "val_predictions_tta.npz",
    "test_predictions_tta": "test_predictions_tta.npz",
}
# Records from before val predictions existed name their test file ``predictions``.
LEGACY_KEYS = {"test_predictions": "predictions"}


def save_predictions(path: Path, y_true, y_score) -> None:
    """Atomically write ``y_true`` and ``y_score`` (as float32) to a compressed npz."""
    buf = io.BytesIO()
    np.savez_compressed(buf, y_true=np.asarray(y_true), y_score=np.asarray(y_score, dtype=np.float32))
    atomic_write_bytes(Path(path), buf.getvalue())


def load_predictions(path: Path, fix: str = "retrain the run with `bloodbench train MODEL --seed S --force`, "
                                                "or delete its folder") -> tuple[np.ndarray, np.ndarray]:
    """``(y_true (N,) int64, y_score (N, C) float32)`` from a predictions npz, or one error line
    naming the file and ``fix``."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            y_true = np.asarray(npz["y_true"]).reshape(-1).astype(np.int64)
            y_score = np.asarray(npz["y_score"], dtype=np.float32)
    except FileNotFoundError:
        raise BloodbenchError(f"{path} is missing: {fix}") from None
    except Exception as exc:  # zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError, ...
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BloodbenchError(f"{path} is unreadable ({msg}; it needs arrays y_true and y_score): {fix}") from None
    if y_score.ndim != 2 or len(y_score) != len(y_true) or len(y_true) == 0:
        raise BloodbenchError(f"{path}: y_score {y_score.shape} does not match y_true {y_true.shape}: {fix}")
    return y_true, y_score


def prediction_path(run_dir: Path, record: dict, key: str) -> Path | None:
    """The file a record's ``artifacts`` names for ``key`` (e.g. ``val_predictions_tta``), if it exists."""
    arts = record.get("artifacts") or {}
    name = arts.get(key) or arts.get(LEGACY_KEYS.get(key, ""))
    if not name:
        return None
    path = Path(run_dir) / name
    return path if path.is_file() else None
