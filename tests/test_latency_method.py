"""The latency method: backend flags, GC, time warm-up, rounds and noise, NVML, CUDA graphs.

CPU tests check the mechanics with fabricated times or patched clocks (no timing asserts);
the CUDA smoke tests at the end run on a GPU and skip cleanly without one.
"""

from __future__ import annotations

import gc
import sys
import types

import numpy as np
import pytest
import torch
from torch import nn

from bloodbench.cli import main
from bloodbench.config import ProfileConfig
from bloodbench.errors import BloodbenchError
from bloodbench.profile import record, timing
from bloodbench.profile.gpu_state import gpu_state
from bloodbench.profile.labels import latency_method_label, memory_method_label
from bloodbench.profile.noise import latency_warnings, rounds_spread
from bloodbench.profile.record import profile_model
from bloodbench.profile.timing import LatencyMeasurement, measure_latency
from bloodbench.runtime.backend import backend_flags, current_flags, gc_disabled

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def odd_flags():
    """Process flags set to what profiling would not choose, restored after the test."""
    saved = current_flags()
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    yield current_flags()
    torch.backends.cudnn.benchmark = saved["cudnn_benchmark"]
    torch.backends.cuda.matmul.allow_tf32 = saved["matmul_allow_tf32"]
    torch.backends.cudnn.allow_tf32 = saved["cudnn_allow_tf32"]
    torch.set_float32_matmul_precision(saved["float32_matmul_precision"])


# -- backend flags and GC ----------------------------------------------------------------------
def test_backend_flags_are_set_inside_and_restored_after_even_on_error(odd_flags):
    with backend_flags(cudnn_benchmark=True, allow_tf32=False, threads=2) as rec:
        assert rec == {"cudnn_benchmark": True, "allow_tf32": False, "float32_matmul_precision": "highest",
                       "threads": 2}
        assert torch.backends.cudnn.benchmark and not torch.backends.cuda.matmul.allow_tf32
        assert not torch.backends.cudnn.allow_tf32 and torch.get_num_threads() == 2
    assert current_flags() == odd_flags
    with pytest.raises(RuntimeError, match="boom"), backend_flags(allow_tf32=False, threads=2):
        raise RuntimeError("boom")
    assert current_flags() == odd_flags


def test_profiling_leaves_the_process_flags_as_it_found_them(odd_flags, tmp_path):
    cfg = ProfileConfig.build(device="cpu", batch_sizes=[1], warmup=1, iters=2, rounds=2, warmup_s=0.0,
                              threads=1, min_time_s=0.0)
    rec = profile_model("baseline_cnn", cfg, save=False)
    assert rec["backend"]["cudnn_benchmark"] is True and rec["backend"]["allow_tf32"] is False
    assert current_flags() == odd_flags


def test_gc_is_off_while_timing_and_back_on_after(monkeypatch):
    seen = []
    real = timing._time_calls
    monkeypatch.setattr(timing, "_time_calls", lambda fn, n, dev: seen.append(gc.isenabled()) or real(fn, n, dev))
    assert gc.isenabled()
    measure_latency(nn.Linear(4, 2), (1, 4), iters=2, rounds=2, warmup=0, warmup_s=0.0)
    assert seen == [False] and gc.isenabled()
    with pytest.raises(KeyError), gc_disabled():
        raise KeyError("x")
    assert gc.isenabled()


def test_warm_up_runs_by_time_not_only_by_count(monkeypatch):
    clock = iter(np.arange(0.0, 100.0, 0.25))  # every perf_counter() read advances 0.25 s
    monkeypatch.setattr(timing.time, "perf_counter", lambda: float(next(clock)))
    calls = []
    n = timing.warm_up(lambda: calls.append(1), min_calls=1, min_s=1.0, device=torch.device("cpu"))
    assert n == len(calls) == 4  # one read at start, one per loop check: 1.0 s reached after 4 calls
    assert timing.warm_up(lambda: None, min_calls=7, min_s=0.0, device=torch.device("cpu")) == 7


# -- rounds and noise --------------------------------------------------------------------------
def _lat(rounds_ms: list[list[float]]) -> LatencyMeasurement:
    times = [t / 1e3 for r in rounds_ms for t in r]
    return LatencyMeasurement(times, 1, "cpu", "fp32", 1, round_size=len(rounds_ms[0]))


