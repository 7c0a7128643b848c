"""Temperature scaling (Guo et al., 2017) of saved probabilities, fit on validation.

Recipes differ in label smoothing (0.1 for inception, 0.05 for the others), so their raw
probabilities differ in confidence, and a log-loss comparison between them, as in greedy
ensemble selection, favours the more confident recipe rather than the more accurate one. One
temperature per run, fit by val log-loss, puts them on equal terms without moving any argmax:
a single model's accuracy is unchanged. The saved files hold probabilities, whose logs are the
logits up to a per-row constant, so ``softmax(log p / T)`` is exactly scaling the logits.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

#: the search range of log T: T from 1/20 to 20
LOG_T_BOUNDS = (-math.log(20.0), math.log(20.0))


def _log_probs(probs: np.ndarray) -> np.ndarray:
    return np.log(np.clip(np.asarray(probs, np.float64), 1e-12, None))


def fit_temperature(y_true, probs) -> float:
    """The temperature T that minimises the mean negative log-likelihood of ``softmax(log probs / T)``."""
    y = np.asarray(y_true).reshape(-1).astype(np.int64)
    logp = _log_probs(probs)
    rows = np.arange(len(y))

    def nll(log_t: float) -> float:
        return -float(log_softmax(logp / math.exp(log_t), axis=1)[rows, y].mean())

    best = minimize_scalar(nll, bounds=LOG_T_BOUNDS, method="bounded", options={"xatol": 1e-4})
    return float(math.exp(best.x))


def scale_temperature(probs, temperature: float) -> np.ndarray:
    """``softmax(log probs / temperature)`` as float64; temperature 1 gives the (renormalised) input."""
    return np.exp(log_softmax(_log_probs(probs) / temperature, axis=1))


__all__ = ["fit_temperature", "scale_temperature"]
