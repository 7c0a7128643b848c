"""Latency and throughput of a model's forward pass, measured the same way on CPU and CUDA.

Rules that make the numbers comparable: warm-up by time before timing (lazy init, cudnn
autotune, torch.compile, GPU clocks ramping up), ``torch.inference_mode()`` and autocast opened
once around the timed calls (:func:`inference_context`), GC off while timing, one fixed and
recorded CPU thread count, and on CUDA a synchronisation before each timed call plus CUDA events
around it, so a figure is the full latency of one request (launch overhead included) and never
just the launch time. The p50 is the median of several rounds' p50s; the rounds' spread says
whether the figure can be trusted (:mod:`bloodbench.profile.noise`).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence, TypeVar

import numpy as np
import torch
from torch import nn

from bloodbench.choices import DEFAULT_BATCH_SIZES, DEFAULT_ROUNDS, DEFAULT_WARMUP_S
from bloodbench.errors import BloodbenchError
from bloodbench.profile.graphs import check_cuda_graphs, graphed_forward
from bloodbench.profile.noise import NOISE_THRESHOLD, rounds_spread
from bloodbench.runtime.backend import cpu_threads, gc_disabled
from bloodbench.runtime.precision import autocast, check_precision

#: ``latency.method`` of figures from :func:`measure_latency` (benchmarks/ label theirs ``pytest_benchmark_rounds``).
MEASURE_METHOD = "per_call_median_of_rounds"
T = TypeVar("T")


_PREPARED = "_bloodbench_prepared"  # attribute prepare_model leaves on a model: (device, channels_last, compile)


@contextlib.contextmanager
def inference_context(device: torch.device | str, precision: str, cuda_graphs: bool = False) -> Iterator[None]:
    """Inference mode and autocast, opened once around many timed calls.

    The one way every latency figure (``bloodbench profile`` and benchmarks/) enters them, so a
    per-call context entry never makes one method dearer than the other.
    """
    with torch.inference_mode(), autocast(device, precision, cache_enabled=False if cuda_graphs else None):
        yield


def prepare_model(model: nn.Module, device: torch.device | str, channels_last: bool = False,
                  compile: bool = False) -> nn.Module:
    """Move to device, eval mode, optional channels_last and torch.compile (compiles lazily).

    A model this already prepared with the same options is returned as is, so latency and
    throughput can share one compiled model without a flag saying so.
    """
    device = torch.device(device)
    settings = (device, channels_last, compile)
    if getattr(model, _PREPARED, None) == settings and not model.training:
        return model
    model = model.to(device).eval()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if compile:
        model = torch.compile(model)
    setattr(model, _PREPARED, settings)
    return model


def make_input(shape: Sequence[int], device: torch.device | str, channels_last: bool = False) -> torch.Tensor:
    """Random normal input (zeros can hit fast paths some kernels have for them)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(tuple(shape), generator=gen).to(device)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def compiled_call(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as exc:
        name = type(exc).__module__ + "." + type(exc).__name__
        if "torch._dynamo" in name or "torch._inductor" in name or "BackendCompilerFailed" in name:
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else name
            raise BloodbenchError(f"torch.compile failed ({first}): run without --compile") from exc
        raise


# -- timing core ----------------------------------------------------------------------------
def _time_calls(fn: Callable[[], Any], n: int, device: torch.device) -> list[float]:
    """Seconds of each of ``n`` isolated calls: CUDA events after a sync on CUDA, perf_counter on CPU."""
    times = []
    if device.type == "cuda":
        for _ in range(n):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize(device)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
    else:
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return times


@dataclass
class LatencyMeasurement:
    """Per-call times of one setting, carrying its own statistics (cf. torch.utils.benchmark.Measurement)."""

    times_s: list[float] = field(repr=False)
    batch_size: int
    device: str
    precision: str
    threads: int
    channels_last: bool = False
    compile: bool = False
    warmup: int = 0
    #: Calls per round (``times_s`` is the rounds back to back); 0 = all calls are one round.
    round_size: int = 0
    warmup_s: float = 0.0
    cuda_graphs: bool = False
    method: str = MEASURE_METHOD

    def _ms(self) -> np.ndarray:
        return np.asarray(self.times_s, dtype=float) * 1e3

    def percentile_ms(self, q: float) -> float:
        """Percentile of every timed call, pooled over rounds (the tail, p90/p99)."""
        return float(np.percentile(self._ms(), q))

    @property
    def n(self) -> int:
        return len(self.times_s)

    @property
    def rounds(self) -> int:
        return max(1, self.n // self.round_size) if self.round_size else 1

    @property
    def rounds_p50_ms(self) -> list[float]:
        """Each round's own median, in the order the rounds ran."""
        ms = self._ms()
        size = self.round_size or self.n
        return [float(np.median(ms[i * size:(i + 1) * size])) for i in range(self.rounds)]

    @property
    def rounds_spread(self) -> float | None:
        return rounds_spread(self.rounds_p50_ms)

    @property
    def noisy(self) -> bool:
        """The rounds disagree by more than :data:`NOISE_THRESHOLD` (max/min of their p50s)."""
        spread = self.rounds_spread
        return spread is not None and spread > NOISE_THRESHOLD

    @property
    def p50_ms(self) -> float:
        """The median of the rounds' p50s: one slow round (another process, a clock dip) moves it least."""
        return float(np.median(self.rounds_p50_ms)) if self.rounds > 1 else self.percentile_ms(50)

    median_ms = p50_ms

    @property
    def p90_ms(self) -> float:
        return self.percentile_ms(90)

    @property
    def p99_ms(self) -> float:
        return self.percentile_ms(99)

    @property
    def mean_ms(self) -> float:
        return float(self._ms().mean())

    @property
    def std_ms(self) -> float:
        return float(self._ms().std(ddof=1)) if self.n > 1 else 0.0

    @property
    def images_per_s(self) -> float:
        """Per-request throughput at this batch size, from the median."""
        return self.batch_size / (self.p50_ms / 1e3) if self.p50_ms > 0 else math.inf

    def as_dict(self) -> dict[str, Any]:
        return {
            "p50_ms": self.p50_ms, "p90_ms": self.p90_ms, "p99_ms": self.p99_ms,
            "mean_ms": self.mean_ms, "std_ms": self.std_ms, "n": self.n,
            "batch_size": self.batch_size, "device": self.device, "precision": self.precision,
            "threads": self.threads, "channels_last": self.channels_last, "compile": self.compile,
            "warmup": self.warmup, "rounds": self.rounds, "rounds_p50_ms": self.rounds_p50_ms,
            "rounds_spread": self.rounds_spread, "noisy": self.noisy, "warmup_s": self.warmup_s,
            "cuda_graphs": self.cuda_graphs, "method": self.method,
        }

    def __str__(self) -> str:
        return (f"p50 {self.p50_ms:.3f} ms, p90 {self.p90_ms:.3f} ms, p99 {self.p99_ms:.3f} ms "
                f"(n={self.n}, batch {self.batch_size}, {self.device}, {self.precision}, {self.threads} threads)")


def warm_up(call: Callable[[], Any], min_calls: int, min_s: float, device: torch.device) -> int:
    """Call until at least ``min_calls`` calls (>= 1: compile happens on the first) and ``min_s``
    seconds have passed: the clocks, caches and autotuner settle by time, not by a call count."""
    n, t0 = 0, time.perf_counter()
    while n < max(1, min_calls) or time.perf_counter() - t0 < min_s:
        compiled_call(call)
        n += 1
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return n


def measure_latency(model: nn.Module, input_shape: Sequence[int], device: torch.device | str = "cpu",
                    precision: str = "fp32", warmup: int = 10, iters: int = 20, channels_last: bool = False,
                    compile: bool = False, threads: int | None = None, rounds: int = DEFAULT_ROUNDS,
                    warmup_s: float = DEFAULT_WARMUP_S, cuda_graphs: bool = False,
                    round_s: float = 0.0) -> LatencyMeasurement:
    """Per-call latency of ``model`` on a batch of ``input_shape`` (N, C, H, W); ``.as_dict()`` for a record.

    ``threads`` pins the CPU thread count (None keeps torch's current setting; either way
    the count used is recorded). Each call is timed on its own, so p99 is a real tail;
    ``rounds`` rounds of ``iters`` calls each give the p50 (median of the round p50s).
    ``cuda_graphs`` times the replay of a captured graph (:mod:`bloodbench.profile.graphs`).
    ``round_s`` > 0 raises the calls per round until a round lasts about that long (the per-call
    time is taken from the warm-up): 20 calls of a 1 ms model are 20 ms, too short to agree.
    """
    device = torch.device(device)
    check_precision(precision, device)
    check_cuda_graphs(cuda_graphs, device)
    if iters < 1 or warmup < 0 or rounds < 1 or warmup_s < 0 or round_s < 0:
        raise BloodbenchError(f"need iters >= 1, rounds >= 1, warmup >= 0, warmup_s >= 0 and round_s >= 0 "
                              f"(got {iters}, {rounds}, {warmup}, {warmup_s}, {round_s})")
    with cpu_threads(threads if device.type == "cpu" else None) as nthreads:
        m = prepare_model(model, device, channels_last, compile)
        x = make_input(input_shape, device, channels_last)
        with inference_context(device, precision, cuda_graphs):
            call = compiled_call(lambda: graphed_forward(m, x)) if cuda_graphs else (lambda: m(x))
            with gc_disabled():  # from before the warm-up: its collect() must not land in the first round
                t0 = time.perf_counter()
                n_warm = warm_up(call, warmup, warmup_s, device)
                per_call_s = (time.perf_counter() - t0) / n_warm
                if round_s > 0 and per_call_s > 0:
                    iters = max(iters, min(100_000, math.ceil(round_s / per_call_s)))
                times = _time_calls(call, iters * rounds, device)
    return LatencyMeasurement(times, int(input_shape[0]), device.type, precision, nthreads, channels_last, compile,
                              warmup, round_size=iters, warmup_s=float(warmup_s), cuda_graphs=cuda_graphs)


# -- out of memory --------------------------------------------------------------------------
def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def free_after_oom(device: torch.device | str) -> None:
    """Hand cached blocks back so the next, possibly smaller, allocation can fit."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()


def unless_oom(fn: Callable[[], T], device: torch.device | str) -> tuple[T | None, bool]:
    """``(fn(), False)``, or ``(None, True)`` if it ran out of memory; other errors propagate.

    One setting running out of memory is a result to record (the batch is too big for this
    device), not a reason to lose the figures of every other setting.
    """
    try:
        return fn(), False
    except Exception as exc:
        if not _is_oom(exc):
            raise
    free_after_oom(device)  # outside the except block: the traceback's tensors are released by now
    return None, True


# -- throughput -----------------------------------------------------------------------------
def measure_throughput(model: nn.Module, size: int, in_channels: int = 3,
                       batch_sizes: Sequence[int] | None = None, device: torch.device | str = "cpu",
                       precision: str = "fp32", channels_last: bool = False, compile: bool = False,
                       threads: int | None = None, warmup: int = 2, min_iters: int = 5,
                       min_time_s: float = 0.25,
                       progress: Callable[[int], None] | None = None,
                       cuda_graphs: bool = False) -> list[dict[str, Any]]:
    """Images/s over a batch-size sweep: ``[{batch_size, images_per_s, oom}]``, one row per size.

    Each batch size runs at least ``min_iters`` calls and ``min_time_s`` seconds (bounded
    calls back to back, one sync at the end: the sustained rate, not per-call latency).
    A CUDA out-of-memory error is recorded as ``oom: True`` (``images_per_s: None``) with the
    cache emptied, and the sweep goes on: a larger batch may still fit once the cache is freed,
    and no batch size asked for silently disappears from the result.
    """
    device = torch.device(device)
    check_precision(precision, device)
    check_cuda_graphs(cuda_graphs, device)
    if batch_sizes is None:
        batch_sizes = DEFAULT_BATCH_SIZES["cuda" if device.type == "cuda" else "cpu"]
    sizes = sorted(set(int(b) for b in batch_sizes))
    if sizes and sizes[0] < 1:
        raise BloodbenchError(f"batch sizes must be >= 1 (got {sizes[0]})")
    results: list[dict[str, Any]] = []
    with cpu_threads(threads if device.type == "cpu" else None):
        m = prepare_model(model, device, channels_last, compile)
        for bs in sizes:
            rate, oom = unless_oom(lambda: _sustained_rate(m, (bs, in_channels, size, size), device, precision,
                                                           channels_last, warmup, min_iters, min_time_s,
                                                           cuda_graphs), device)
            results.append({"batch_size": bs, "images_per_s": rate, "oom": oom})
            if progress:
                progress(bs)
    return results


def _sustained_rate(m: nn.Module, shape: tuple[int, ...], device: torch.device, precision: str,
                    channels_last: bool, warmup: int, min_iters: int, min_time_s: float,
                    cuda_graphs: bool = False) -> float:
    x = make_input(shape, device, channels_last)
    with inference_context(device, precision, cuda_graphs), gc_disabled():
        call = compiled_call(lambda: graphed_forward(m, x)) if cuda_graphs else (lambda: m(x))
        warm_up(call, warmup, 0.0, device)
        n, chunk = 0, max(1, min_iters)
        t0 = time.perf_counter()
        while True:  # back-to-back chunks, one sync per chunk, until min_time_s has passed
            for _ in range(chunk):
                call()
            n += chunk
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            elapsed = time.perf_counter() - t0
            if elapsed >= min_time_s:
                break
            chunk = min(2 * chunk, 1024)
    del x, call
    return shape[0] * n / elapsed


def peak_throughput(throughput: list[dict[str, Any]]) -> float | None:
    rates = [r["images_per_s"] for r in throughput if not r["oom"] and r["images_per_s"]]
    return max(rates) if rates else None