def test_p50_is_the_median_of_round_p50s_not_of_pooled_calls():
    # two rounds disturbed (another process woke up): the pooled median moves to 2 ms, the median of rounds not
    lat = _lat([[1.0, 1.0, 9.0], [1.0, 1.0, 9.0], [2.0, 9.0, 9.0], [2.0, 9.0, 9.0], [1.0, 1.0, 9.0]])
    assert lat.rounds_p50_ms == pytest.approx([1.0, 1.0, 9.0, 9.0, 1.0])
    assert lat.p50_ms == pytest.approx(1.0) and lat.percentile_ms(50) == pytest.approx(2.0)
    assert lat.rounds_spread == pytest.approx(9.0) and lat.noisy
    assert lat.p99_ms == pytest.approx(9.0)  # the tail is still every call's
    quiet = _lat([[1.0, 1.02], [1.05, 1.05], [1.01, 1.01]])
    assert quiet.rounds_spread == pytest.approx(1.05 / 1.01) and not quiet.noisy
    single = LatencyMeasurement([0.001, 0.003], 1, "cpu", "fp32", 1)  # benchmarks: one round
    assert single.rounds == 1 and single.rounds_spread is None and not single.noisy
    assert single.p50_ms == pytest.approx(2.0)
    assert rounds_spread([2.0]) is None and rounds_spread([1.0, 2.0]) == 2.0


def test_noisy_rounds_and_a_loaded_machine_are_warned_about():
    noisy = {"noisy": True, "rounds_spread": 1.8, "rounds_p50_ms": [1.0, 1.8]}
    assert "rounds disagree" in latency_warnings(noisy, {"load_avg_1m": 0.1, "cpu_count": 2})[0]
    loaded = latency_warnings({"noisy": False, "rounds_spread": 1.01}, {"load_avg_1m": 5.5, "cpu_count": 2})
    assert len(loaded) == 1 and "load average 5.50 > 2 cores" in loaded[0]
    assert latency_warnings({"noisy": False, "rounds_spread": 1.01}, {"load_avg_1m": 1.5, "cpu_count": 2}) == []
    assert latency_warnings({"noisy": None, "load_avg_1m": None, "cpu_count": 2}) == []  # an old record


def test_profile_prints_a_warning_on_a_loaded_machine(monkeypatch, capsys):
    monkeypatch.setattr(record, "machine_load", lambda: {"load_avg_1m": 9.0, "cpu_count": 2})
    cfg = ProfileConfig.build(device="cpu", batch_sizes=[1], warmup=1, iters=2, rounds=2, warmup_s=0.0,
                              threads=1, min_time_s=0.0)
    rec = profile_model("baseline_cnn", cfg, save=False)
    err = capsys.readouterr().err
    assert "warning: baseline_cnn: machine is loaded (1-min load average 9.00 > 2 cores)" in err
    assert rec["latency"]["load_avg_1m"] == 9.0 and rec["latency"]["cpu_count"] == 2


# -- memory on the prepared model ----------------------------------------------------------------
def test_memory_is_measured_on_the_prepared_model(monkeypatch):
    seen = {}

    def fake_memory(model, shape, precision, channels_last):
        conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
        seen["channels_last"] = conv.weight.is_contiguous(memory_format=torch.channels_last)
        return 1.0, "fake"

    monkeypatch.setattr(record, "peak_forward_memory", fake_memory)
    cfg = ProfileConfig.build(device="cpu", batch_sizes=[1], warmup=1, iters=2, rounds=1, warmup_s=0.0,
                              threads=1, min_time_s=0.0, channels_last=True)
    rec = profile_model("baseline_cnn", cfg, save=False)
    assert seen == {"channels_last": True} and rec["peak_memory_mb"] == 1.0


def test_method_keys_have_readable_labels():
    from bloodbench.profile.memory import CPU_PEAK_METHOD

    assert memory_method_label(CPU_PEAK_METHOD).startswith("CPU allocator peak during one forward pass")
    assert memory_method_label(None) == "not measured" and memory_method_label("other") == "other"
    assert "median of the rounds" in latency_method_label("per_call_median_of_rounds")
    assert "one round" in latency_method_label(None)


# -- NVML ---------------------------------------------------------------------------------------
def _fake_pynvml(fail: bool = False) -> types.ModuleType:
    nvml = types.ModuleType("pynvml")
    nvml.NVML_CLOCK_SM, nvml.NVML_CLOCK_MEM, nvml.NVML_TEMPERATURE_GPU = 1, 2, 0
    calls = []

    def init():
        if fail:
            raise RuntimeError("NVML Shared Library Not Found")
        calls.append("init")

    nvml.nvmlInit = init
    nvml.nvmlShutdown = lambda: calls.append("shutdown")
    nvml.nvmlDeviceGetHandleByUUID = lambda uuid: ("handle", uuid)
    nvml.nvmlDeviceGetHandleByIndex = lambda i: ("handle", i)
    nvml.nvmlDeviceGetClockInfo = lambda h, kind: {1: 1980, 2: 2619}[kind]
    nvml.nvmlDeviceGetTemperature = lambda h, kind: 41
    nvml.nvmlDeviceGetPowerUsage = lambda h: 123456
    nvml.calls = calls
    return nvml


