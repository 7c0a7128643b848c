"""The log-loss of greedy ensemble selection: ``val_log_loss`` against sklearn's ``log_loss``.

Greedy selection (``caruana_select``) scores every candidate every round: about 2,000 log-loss calls for
the committed store, each on the same val labels. sklearn re-checks the labels and one-hot encodes them on
every call; ``val_log_loss`` computes the same value (tests/test_ensemble.py holds it to sklearn's) from
the labels as they are. The entry (kind ``greedy_loss``) records both medians and their ratio, on the 8-view
val predictions of committed runs (float64 after temperature scaling, as the selection sees them).
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pytest
import torch

from bloodbench.leaderboard.ensemble import val_log_loss
from bloodbench.runtime.envinfo import device_name
from bloodbench.stats.temperature import fit_temperature, scale_temperature
from bloodbench.store.predictions import load_predictions
from bloodbench.store.results import REPO_RESULTS

REPEATS = 50


def _median_ms(fn, repeats: int = REPEATS) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def _val_scores(n_runs: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """The committed runs' 8-view val labels and their temperature-scaled, averaged probabilities."""
    paths = sorted(REPO_RESULTS.glob("train/*-bloodmnist-28-s0-*/val_predictions_tta.npz"))[:n_runs]
    if len(paths) < 2:
        pytest.skip(f"fewer than 2 committed runs with 8-view val predictions under {REPO_RESULTS}")
    preds = [load_predictions(p) for p in paths]
    y = preds[0][0]
    return y, np.mean([scale_temperature(p, fit_temperature(y, p)) for _, p in preds], axis=0)


def test_greedy_loss(benchmark, record_info, capsys):
    from sklearn.metrics import log_loss

    y, p = _val_scores()
    labels = list(range(p.shape[1]))
    sklearn_ms = _median_ms(lambda: log_loss(y, p / p.sum(1, keepdims=True), labels=labels))
    ours = benchmark.pedantic(val_log_loss, args=(y, p), rounds=REPEATS, iterations=1, warmup_rounds=1)
    assert ours == pytest.approx(log_loss(y, p / p.sum(1, keepdims=True), labels=labels), rel=1e-9)
    ours_ms = benchmark.stats.stats.median * 1e3
    record_info(kind="greedy_loss", model="ensemble", dataset="bloodmnist", size=28, device="cpu",
                device_name=device_name(torch.device("cpu")), precision="fp64", batch_size=len(y), images=len(y),
                sklearn_ms=sklearn_ms, ours_ms=ours_ms, ratio=ours_ms / sklearn_ms)
    with capsys.disabled():
        print(f"\ngreedy log-loss on {len(y)} val images x 8 classes: val_log_loss {ours_ms:.3f} ms, "
              f"sklearn log_loss {sklearn_ms:.3f} ms, ratio {ours_ms / sklearn_ms:.3f}")
