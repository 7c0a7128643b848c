"""Profiling correctness: counts against formulas and torchvision's metadata, record/CLI plumbing.

No timing assertions here (the machine is shared); latency-vs-Timer agreement lives in
benchmarks/test_latency_agreement.py.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from torch import nn

from bloodbench.cli import main
from bloodbench.errors import BloodbenchError
from bloodbench.profile import (
    ProfileConfig,
    cost_breakdown,
    count_macs,
    flopcounter_flops,
    measure_latency,
    measure_throughput,
    model_size_mib,
    profile_model,
    record,
    timing,
)
from bloodbench.profile.torchvision_check import (
    FILE_SIZE_TOLERANCE,
    TORCHVISION_MODELS,
    TOTAL_MACS_TOLERANCE,
    compare,
)
from bloodbench.profile.trace import worker_name
from bloodbench.store.results import ResultsStore
from bloodbench.store.schema import LATENCY_KEYS, LOAD_KEYS, PROFILE

pytestmark = pytest.mark.usefixtures("one_thread")


# -- counts vs published numbers -------------------------------------------------------------
@pytest.mark.parametrize("name", TORCHVISION_MODELS)
def test_torchvision_counts_match_published_metadata(name):
    """Params, MACs and weight size of torchvision models at 224 px against their weights' metadata.

    ``_ops`` (labelled GFLOPS) is GMACs of conv + linear only, rounded to 3 decimals: fvcore's
    conv + linear part must match it up to that rounding. fvcore's total also counts batch-norm
    (2 per element with affine), adaptive average pooling and upsampling, so it is higher by up
    to ~5% on BN-heavy small models (mobilenet_v3_small +4.6%, efficientnet_b0 +4.1%,
    densenet121 +1.1%, resnet18 +0.3%, vgg16 +0.0%). ``_file_size`` (labelled MB) is MiB of the
    .pth file; our state_dict MiB is at most FILE_SIZE_TOLERANCE (2%) below it, never above it:
    the file holds the same tensors plus pickle/zip framing (measured gap 0.0-0.8%).
    """
    c = compare(name)
    assert c.params == c.published_params
    rounding = 0.0005 + 1e-3 * c.published_gmacs
    assert abs(c.dense_gmacs - c.published_gmacs) <= rounding, c
    assert -rounding <= c.total_gmacs - c.published_gmacs <= c.published_gmacs * TOTAL_MACS_TOLERANCE + rounding, c
    assert -FILE_SIZE_TOLERANCE <= c.size_gap <= 0.0005 / c.published_file_mib, c  # 3-decimal rounding above


# -- hand-checkable counts -------------------------------------------------------------------
def test_conv_macs_equal_formula_and_flopcounter_is_twice():
    conv = nn.Conv2d(3, 8, kernel_size=3, padding=1)
    shape = (2, 3, 10, 10)
    expected = 2 * 8 * 10 * 10 * (3 * 3 * 3)  # outputs x (kernel volume x in_channels); bias not a MAC
    assert count_macs(conv, shape) == expected
    assert flopcounter_flops(conv, shape) == 2 * expected


def test_linear_macs_equal_formula_and_flopcounter_is_twice():
    lin = nn.Linear(20, 7)
    assert count_macs(lin, (4, 20)) == 4 * 20 * 7
    assert flopcounter_flops(lin, (4, 20)) == 2 * 4 * 20 * 7


def test_cost_breakdown_fields_and_model_size():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 6 * 6, 5))
    model[0].weight.requires_grad_(False)
    c = cost_breakdown(model, (1, 3, 8, 8))
    conv_macs, lin_macs = 4 * 6 * 6 * 27, 4 * 6 * 6 * 5
    assert c.by_operator["conv"] == conv_macs and c.by_operator["linear"] == lin_macs
    assert c.flops == 2 * c.macs
    assert c.macs_flopcounter == conv_macs + lin_macs
    assert 0 < c.macs_disagreement < 0.1 and not c.disagreement_flagged  # BN counted by fvcore only
    assert c.params == 108 + 8 + 725 and c.trainable_params == 8 + 725
    # state_dict = params + BN running mean/var (float32) + num_batches_tracked (int64)
    assert model_size_mib(model) == pytest.approx(((108 + 8 + 725 + 8) * 4 + 8) / 2**20)
    assert {m["module"] for m in c.top_modules} == {"0", "1", "4"}
    assert c.top_modules[0] == {"module": "0", "macs": conv_macs}
    assert c.activations > 0
    assert c.peak_memory_mb >= c.model_size_mb and c.peak_memory_method


class _Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return self.fc(x) * torch.sigmoid(x)


def test_unsupported_ops_are_collected_not_printed(capsys, caplog):
    with caplog.at_level(logging.DEBUG):
        c = cost_breakdown(_Gated(), (2, 8), memory=False)
    assert c.unsupported_ops == {"aten::mul": 1, "aten::sigmoid": 1}
    assert c.macs == 2 * 8 * 8
    out, err = capsys.readouterr()
    assert out == "" and err == ""
    assert not [r for r in caplog.records if r.name.startswith("fvcore") and r.levelno >= logging.WARNING]
    assert "aten::sigmoid x1" in c.summary()


# -- timing ----------------------------------------------------------------------------------
def test_measure_latency_times_rounds_of_iters_and_reports_the_median_round():
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
    lat = measure_latency(model, (3, 16), warmup=2, iters=6, rounds=4, warmup_s=0.0, threads=1).as_dict()
    assert lat["n"] == 24 and lat["rounds"] == 4 and len(lat["rounds_p50_ms"]) == 4 and lat["batch_size"] == 3
    assert lat["p50_ms"] == pytest.approx(float(np.median(lat["rounds_p50_ms"])))
    assert lat["rounds_spread"] == pytest.approx(max(lat["rounds_p50_ms"]) / min(lat["rounds_p50_ms"]))
    assert lat["noisy"] == (lat["rounds_spread"] > 1.10)
    assert lat["device"] == "cpu" and lat["precision"] == "fp32" and lat["threads"] == 1
    assert lat["method"] == "per_call_median_of_rounds" and lat["cuda_graphs"] is False


def test_measure_latency_bf16_runs_and_threads_are_restored():
    torch.set_num_threads(1)
    lat = timing.measure_latency(nn.Conv2d(3, 4, 3), (1, 3, 8, 8), precision="bf16", warmup=1, iters=3, threads=2,
                                 rounds=1, warmup_s=0.0)
    assert lat.precision == "bf16" and lat.n == 3 and lat.threads == 2 and "p50" in str(lat)
    assert torch.get_num_threads() == 1


def test_fp16_on_cpu_is_a_clear_error():
    with pytest.raises(BloodbenchError, match="fp16"):
        measure_latency(nn.Linear(2, 2), (1, 2), precision="fp16")
    with pytest.raises(BloodbenchError, match="precision"):
        measure_latency(nn.Linear(2, 2), (1, 2), precision="int8")


def test_throughput_sweep_shape():
    rows = measure_throughput(nn.Conv2d(3, 4, 3), size=8, in_channels=3, batch_sizes=[2, 1], warmup=1,
                              min_iters=2, min_time_s=0.01)
    assert [r["batch_size"] for r in rows] == [1, 2]
    assert all(not r["oom"] and r["images_per_s"] > 0 for r in rows)


def _oom(*args, **kwargs):
    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")


def test_throughput_records_oom_and_goes_on(monkeypatch):
    """Batch 4 runs out of memory; 8 still runs (it may fit once the cache is freed) and nothing vanishes."""
    real = timing._sustained_rate
    freed = []

    def fake(m, shape, *args, **kwargs):
        return _oom() if shape[0] == 4 else real(m, shape, *args, **kwargs)

    monkeypatch.setattr(timing, "_sustained_rate", fake)
    monkeypatch.setattr(timing, "free_after_oom", freed.append)
    rows = measure_throughput(nn.Conv2d(3, 4, 3), size=8, batch_sizes=[1, 2, 4, 8], warmup=1, min_iters=1,
                              min_time_s=0.0)
    assert [(r["batch_size"], r["oom"]) for r in rows] == [(1, False), (2, False), (4, True), (8, False)]
    assert rows[2]["images_per_s"] is None and rows[3]["images_per_s"] > 0
    assert freed == [torch.device("cpu")]
    with pytest.raises(ValueError):  # only out-of-memory errors are recorded, the rest propagate
        timing.unless_oom(lambda: int("x"), "cpu")


# -- records and CLI -------------------------------------------------------------------------
def test_profile_model_writes_a_complete_record(tmp_path):
    cfg = ProfileConfig.build(size=28, device="cpu", batch_sizes=[1, 2], warmup=1, iters=5, rounds=2,
                              warmup_s=0.0, round_s=0.0, threads=1, min_time_s=0.02)
    rec = profile_model("baseline_cnn", cfg, results=tmp_path)
    df = ResultsStore(tmp_path).load("profile")
    assert len(df) == 1
    back = ResultsStore(tmp_path).records("profile")[0]
    for key in PROFILE:
        assert key in back, key
    assert back["run_id"] == f"baseline_cnn-bloodmnist-28-cpu-fp32-{back['config_hash']}"
    assert back["in_channels"] == 3 and back["num_classes"] == 8
    assert back["flops"] == 2 * back["macs"] and back["macs"] > 0
    assert set(back["latency"]) == set(LATENCY_KEYS) | set(LOAD_KEYS)
    assert back["latency"]["n"] == 10 and back["latency"]["threads"] == 1 and len(back["latency"]["rounds_p50_ms"]) == 2
    assert back["backend"] == {"cudnn_benchmark": True, "allow_tf32": False, "float32_matmul_precision": "highest",
                               "threads": 1}
    assert back["cuda_graphs"] is False and back["config"]["cuda_graphs"] is False
    assert [t["batch_size"] for t in back["throughput"]] == [1, 2]
    assert back["peak_throughput"] == max(t["images_per_s"] for t in back["throughput"])
    assert back["env"]["device"] == "cpu" and back["config"]["threads"] == 1
    assert back["env"]["fvcore"] and back["env"]["torchvision"]
    assert back["macs_disagreement_flagged"] is False and back["oom_stages"] == []
    assert "latency.p50_ms" in df.columns and "env.torch" in df.columns
    assert rec["run_id"] == back["run_id"]


def test_profile_records_out_of_memory_instead_of_crashing(tmp_path, monkeypatch):
    monkeypatch.setattr(record, "peak_forward_memory", _oom)
    monkeypatch.setattr(record, "measure_latency", _oom)
    cfg = ProfileConfig.build(device="cpu", batch_size=4, batch_sizes=[1], warmup=1, iters=2, threads=1,
                              min_time_s=0.01, warmup_s=0.0)
    rec = profile_model("baseline_cnn", cfg, results=tmp_path)
    assert rec["oom_stages"] == ["memory", "latency"]
    assert rec["peak_memory_mb"] is None and rec["peak_memory_method"] is None
    lat = {k: v for k, v in rec["latency"].items() if k not in LOAD_KEYS}
    assert lat == {**dict.fromkeys(LATENCY_KEYS), "batch_size": 4, "threads": 1}
    assert rec["macs"] > 0 and rec["throughput"][0]["images_per_s"] > 0
    assert ResultsStore(tmp_path).records("profile")[0]["oom_stages"] == ["memory", "latency"]


def test_cli_notes_out_of_memory_and_labels_mib(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(record, "measure_latency", _oom)
    rc = main(["profile", "baseline_cnn", "--no-save", "--batch-sizes", "1", "--iters", "2", "--warmup", "1",
               "--threads", "1", "--warmup-s", "0"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "peak mem MiB" in out and "peak mem MB" not in out
    assert "note: baseline_cnn: out of memory in latency: no figure recorded there" in out


def test_cli_profile_with_trace(tmp_path, capsys):
    res, traces = tmp_path / "res", tmp_path / "traces"
    rc = main(["profile", "baseline_cnn", "--results", str(res), "--batch-sizes", "1,4", "--iters", "5",
               "--warmup", "1", "--threads", "1", "--trace", "--trace-dir", str(traces), "--warmup-s", "0",
               "--rounds", "2"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "baseline_cnn" in out and "MACs (M)" in out and "p99 ms" in out
    assert len(ResultsStore(res).records("profile")) == 1
    run = traces / "baseline_cnn"
    tb = list(run.glob("*.pt.trace.json"))
    assert len(tb) == 1
    assert "traceEvents" in json.loads(tb[0].read_text())
    plain = [p for p in run.glob("*.json") if not p.name.endswith(".pt.trace.json")]
    assert len(plain) == 1 and "traceEvents" in json.loads(plain[0].read_text())
    top = (run / "28px-cpu-fp32.top_ops.md").read_text()
    assert "self CPU (ms)" in top and "aten::" in top


def test_trace_files_are_named_per_setting():
    cpu = torch.device("cpu")
    assert worker_name((1, 3, 28, 28), cpu, "fp32") == "28px-cpu-fp32"
    assert worker_name((8, 3, 64, 64), cpu, "bf16", channels_last=True, compile=True) == \
        "64px-cpu-bf16-channels_last-compiled"


@pytest.mark.parametrize("argv, needle", [
    (["profile", "baseline_cnn", "--precision", "fp16", "--device", "cpu"], "fp16"),
    (["profile", "no_such_model"], "unknown model"),
    (["profile", "baseline_cnn", "--batch-sizes", "1,x"], "--batch-sizes"),
    (["profile"], "no model"),
    (["profile", "baseline_cnn", "--cuda-graphs", "--device", "cpu"], "--cuda-graphs needs a CUDA device"),
    (["profile", "baseline_cnn", "--warmup-s", "-1"], "--warmup-s"),
])
def test_cli_bad_options_exit_2_with_one_line(argv, needle, capsys):
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse-level errors exit from the parser
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and needle in err and err.count("\n") == 1


def test_cli_cuda_without_cuda_is_an_error(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["profile", "baseline_cnn", "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "CUDA" in err and err.count("\n") == 1
