"""The real benchmark suite, run for one small model, ends up as a leaderboard cost row.

Guards the contract between benchmarks/ (extra_info keys) and bloodbench.leaderboard
(``benchmark_frame``): a renamed key would otherwise only show as empty leaderboard cells.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest
import torch

from bloodbench.leaderboard import benchmark_frame, read_benchmark_json
from bloodbench.store.benchjson import MACHINE_KEYS

REPO = Path(__file__).resolve().parent.parent


@lru_cache(maxsize=1)
def _benchmarks_conftest():
    """benchmarks/conftest.py as a plain module, for its key lists and checker."""
    spec = importlib.util.spec_from_file_location("bb_benchmarks_conftest", REPO / "benchmarks" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


def _run_suite(out: Path, device: str, select: str = "test_inference", timeout: int = 120) -> Path:
    cmd = [sys.executable, "-m", "pytest", "benchmarks", "-k", select, "--bb-models", "baseline_cnn",
           "--bb-device", device, "--benchmark-json", str(out), "-p", "no:cacheprovider", "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def suite_json(tmp_path_factory) -> Path:
    """Inference of baseline_cnn at 28 px, batch 1, one CPU thread: the smallest real run of the suite."""
    return _run_suite(tmp_path_factory.mktemp("bench") / "out.json", "cpu")


def test_benchmark_json_becomes_a_leaderboard_row(suite_json):
    data = read_benchmark_json(suite_json)
    assert [b["extra_info"]["model"] for b in data["benchmarks"]] == ["baseline_cnn"]
    assert set(_benchmarks_conftest().EXTRA_INFO_KEYS) <= set(data["benchmarks"][0]["extra_info"])
    assert set(MACHINE_KEYS) <= set(data["machine_info"])  # the marks that tell the suite's files from foreign ones
    df = benchmark_frame([suite_json])
    assert len(df) == 1
    row = df.iloc[0]
    assert row["model"] == "baseline_cnn" and row["device"] == "cpu" and row["size"] == 28
    assert row["macs"] > 0 and row["params"] > 0 and row["flops"] == 2 * row["macs"]
    assert row["latency_p50_ms"] > 0 and row["throughput"] > 0
    assert row["throughput_batch_size"] == 1  # the quick suite measures batch 1 only, and the table says so
    extra = data["benchmarks"][0]["extra_info"]
    assert extra["latency_method"] == "pytest_benchmark_rounds"  # labelled apart from profile records' method
    assert extra["backend"]["cudnn_benchmark"] is True and extra["backend"]["allow_tf32"] is False


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_benchmark_suite_runs_on_cuda(tmp_path):
    """Inference, train step and the epoch-time ratio of baseline_cnn on the GPU."""
    out = _run_suite(tmp_path / "gpu.json", "cuda", "test_inference or test_train_step or test_epoch_time",
                     timeout=600)
    entries = [b["extra_info"] for b in read_benchmark_json(out)["benchmarks"]]
    assert {e["kind"] for e in entries} == {"inference", "train_step", "epoch_time"}
    assert all(e["device"] == "cuda" for e in entries)
    ratio = next(e for e in entries if e["kind"] == "epoch_time")
    assert ratio["ratio"] > 0 and ratio["pure_epoch_s"] > 0


def test_extra_info_missing_a_key_is_refused():
    conftest = _benchmarks_conftest()
    full = dict.fromkeys(conftest.EXTRA_INFO_KEYS, 1) | {"kind": "inference"}
    assert conftest.check_extra_info(full) is full
    with pytest.raises(ValueError, match="lacks p99_ms"):
        conftest.check_extra_info({k: v for k, v in full.items() if k != "p99_ms"})
    with pytest.raises(ValueError, match="kind 'latency'"):
        conftest.check_extra_info({**full, "kind": "latency"})
    assert json.dumps(conftest.KIND_KEYS)  # plain strings: the shape is data, not code
