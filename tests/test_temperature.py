"""Temperature scaling of saved probabilities, fit on validation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax

from bloodbench.stats.temperature import fit_temperature, scale_temperature


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_fit_recovers_the_temperature_the_labels_were_drawn_at(true_t):
    """Labels drawn from softmax(z / T0) and probabilities softmax(z) saved: the val optimum is T0."""
    rng = np.random.default_rng(0)
    z = rng.normal(0, 3, (20_000, 8))
    p_true = softmax(z / true_t, axis=1)
    y = (p_true.cumsum(1) > rng.random((len(z), 1))).argmax(1)
    assert fit_temperature(y, softmax(z, axis=1)) == pytest.approx(true_t, rel=0.05)


def test_scaling_keeps_every_argmax_and_is_a_distribution():
    rng = np.random.default_rng(1)
    p = softmax(rng.normal(0, 2, (500, 8)), axis=1).astype(np.float32)
    for t in (0.2, 1.0, 4.0):
        q = scale_temperature(p, t)
        assert q.dtype == np.float64 and np.allclose(q.sum(1), 1)
        assert (q.argmax(1) == p.argmax(1)).all()
    assert np.allclose(scale_temperature(p, 1.0), p / p.sum(1, keepdims=True), atol=1e-6)
    sharp, flat = scale_temperature(p, 0.5).max(1), scale_temperature(p, 2.0).max(1)
    assert (sharp >= p.max(1) - 1e-6).all() and (flat <= p.max(1) + 1e-6).all()


def test_zero_probabilities_in_a_float32_file_do_not_break_the_fit():
    y = np.array([0, 1, 2, 3] * 25)
    p = np.eye(4, dtype=np.float32)[y]          # one-hot: log 0 clipped, not -inf
    p[0] = np.eye(4, dtype=np.float32)[1]       # one confident mistake
    t = fit_temperature(y, p)
    assert np.isfinite(t) and t > 1  # a confident mistake calls for a flatter distribution
    assert np.isfinite(scale_temperature(p, t)).all()