def test_gpu_state_reads_clocks_and_temperature_from_nvml(monkeypatch):
    assert gpu_state("cpu") == {}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: types.SimpleNamespace(uuid="abc"))
    fake = _fake_pynvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert gpu_state("cuda") == {"gpu_clocks_mhz": {"sm": 1980, "mem": 2619}, "gpu_temperature_c": 41,
                                 "gpu_power_w": 123.5}
    assert fake.calls == ["init", "shutdown"]
    monkeypatch.setitem(sys.modules, "pynvml", _fake_pynvml(fail=True))
    assert gpu_state("cuda") == {}  # no driver: nothing recorded, nothing raised
    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed
    assert gpu_state("cuda") == {}


# -- CUDA graphs ----------------------------------------------------------------------------------
def test_cuda_graphs_on_cpu_is_a_clear_error():
    with pytest.raises(BloodbenchError, match="--cuda-graphs needs a CUDA device"):
        measure_latency(nn.Linear(2, 2), (1, 2), cuda_graphs=True)
    with pytest.raises(BloodbenchError, match="--cuda-graphs"):
        profile_model("baseline_cnn", ProfileConfig.build(device="cpu", cuda_graphs=True), save=False)


class _Counting(nn.Linear):
    calls = 0

    def forward(self, x):
        type(self).calls += 1
        return super().forward(x)


def test_graphs_setting_times_the_replay_not_eager_calls(monkeypatch):
    """The capture itself needs a GPU; which call gets timed, and how often, does not."""
    replays = []

    def fake_capture(m, x):
        assert not torch.is_autocast_cache_enabled()  # torch's CUDA-graphs notes: capture without the cache
        return lambda: replays.append(tuple(x.shape))

    monkeypatch.setattr(timing, "check_cuda_graphs", lambda *a: None)
    monkeypatch.setattr(timing, "graphed_forward", fake_capture)
    _Counting.calls = 0
    lat = measure_latency(_Counting(4, 2), (2, 4), precision="bf16", iters=3, rounds=2, warmup=1, warmup_s=0.0,
                          cuda_graphs=True)
    assert _Counting.calls == 0 and replays == [(2, 4)] * (1 + 6)  # 1 warm-up + 2 rounds x 3 replays
    assert lat.cuda_graphs and lat.as_dict()["cuda_graphs"] is True
    replays.clear()
    rows = timing.measure_throughput(_Counting(4, 2), size=4, in_channels=1, batch_sizes=[1, 3], precision="bf16",
                                     warmup=1, min_iters=2, min_time_s=0.0, cuda_graphs=True)
    assert _Counting.calls == 0 and {s[0] for s in replays} == {1, 3} and all(r["images_per_s"] for r in rows)


def test_cuda_graphs_is_a_setting_of_its_own():
    eager, graphs = ProfileConfig.build(device="cpu"), ProfileConfig.build(device="cpu", cuda_graphs=True)
    assert graphs.as_dict()["cuda_graphs"] is True and eager.as_dict()["cuda_graphs"] is False
    assert eager.run_id("resnet18") != graphs.run_id("resnet18")


# -- CUDA smoke tests ------------------------------------------------------------------------------
@needs_cuda
@pytest.mark.parametrize("cuda_graphs", [False, True], ids=["eager", "graphs"])
def test_cuda_profile_smoke(tmp_path, cuda_graphs):
    cfg = ProfileConfig.build(device="cuda", batch_sizes=[1, 8], warmup=2, iters=5, rounds=3, warmup_s=0.1,
                              min_time_s=0.02, cuda_graphs=cuda_graphs)
    rec = profile_model("baseline_cnn", cfg, results=tmp_path)
    lat = rec["latency"]
    assert rec["device"] == "cuda" and rec["cuda_graphs"] is cuda_graphs and lat["cuda_graphs"] is cuda_graphs
    assert lat["p50_ms"] > 0 and len(lat["rounds_p50_ms"]) == 3 and rec["peak_memory_mb"] > 0
    assert rec["peak_memory_method"].startswith("cuda_") and all(r["images_per_s"] for r in rec["throughput"])
    assert rec["backend"]["cudnn_benchmark"] is True


