"""Does ``measure_latency`` agree with ``torch.utils.benchmark.Timer`` on the same model and input?

A cross-check of our timing loop (warm-up, inference_mode, per-call timing, thread pinning)
against torch's reference harness. Not a pytest-benchmark entry (no ``benchmark`` fixture),
so it adds nothing to the benchmark JSON the leaderboard ingests. The bound is loose on
purpose: it catches unit or loop bugs (x1000, timing the launch only), not machine noise.

Also runnable as a script: ``python benchmarks/test_latency_agreement.py [model] [size]``.
"""

from __future__ import annotations

import sys

import torch
import torch.utils.benchmark as tbench

from bloodbench.data import dataset_info
from bloodbench.models import create_model
from bloodbench.profile.timing import make_input, measure

DEFAULT_MODEL = "baseline_cnn"


def latency_ratio(name: str = DEFAULT_MODEL, size: int = 28, device: str = "cpu", threads: int = 1,
                  repeats: int = 3) -> dict:
    """Median of ours / median of Timer, alternating the two ``repeats`` times to share drift."""
    ds = dataset_info("bloodmnist", size)
    torch.manual_seed(0)
    model = create_model(name, in_channels=ds.n_channels, num_classes=ds.n_classes).to(device).eval()
    x = make_input((1, ds.n_channels, size, size), device)

    def call():
        with torch.inference_mode():
            model(x)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    ours, theirs = [], []
    for _ in range(repeats):
        ours.append(measure(model, tuple(x.shape), device, warmup=5, iters=30, threads=threads).p50_ms)
        timer = tbench.Timer(stmt="call()", globals={"call": call}, num_threads=threads)
        theirs.append(timer.blocked_autorange(min_run_time=0.5).median * 1e3)
    ours_ms = sorted(ours)[len(ours) // 2]
    timer_ms = sorted(theirs)[len(theirs) // 2]
    return {"model": name, "size": size, "device": device, "threads": threads, "ours_p50_ms": ours_ms,
            "timer_median_ms": timer_ms, "ratio": ours_ms / timer_ms}


def test_measure_latency_agrees_with_torch_timer(capsys):
    device = "cuda" if torch.cuda.is_available() else "cpu"
    r = latency_ratio(device=device)
    with capsys.disabled():
        print(f"\nlatency agreement {r['model']} {r['size']}px {device}, {r['threads']} thread(s): "
              f"measure_latency p50 {r['ours_p50_ms']:.3f} ms / Timer median {r['timer_median_ms']:.3f} ms "
              f"= {r['ratio']:.3f}")
    assert 1 / 3 < r["ratio"] < 3


if __name__ == "__main__":
    args = sys.argv[1:]
    result = latency_ratio(args[0] if args else DEFAULT_MODEL, int(args[1]) if len(args) > 1 else 28,
                           "cuda" if torch.cuda.is_available() else "cpu")
    print(result)
