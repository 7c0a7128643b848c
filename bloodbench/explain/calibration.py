"""Calibration of the saved test probabilities: reliability bins and ECE.

Top-label confidence (the max probability) with equal-width bins, the definition of
Guo et al. (2017): ECE = sum_b |B_b| / N * |acc(B_b) - conf(B_b)|. Bins are right-closed,
(lo, hi], so a confidence of exactly 1.0 lands in the last bin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bloodbench.stats.metrics import check_scores

DEFAULT_BINS = 15


@dataclass
class ReliabilityBins:
    """Per-bin statistics; ``accuracy``/``confidence`` are NaN for empty bins."""

    edges: np.ndarray       # (B + 1,)
    count: np.ndarray       # (B,)
    accuracy: np.ndarray    # (B,)
    confidence: np.ndarray  # (B,)
    ece: float

    @property
    def n(self) -> int:
        return int(self.count.sum())


def reliability_bins(y_true, y_score, n_bins: int = DEFAULT_BINS) -> ReliabilityBins:
    """Bin the top-label confidences and compare each bin's accuracy with its mean confidence."""
    if n_bins < 1:
        raise ValueError("n_bins must be >= 1")
    y_true, y_score = check_scores(y_true, y_score)
    conf = y_score.max(1)
    correct = (y_score.argmax(1) == y_true).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # right-closed bins: (lo, hi]; ceil(c * B) - 1, clipped so 0 goes to bin 0 and 1.0 to the last.
    idx = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.bincount(idx, weights=correct, minlength=n_bins) / count
        mean_conf = np.bincount(idx, weights=conf, minlength=n_bins) / count
    gaps = np.where(count > 0, np.abs(np.nan_to_num(acc) - np.nan_to_num(mean_conf)), 0.0)
    ece = float((count / count.sum() * gaps).sum())
    return ReliabilityBins(edges, count, acc, mean_conf, ece)


def expected_calibration_error(y_true, y_score, n_bins: int = DEFAULT_BINS) -> float:
    """ECE with ``n_bins`` equal-width bins of top-label confidence (0 = perfectly calibrated)."""
    return reliability_bins(y_true, y_score, n_bins).ece
