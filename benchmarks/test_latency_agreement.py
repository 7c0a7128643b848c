"""Does ``measure_latency`` agree with ``torch.utils.benchmark.Timer`` on the same model and input?

A cross-check of our timing loop (warm-up, inference_mode, per-call timing, thread pinning)
against torch's reference harness. Both run on one thread, alternately and back to back, so
they share whatever else the machine is doing; the ratio of medians goes into the entry's
``extra_info`` (kind ``latency_agreement``, which the leaderboard does not ingest), with
``RATIO_BOUNDS``, the range a quiet machine stays in, and ``within_bounds``. A benchmark records
figures: on a busy machine the ratio may leave the range, and that is a figure, not a failure.
Whether ``measure_latency`` times what it should (units, per call, warm-up left out, threads) is
checked in tests/test_latency_method.py on a fake clock, which holds under any load.

Also runnable as a script: ``python benchmarks/test_latency_agreement.py [model] [size]``.
"""

from __future__ import annotations

import sys

import torch
import torch.utils.benchmark as tbench

from bloodbench.profile.record import build_model
from bloodbench.profile.timing import make_input, measure_latency
from bloodbench.runtime.envinfo import device_name

DEFAULT_MODEL = "baseline_cnn"
DATASET = "bloodmnist"
RATIO_BOUNDS = (0.67, 1.5)


def latency_ratio(name: str = DEFAULT_MODEL, size: int = 28, device: str = "cpu", threads: int = 1,
                  repeats: int = 3) -> dict:
    """Median of ours / median of Timer, alternating the two ``repeats`` times to share drift."""
    model, ds = build_model(name, DATASET, size, device)
    x = make_input((1, ds.n_channels, size, size), device)

    def call():
        with torch.inference_mode():
            model(x)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    ours, theirs = [], []
    for _ in range(repeats):
        ours.append(measure_latency(model, tuple(x.shape), device, warmup=5, iters=30, threads=threads).p50_ms)
        timer = tbench.Timer(stmt="call()", globals={"call": call}, num_threads=threads)
        theirs.append(timer.blocked_autorange(min_run_time=0.5).median * 1e3)
    ours_ms = sorted(ours)[len(ours) // 2]
    timer_ms = sorted(theirs)[len(theirs) // 2]
    return {"model": name, "size": size, "device": device, "threads": threads, "ours_p50_ms": ours_ms,
            "timer_median_ms": timer_ms, "ratio": ours_ms / timer_ms}


def test_measure_latency_agrees_with_torch_timer(benchmark, record_info, plan, capsys):
    """The timed function is the whole comparison (run once); its figures are in extra_info."""
    r = benchmark.pedantic(latency_ratio, kwargs={"device": plan.device.type}, rounds=1, iterations=1)
    record_info(kind="latency_agreement", model=r["model"], dataset=DATASET, size=r["size"], device=r["device"],
                device_name=device_name(plan.device), precision="fp32", batch_size=1, threads=r["threads"],
                ours_p50_ms=r["ours_p50_ms"], timer_median_ms=r["timer_median_ms"], ratio=r["ratio"],
                ratio_bounds=list(RATIO_BOUNDS), within_bounds=RATIO_BOUNDS[0] < r["ratio"] < RATIO_BOUNDS[1])
    with capsys.disabled():
        print(f"\nlatency agreement {r['model']} {r['size']}px {r['device']}, {r['threads']} thread(s): "
              f"measure_latency p50 {r['ours_p50_ms']:.3f} ms / Timer median {r['timer_median_ms']:.3f} ms "
              f"= {r['ratio']:.3f}" + ("" if RATIO_BOUNDS[0] < r["ratio"] < RATIO_BOUNDS[1] else
                                       f" (outside {RATIO_BOUNDS}: a busy machine?)"))


if __name__ == "__main__":
    args = sys.argv[1:]
    result = latency_ratio(args[0] if args else DEFAULT_MODEL, int(args[1]) if len(args) > 1 else 28,
                           "cuda" if torch.cuda.is_available() else "cpu")
    print(result)
