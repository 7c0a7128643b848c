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
    problem = scores_problem(y_true, y_score)
    if problem:
        raise BloodbenchError(f"{path}: {problem}: {fix}")
    return y_true, y_score


def scores_problem(y_true: np.ndarray, y_score: np.ndarray) -> str | None:
    """Why arrays read from a predictions file are not per-image probabilities of its labels, or None."""
    if y_score.ndim != 2 or len(y_score) != len(y_true) or len(y_true) == 0 or y_score.shape[1] < 2:
        return f"y_score {y_score.shape} does not match y_true {y_true.shape}"
    if not np.isfinite(y_score).all():
        return "y_score holds NaN or infinite probabilities"
    if y_score.min() < -1e-4 or y_score.max() > 1 + 1e-4:
        return f"y_score holds values outside [0, 1] ({y_score.min():.3g} … {y_score.max():.3g}), not probabilities"
    if y_true.min() < 0 or y_true.max() >= y_score.shape[1]:
        return f"y_true holds labels outside 0 … {y_score.shape[1] - 1}"
    return None


def plain_name(name: object) -> bool:
    """A file name beside the record: no folder, no '..'."""
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name


def artifact_name(record: dict, key: str) -> str | None:
    """The name a record's ``artifacts`` gives the file of ``key`` (its legacy key too), or None."""
    arts = record.get("artifacts") or {}
    return arts.get(key) or arts.get(LEGACY_KEYS.get(key, "")) or None


def prediction_path(run_dir: Path, record: dict, key: str) -> Path | None:
    """The file a record's ``artifacts`` names for ``key`` (e.g. ``val_predictions_tta``), if it exists."""
    name = artifact_name(record, key)
    if not name:
        return None
    path = Path(run_dir) / name
    return path if path.is_file() else None


def split_of(key: str) -> str:
    """``val`` or ``test``: the split an artifacts key names."""
    return "val" if key.startswith("val") else "test"


def checked_predictions(run_dir: Path, record: dict, key: str, fix: str,
                        labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """The predictions of ``key`` the record names, checked against the record and the dataset, or None
    when the record names no such file.

    One error line naming the file and ``fix`` when the name leaves the run's folder, the file is
    missing (a named file deleted is never silently a seed less) or not a regular file, unreadable,
    not probabilities (:func:`scores_problem`), of another number of classes or images than the record,
    or (given the dataset's own ``labels`` of the split) on other labels or another order.
    """
    name = artifact_name(record, key)
    if not name:
        return None
    run_dir = Path(run_dir)
    path = run_dir / str(name)
    if not plain_name(name) or not path.resolve().is_relative_to(run_dir.resolve()):
        raise BloodbenchError(f"{run_dir / 'record.json'}: its artifact {key} {name!r:.80} points outside the "
                              f"run's folder; refused: {fix}")
    if path.exists() and not path.is_file():
        raise BloodbenchError(f"{path} is not a regular file: {fix}")
    y_true, y_score = load_predictions(path, fix)
    split = split_of(key)
    classes, n = record.get("num_classes"), (record.get(split) or {}).get("n")
    if isinstance(classes, int) and y_score.shape[1] != classes:
        raise BloodbenchError(f"{path} has {y_score.shape[1]} classes, its record {classes}: {fix}")
    if isinstance(n, int) and len(y_true) != n:
        raise BloodbenchError(f"{path} has {len(y_true)} rows, its record's {split} split {n}: {fix}")
    if labels is not None and not np.array_equal(y_true, labels):
        what = "in another order" if len(labels) == len(y_true) and np.array_equal(np.sort(y_true), np.sort(labels)) \
            else "another dataset's or split's"
        raise BloodbenchError(f"{path} holds labels that are not the dataset's own {split} labels ({what}): {fix}")
    return y_true, y_score
