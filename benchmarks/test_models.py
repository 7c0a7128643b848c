"""Inference latency and one training step of every registry model, as pytest-benchmark entries.

The timed function synchronises CUDA itself, so a round is the full time of the work, not
the kernel launches. Rounds are fixed up front from one calibration call (``benchmark.pedantic``)
so the suite's duration is predictable: a few minutes on a 2-core CPU in the quick mode.

Same method as ``bloodbench profile`` wherever pytest-benchmark leaves the choice: the model goes
through ``prepare_model``, inference runs inside ``inference_context`` opened once around all
rounds (not per call), under the profile's backend flags (``backend_flags``: cudnn autotune on,
TF32 off) with GC off. What differs is labelled: each entry's ``latency_method`` is
``pytest_benchmark_rounds`` (one call per round, the p50 over all rounds) against the profile
record's ``latency.method`` ``per_call_median_of_rounds``.
"""

from __future__ import annotations

import contextlib
import time
from functools import lru_cache
from typing import Any, Callable

import pytest
import torch

from bloodbench.profile.counting import count_macs, count_params
from bloodbench.profile.record import build_model
from bloodbench.profile.timing import LatencyMeasurement, inference_context, make_input, prepare_model
from bloodbench.runtime.backend import backend_flags, gc_disabled
from bloodbench.runtime.envinfo import device_name
from bloodbench.train.step import train_step

DATASET = "bloodmnist"
#: ``latency_method`` of these entries (profile records: ``latency.method``, see bloodbench.profile.labels).
LATENCY_METHOD = "pytest_benchmark_rounds"


@lru_cache(maxsize=None)
def _costs(name: str, size: int) -> tuple[int, int]:
    """Params and per-image forward MACs (fvcore), counted once per model and size on CPU."""
    model, ds = build_model(name, DATASET, size)
    return count_params(model), count_macs(model, (1, ds.n_channels, size, size))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _run(benchmark, record_info, plan, fn: Callable[[], Any], kind: str, name: str, size: int, ds,
         batch: int, context: contextlib.AbstractContextManager | None = None) -> None:
    """Calibrate, then time ``fn`` in rounds inside ``context`` (entered once), the backend flags and GC off."""
    with backend_flags(cudnn_benchmark=True, allow_tf32=False) as backend, context or contextlib.nullcontext():
        _timed(benchmark, plan, fn, kind, size, batch)
    stats = getattr(benchmark, "stats", None)
    data = list(getattr(getattr(stats, "stats", None), "data", None) or [])  # seconds per round
    params, macs = _costs(name, size)
    record_info(
        kind=kind, model=name, dataset=DATASET, size=size, in_channels=ds.n_channels, num_classes=ds.n_classes,
        device=plan.device.type, device_name=device_name(plan.device), precision=plan.precision, batch_size=batch,
        params=params, macs=macs, flops=2 * macs, latency_method=LATENCY_METHOD, backend=backend,
        **_latency_info(data, batch, plan),
    )


def _timed(benchmark, plan, fn: Callable[[], Any], kind: str, size: int, batch: int) -> None:
    t0 = time.perf_counter()
    fn()  # warm: lazy init, cudnn autotune, allocator growth
    call_s = time.perf_counter() - t0
    if call_s < 0.5:  # a cold call over-estimates; re-time the cheap ones, keep the slow ones quick
        t0 = time.perf_counter()
        fn()
        call_s = time.perf_counter() - t0
    rounds = plan.rounds(call_s, kind)

    def setup():
        _sync(plan.device)  # no queued work from outside the round may leak into it

    benchmark.group = f"{kind}-{size}px-bs{batch}-{plan.device.type}-{plan.precision}"
    # the calibration call(s) above already warmed a slow call; more warm-up would only cost time
    warmup = plan.warmup_rounds if plan.full or call_s < 0.5 else 0
    with gc_disabled():
        benchmark.pedantic(fn, setup=setup, rounds=rounds, iterations=1, warmup_rounds=warmup)


def _latency_info(seconds: list[float], batch: int, plan) -> dict[str, float | None]:
    """Percentiles and images/s of the rounds, computed as profile records compute them."""
    if not seconds:  # --benchmark-disable: nothing was timed
        return dict.fromkeys(("p50_ms", "p90_ms", "p99_ms", "images_per_s"))
    lat = LatencyMeasurement(seconds, batch, plan.device.type, plan.precision, torch.get_num_threads(),
                             method=LATENCY_METHOD)
    return {"p50_ms": lat.p50_ms, "p90_ms": lat.p90_ms, "p99_ms": lat.p99_ms, "images_per_s": lat.images_per_s}


def test_inference(benchmark, record_info, plan, model_name, size, infer_batch):
    model, ds = build_model(model_name, DATASET, size, plan.device)
    model = prepare_model(model, plan.device)
    x = make_input((infer_batch, ds.n_channels, size, size), plan.device)

    def forward():
        model(x)
        _sync(plan.device)

    _run(benchmark, record_info, plan, forward, "inference", model_name, size, ds, infer_batch,
         context=inference_context(plan.device, plan.precision))


def test_train_step(benchmark, record_info, plan, model_name, size):
    model, ds = build_model(model_name, DATASET, size, plan.device)
    model.train()
    batch = plan.train_batch
    x = make_input((batch, ds.n_channels, size, size), plan.device)
    y = torch.arange(batch, device=plan.device) % ds.n_classes
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)  # small lr: stays finite over many rounds
    scaler = torch.amp.GradScaler(plan.device.type, enabled=plan.precision == "fp16")

    def step():  # the trainer's step (auxiliary losses included), without clipping
        train_step(model, x, y, opt, scaler, plan.device, plan.precision)
        _sync(plan.device)

    _run(benchmark, record_info, plan, step, "train_step", model_name, size, ds, batch)


@pytest.fixture(autouse=True)
def _free_device_memory(plan):
    yield
    if plan.device.type == "cuda":
        torch.cuda.empty_cache()
