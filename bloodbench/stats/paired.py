"""Paired comparisons on the same test images: is a row really worse than the best one?

At 3,421 test images one image is 0.03 points, so the top rows often differ by noise.
Both tests pair the rows image by image:

- McNemar's exact test (statsmodels) for two single runs: only the discordant images count.
- A paired bootstrap (``metrics.percentile_ci``, the project's one bootstrap) of the accuracy difference for rows averaged over seeds: each
  image carries its correctness averaged over the row's seeds, and images are resampled.

A row is *tied* with the best when it is not significantly worse: McNemar p ≥ 0.05 for two
single runs, else the 95 % CI of (best − row) reaches 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from statsmodels.stats.contingency_tables import mcnemar

from bloodbench.stats.metrics import LEVEL, N_RESAMPLES, percentile_ci


def mcnemar_exact(correct_a, correct_b) -> float:
    """Two-sided exact McNemar p-value for two classifiers' per-image correctness (bool arrays)."""
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    table = [[int(np.sum(a & b)), int(np.sum(a & ~b))], [int(np.sum(~a & b)), int(np.sum(~a & ~b))]]
    return float(mcnemar(table, exact=True).pvalue)


def accuracy_ci(correct, level: float = LEVEL, n_resamples: int = N_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI over images of a row's accuracy; ``correct``: (N,) per-image correctness in [0, 1]."""
    return percentile_ci((np.asarray(correct, float),), np.mean, level=level, n_resamples=n_resamples, seed=seed)


def _mean_diff(a, b, axis=-1):
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


@dataclass
class PairedResult:
    diff: float                 # accuracy(best) − accuracy(row), fraction
    ci: tuple[float, float]     # its CI
    p_mcnemar: float | None     # when both rows are single runs
    tied: bool                  # not significantly worse than the best


def paired_comparison(correct_best, correct_row, *, single_runs: bool = False, level: float = LEVEL,
                      n_resamples: int = N_RESAMPLES, seed: int = 0) -> PairedResult:
    """Best row against another on the same images; correctness per image (averaged over seeds)."""
    best, row = np.asarray(correct_best, float), np.asarray(correct_row, float)
    if best.shape != row.shape:
        raise ValueError(f"rows were scored on different test sets: {best.shape} vs {row.shape}")
    diff = float(best.mean() - row.mean())
    if np.array_equal(best, row):
        ci = (0.0, 0.0)
    else:
        ci = percentile_ci((best, row), _mean_diff, paired=True, level=level, n_resamples=n_resamples, seed=seed)
    p = mcnemar_exact(best > 0.5, row > 0.5) if single_runs else None
    tied = p >= 1 - level if p is not None else ci[0] <= 0.0
    return PairedResult(diff, ci, p, bool(tied))
