"""The saved predictions of finished runs, read for the ensemble and TTA rows and the report's paired
comparisons, each file checked before any of it is averaged.

Every file a record's ``artifacts`` names must be beside the record, readable, probabilities of the
record's classes and images (``store.predictions.checked_predictions``), and hold the dataset's own
labels of its split in the dataset's order: against the official file when it is found here (the
record says its run used as many images), else against the labels most runs agree on. A file that
fails is one error line naming that file, never another run's.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import numpy as np

from bloodbench.errors import BloodbenchError
from bloodbench.hints import retrain_hint
from bloodbench.store.predictions import artifact_name, checked_predictions
from bloodbench.store.results import ResultsStore

KEYS = ("test_predictions", "val_predictions", "test_predictions_tta", "val_predictions_tta")


@dataclass
class RunPredictions:
    """One finished run's saved probabilities (val ones may be missing on older runs)."""

    run_id: str
    model: str
    seed: int
    val_acc: float                      # from the record: the fallback selection key
    test: tuple[np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray] | None = None
    test_tta: tuple[np.ndarray, np.ndarray] | None = None
    val_tta: tuple[np.ndarray, np.ndarray] | None = None   # 8-view val: what a TTA ensemble is selected on
    files: dict[str, Path] = field(default_factory=dict)  # artifacts key -> the file read


@lru_cache(maxsize=16)
def _official_labels(dataset: str, size: int, split: str, data_dir: str) -> np.ndarray | None:
    from bloodbench.data import dataset_info, verify_md5

    try:
        info = dataset_info(dataset, size)
        path = Path(data_dir) / info.filename
        if not path.is_file():
            return None
        verify_md5(path, info.md5)  # only the official file is a reference (its verdict is cached)
        with np.load(path, allow_pickle=False) as npz:
            return np.asarray(npz[f"{split}_labels"]).reshape(-1).astype(np.int64)
    except (BloodbenchError, OSError, ValueError, KeyError):
        return None


def dataset_labels(record: dict, split: str) -> np.ndarray | None:
    """The dataset's own labels of ``split`` for ``record``'s run, in the dataset's order, when the official
    file is found here and the record says its run used as many images; else None."""
    from bloodbench.data import resolve_data_dir

    labels = _official_labels(str(record["dataset"]), int(record["size"]), split, str(resolve_data_dir()))
    n = (record.get("data") or {}).get(f"n_{split}")
    return labels if labels is not None and n == len(labels) else None


def load_run_predictions(records: Iterable[dict], root: str | Path | None,
                         run_ids: Iterable[str]) -> dict[str, RunPredictions]:
    """The runs of ``run_ids`` that have saved test predictions, by run_id, every file checked."""
    store = ResultsStore(root)
    wanted = set(run_ids)
    out = {}
    for rec in records:
        if rec.get("run_id") not in wanted:
            continue
        run_dir = store.run_dir(rec["run_id"])
        fix = f"recreate it with {retrain_hint(rec, store.root)}, or delete {run_dir}"
        load = {k: checked_predictions(run_dir, rec, k, fix, dataset_labels(rec, "val" if k.startswith("val") else "test"))
                for k in KEYS}
        if load["test_predictions"] is None:
            continue
        out[rec["run_id"]] = RunPredictions(
            rec["run_id"], rec["model"], rec.get("seed"), float((rec.get("val") or {}).get("acc") or math.nan),
            load["test_predictions"], load["val_predictions"], load["test_predictions_tta"], load["val_predictions_tta"],
            {k: run_dir / str(artifact_name(rec, k)) for k in KEYS if load[k] is not None})
    return out


def check_same_images(runs: list[RunPredictions]) -> None:
    """Runs compared or averaged image by image must hold the same labels in the same order: the files
    that differ from the labels most runs hold are named (every file when no labels have a majority)."""
    for split, key in (("test", "test_predictions"), ("val", "val_predictions"), ("test_tta", "test_predictions_tta"),
                       ("val_tta", "val_predictions_tta")):
        have = [r for r in runs if getattr(r, split) is not None]
        votes = Counter(getattr(r, split)[0].tobytes() for r in have)
        if len(votes) < 2:
            continue
        (top, count), (_, second) = votes.most_common(2)
        odd = [r for r in have if getattr(r, split)[0].tobytes() != top] if count > second else have
        names = ", ".join(str(r.files.get(key, r.run_id)) for r in odd[:3]) + (" and more" if len(odd) > 3 else "")
        what = "differ from those of the other runs" if count > second else "differ, and no labels have a majority"
        raise BloodbenchError(
            f"{split.replace('_', ' ')} predictions are not on the same images in every run: the labels of {names} "
            f"{what}; rerun that run (`bloodbench train MODEL --seed S --force`) or delete its folder")
