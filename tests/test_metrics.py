"""Metrics against cases small enough to compute by hand."""

from __future__ import annotations

import numpy as np
import pytest

from bloodbench.stats.metrics import auc_ovr, bootstrap_ci, classification_metrics

# 3 classes, 6 samples. Predictions (argmax): [0, 0, 1, 1, 2, 0]; truth: [0, 0, 1, 1, 2, 2].
Y_TRUE = np.array([0, 0, 1, 1, 2, 2])
Y_SCORE = np.array([
    [0.8, 0.1, 0.1],
    [0.6, 0.3, 0.1],
    [0.2, 0.7, 0.1],
    [0.3, 0.4, 0.3],
    [0.1, 0.2, 0.7],
    [0.5, 0.1, 0.4],
])


def test_hand_computed_case():
    m = classification_metrics(Y_TRUE, Y_SCORE, ["a", "b", "c"])
    assert m["acc"] == pytest.approx(5 / 6)
    # class 0: tp=2, fp=1 -> p=2/3, r=1, f1=0.8; class 1: p=1, r=1, f1=1; class 2: p=1, r=1/2, f1=2/3
    assert m["per_class"]["precision"] == pytest.approx([2 / 3, 1, 1])
    assert m["per_class"]["recall"] == pytest.approx([1, 1, 0.5])
    assert m["per_class"]["f1"] == pytest.approx([0.8, 1, 2 / 3])
    assert m["per_class"]["support"] == [2, 2, 2]
    assert m["f1_macro"] == pytest.approx((0.8 + 1 + 2 / 3) / 3)
    assert m["f1_weighted"] == pytest.approx((0.8 + 1 + 2 / 3) / 3)  # equal supports
    assert m["precision_macro"] == pytest.approx((2 / 3 + 1 + 1) / 3)
    assert m["recall_macro"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert m["confusion_matrix"] == [[2, 0, 0], [0, 2, 0], [1, 0, 1]]
    assert m["class_names"] == ["a", "b", "c"] and m["n"] == 6


def test_auc_is_mean_one_vs_rest():
    # class 0 scores: positives {0.8, 0.6}, negatives {0.2, 0.3, 0.1, 0.5}: all 8 pairs ordered -> 1.0
    # class 1 scores: positives {0.7, 0.4}, negatives {0.1, 0.3, 0.2, 0.1}: 8/8 -> 1.0
    # class 2 scores: positives {0.7, 0.4}, negatives {0.1, 0.1, 0.1, 0.3}: 8/8 -> 1.0
    assert auc_ovr(Y_TRUE, Y_SCORE) == pytest.approx(1.0)
    flipped = Y_SCORE.copy()
    flipped[:, 0] = 1 - flipped[:, 0]  # class 0 AUC becomes 0
    assert auc_ovr(Y_TRUE, flipped) == pytest.approx(2 / 3)


def test_bootstrap_ci_brackets_the_point_estimate():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 500)
    s = rng.random((500, 4))
    s[np.arange(400), y[:400]] += 2  # 80 % + chance on the rest
    acc = classification_metrics(y, s)["acc"]
    ci = bootstrap_ci(y, s, n_boot=300, seed=0)
    assert ci["acc"][0] < acc < ci["acc"][1]
    assert 0 < ci["acc"][1] - ci["acc"][0] < 0.1
    assert ci == bootstrap_ci(y, s, n_boot=300, seed=0)
    f1 = classification_metrics(y, s)["f1_macro"]
    assert ci["f1_macro"][0] < f1 < ci["f1_macro"][1]


def test_one_bootstrap_a_runs_ci_is_the_reports_ci_of_that_run():
    """The record's accuracy CI and the report's row CI (per-image correctness) are one method."""
    from bloodbench.stats.paired import accuracy_ci

    rng = np.random.default_rng(2)
    y = rng.integers(0, 8, 800)
    s = rng.random((800, 8))
    s[np.arange(700), y[:700]] += 2
    record_ci = bootstrap_ci(y, s, seed=0)
    assert record_ci["n_boot"] == 2000 and record_ci["level"] == 0.95
    assert tuple(record_ci["acc"]) == pytest.approx(accuracy_ci(s.argmax(1) == y, seed=0))


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        classification_metrics([0, 1], np.ones((3, 2)))
