"""Classification metrics (scikit-learn underneath) in the shape every record stores.

AUC follows MedMNIST's definition for multi-class tasks: the mean of one-vs-rest ROC
AUCs over classes.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import stats
from sklearn import metrics as skm

LEVEL = 0.95
N_RESAMPLES = 2000


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


def percentile_ci(data: tuple, statistic, *, paired: bool = False, level: float = LEVEL,
                  n_resamples: int = N_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """The project's one bootstrap: a percentile CI over test images (scipy), every figure that
    carries a CI (a run's record, ``evaluate``, the report's rows and paired differences) uses it.
    ``statistic(*samples, axis=-1)`` must score a batch of resamples at once."""
    res = stats.bootstrap(data, statistic, paired=paired, confidence_level=level, n_resamples=n_resamples,
                          method="percentile", vectorized=True, batch=200, random_state=seed)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def bootstrap_ci(y_true, y_score, n_boot: int = N_RESAMPLES, seed: int = 0, level: float = LEVEL) -> dict:
    """Test accuracy's and macro-F1's CIs (``percentile_ci``; the same resamples of images for both)."""
    y_true, y_score = check_scores(y_true, y_score)
    y_pred, n_classes = y_score.argmax(axis=1), y_score.shape[1]

    def acc(t, p, axis=-1):
        return (t == p).mean(axis=axis)

    def f1(t, p, axis=-1):
        flat = np.ndim(t) == 1
        scores = macro_f1_batched(np.atleast_2d(t).reshape(-1, t.shape[-1]),
                                  np.atleast_2d(p).reshape(-1, p.shape[-1]), n_classes)
        return scores[0] if flat else scores.reshape(t.shape[:-1])

    ci = {name: list(percentile_ci((y_true, y_pred), fn, paired=True, level=level, n_resamples=n_boot, seed=seed))
          for name, fn in (("acc", acc), ("f1_macro", f1))}
    return {**ci, "level": level, "n_boot": n_boot}
