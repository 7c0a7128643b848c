"""Error analysis from the saved test predictions: confusions, per-class errors, examples.

Everything here reads ``test_predictions.npz`` (y_true, y_score) instead of re-running
the model, so the analysis describes exactly the predictions the metrics came from.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix

from bloodbench.errors import BloodbenchError
from bloodbench.formatting import short_name
from bloodbench.store.predictions import load_predictions  # noqa: F401  (re-exported)


def match_class(query: str, class_names: list[str] | tuple[str, ...]) -> int:
    """Class index from an exact name, a case-insensitive prefix, or a label number."""
    q = query.strip().lower()
    names = [c.lower() for c in class_names]
    if q.isdigit() and int(q) < len(names):
        return int(q)
    if q in names:
        return names.index(q)
    hits = [i for i, c in enumerate(names) if c.startswith(q)] if q else []
    if len(hits) == 1:
        return hits[0]
    listing = ", ".join(short_name(c, 40) for c in class_names)
    if hits:
        raise BloodbenchError(f"class {query!r} is ambiguous: it matches {', '.join(class_names[i] for i in hits)}")
    raise BloodbenchError(f"unknown class {query!r}: choose one of {listing}")


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """cm[t, p] = number of test images of true class t predicted as p."""
    return confusion_matrix(np.asarray(y_true), np.asarray(y_pred), labels=range(n_classes)).astype(np.int64)


def confused_pairs(y_true, y_score, class_names, top: int | None = 10) -> list[dict]:
    """Off-diagonal (true -> predicted) pairs, most frequent first.

    ``share`` is the fraction of the true class's images that went to that prediction,
    which ranks a pair fairly for rare classes (e.g. basophils) as well as common ones.
    Ties break by (true, predicted) index so the table is deterministic.
    """
    y_true = np.asarray(y_true).reshape(-1)
    y_pred = np.asarray(y_score).argmax(1)
    k = len(class_names)
    cm = confusion_counts(y_true, y_pred, k)
    support = cm.sum(1)
    rows = [
        {"true": class_names[t], "predicted": class_names[p], "true_idx": t, "pred_idx": p,
         "count": int(cm[t, p]), "share": float(cm[t, p] / support[t])}
        for t in range(k) for p in range(k) if t != p and cm[t, p] > 0
    ]
    rows.sort(key=lambda r: (-r["count"], r["true_idx"], r["pred_idx"]))
    return rows if top is None else rows[:top]


def per_class_errors(y_true, y_score, class_names) -> list[dict]:
    """Support, errors and error rate (1 - recall) per true class, in label order."""
    y_true = np.asarray(y_true).reshape(-1)
    wrong = np.asarray(y_score).argmax(1) != y_true
    rows = []
    for i, name in enumerate(class_names):
        mask = y_true == i
        n = int(mask.sum())
        e = int(wrong[mask].sum())
        rows.append({"class": name, "support": n, "errors": e, "error_rate": e / n if n else float("nan")})
    return rows


def select_examples(y_true, y_score, correct: bool, n: int, class_idx: int | None = None) -> np.ndarray:
    """Indices of the ``n`` most confident correct (or wrong) predictions, optionally of one true class.

    Most confident first: confident-and-right shows what the model relies on, confident-and-
    wrong shows its worst failures. Stable sort on index makes equal confidences deterministic.
    """
    y_true = np.asarray(y_true).reshape(-1)
    y_score = np.asarray(y_score)
    pred = y_score.argmax(1)
    conf = y_score.max(1)
    mask = (pred == y_true) if correct else (pred != y_true)
    if class_idx is not None:
        mask &= y_true == class_idx
    idx = np.flatnonzero(mask)
    order = np.argsort(-conf[idx], kind="stable")
    return idx[order][: max(n, 0)]
