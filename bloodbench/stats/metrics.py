"""Classification metrics (scikit-learn underneath) in the shape every record stores.

AUC follows MedMNIST's definition for multi-class tasks: the mean of one-vs-rest ROC
AUCs over classes.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn import metrics as skm


def check_scores(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    """``y_true`` as int (N,) and ``y_score`` as float (N, C), or a ValueError saying why not."""
    y_true = np.asarray(y_true).reshape(-1).astype(np.int64)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_score.ndim != 2 or len(y_score) != len(y_true):
        raise ValueError(f"y_score must be (N, C) with N={len(y_true)}, got {y_score.shape}")
    if len(y_true) == 0:
        raise ValueError("no samples")
    return y_true, y_score


def auc_ovr(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Mean one-vs-rest ROC AUC over the classes present in ``y_true`` (MedMNIST's AUC)."""
    aucs = []
    for c in range(y_score.shape[1]):
        pos = y_true == c
        if pos.any() and not pos.all():
            aucs.append(skm.roc_auc_score(pos, y_score[:, c]))
    return float(np.mean(aucs)) if aucs else float("nan")


def classification_metrics(y_true, y_score, class_names: Sequence[str] | None = None) -> dict:
    """acc, auc, macro/weighted F1, macro precision/recall, per-class table, confusion matrix."""
    y_true, y_score = check_scores(y_true, y_score)
    n_classes = y_score.shape[1]
    labels = list(range(n_classes))
    y_pred = y_score.argmax(axis=1)
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {
        "n": int(len(y_true)),
        "acc": float(skm.accuracy_score(y_true, y_pred)),
        "auc": auc_ovr(y_true, y_score),
        "f1_macro": float(skm.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "precision_macro": float(skm.precision_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "recall_macro": float(skm.recall_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "f1_weighted": float(skm.f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
        "per_class": {"precision": p.tolist(), "recall": r.tolist(), "f1": f.tolist(), "support": s.tolist()},
        "class_names": list(class_names) if class_names is not None else [str(i) for i in labels],
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def macro_f1_batched(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Macro-F1 of each row of (B, N) label arrays at once, as ``f1_score(average="macro",
    labels=range(n_classes), zero_division=0)`` computes it for one row."""
    b = len(y_true)
    flat = (np.arange(b)[:, None] * n_classes + y_true) * n_classes + y_pred
    cm = np.bincount(flat.ravel(), minlength=b * n_classes * n_classes).reshape(b, n_classes, n_classes)
    tp = np.diagonal(cm, axis1=1, axis2=2)
    denom = cm.sum(axis=1) + cm.sum(axis=2)  # (tp + fp) + (tp + fn)
    f1 = np.divide(2 * tp, denom, out=np.zeros(tp.shape), where=denom > 0)
    return f1.mean(axis=1)


def bootstrap_ci(y_true, y_score, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict[str, list[float]]:
    """Percentile bootstrap confidence intervals for test accuracy and macro-F1.

    All resamples are drawn and scored at once (numpy), not one scikit-learn call each.
    """
    y_true, y_score = check_scores(y_true, y_score)
    y_pred = y_score.argmax(axis=1)
    n = len(y_true)
    idx = np.random.default_rng(seed).integers(0, n, (n_boot, n))
    t, pr = y_true[idx], y_pred[idx]
    accs = (t == pr).mean(axis=1)
    f1s = macro_f1_batched(t, pr, y_score.shape[1])
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    return {
        "acc": [float(np.percentile(accs, lo)), float(np.percentile(accs, hi))],
        "f1_macro": [float(np.percentile(f1s, lo)), float(np.percentile(f1s, hi))],
        "level": level,
        "n_boot": n_boot,
    }