@needs_cuda
def test_cuda_graph_replay_gives_the_eager_output():
    from bloodbench.profile.graphs import graphed_forward

    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 4)).cuda().eval()
    x = torch.randn(2, 3, 8, 8, device="cuda")
    with torch.inference_mode():
        expected = model(x).clone()
        replay = graphed_forward(model, x)
        assert torch.allclose(replay(), expected, atol=1e-5)


@needs_cuda
def test_cuda_cli_profile_bf16_and_graphs(tmp_path, capsys):
    rc = main(["profile", "resnet18", "--device", "cuda", "--precision", "bf16", "--cuda-graphs", "--batch-sizes",
               "1,8", "--iters", "5", "--rounds", "2", "--warmup-s", "0.1", "--results", str(tmp_path)])
    assert rc == 0 and "CUDA graphs (launch-free)" in capsys.readouterr().out


class _TwoMsClock(nn.Module):
    """A forward that takes exactly 2 ms of a fake clock, so the calls a round needs are known
    whatever the machine's load (a real sleep overshoots on a busy machine)."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0

    def forward(self, x):
        self.now += 0.002
        return x


def test_round_s_raises_the_calls_per_round_for_fast_models(monkeypatch):
    model = _TwoMsClock()
    monkeypatch.setattr(timing.time, "perf_counter", lambda: model.now)
    lat = measure_latency(model, (1, 2), iters=2, rounds=3, warmup=3, warmup_s=0.0, round_s=0.03)
    # 2 ms a call -> 15 calls fill a 30 ms round: far more than the 2 asked
    assert lat.round_size == 15 and lat.n == 45 and lat.rounds == 3
    assert lat.p50_ms == pytest.approx(2.0)
    exact = measure_latency(model, (1, 2), iters=2, rounds=3, warmup=1, warmup_s=0.0)
    assert exact.round_size == 2 and exact.n == 6  # round_s 0 (the default of direct calls): the count asked



class _SlowFirstCalls(_TwoMsClock):
    """3 slow first calls (50 ms: lazy init, cold caches), then 2 ms each; records the threads it ran on."""

    def __init__(self) -> None:
        super().__init__()
        self.calls, self.threads = 0, []

    def forward(self, x):
        self.calls += 1
        self.now += 0.050 if self.calls <= 3 else 0.002
        self.threads.append(torch.get_num_threads())
        return x


def test_measure_latency_times_each_call_in_ms_after_warm_up_on_the_threads_asked(monkeypatch):
    """What benchmarks/test_latency_agreement.py's ratio hints at, checked exactly and under any load:
    milliseconds, one figure per call, the warm-up calls left out, the thread count pinned and recorded."""
    model = _SlowFirstCalls()
    monkeypatch.setattr(timing.time, "perf_counter", lambda: model.now)
    before = torch.get_num_threads()
    lat = measure_latency(model, (1, 2), iters=5, rounds=2, warmup=3, warmup_s=0.0, threads=1)
    assert lat.n == 10 and model.calls == 13  # 3 warm-up calls, then 10 timed ones
    assert lat.p50_ms == pytest.approx(2.0) and lat.p99_ms == pytest.approx(2.0)  # no slow first call in it
    assert lat.threads == 1 and set(model.threads) == {1} and torch.get_num_threads() == before


def test_latency_agreement_benchmark_records_a_ratio_out_of_range_without_failing(monkeypatch, capsys):
    """On a loaded machine the ratio left its range (0.67 < 0.638) and `pytest benchmarks/` exited 1: a
    benchmark records the figure (extra_info), it does not fail on it."""
    import importlib.util
    import types
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "test_latency_agreement.py"
    spec = importlib.util.spec_from_file_location("bb_latency_agreement", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "latency_ratio", lambda **kw: {
        "model": "baseline_cnn", "size": 28, "device": "cpu", "threads": 1, "ours_p50_ms": 0.638,
        "timer_median_ms": 1.0, "ratio": 0.638})
    bench = types.SimpleNamespace(pedantic=lambda fn, kwargs, rounds, iterations: fn(**kwargs))
    info: dict = {}
    mod.test_measure_latency_agrees_with_torch_timer(bench, lambda **kw: info.update(kw),
                                                     types.SimpleNamespace(device=torch.device("cpu")), capsys)
    assert info["ratio"] == 0.638 and info["within_bounds"] is False and info["ratio_bounds"] == [0.67, 1.5]
