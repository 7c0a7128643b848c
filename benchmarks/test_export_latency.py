"""Batch-1 CPU latency of an exported file (ONNX through onnxruntime, TorchScript) against the eager
model it came from: the published weights with their preprocessing (``profile/export.py``'s
``Deployed``), both timed by ``measure_latency`` alternately, so they share the machine's noise.

The ratio exported / eager p50 goes into ``extra_info`` (kind ``export_latency``, which the
leaderboard does not ingest); nothing is asserted about it: it is a measurement, not a test.
Also runnable as a script: ``python benchmarks/test_export_latency.py [onnx|torchscript]``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest
import torch

from bloodbench.models.weights import read_manifest
from bloodbench.profile.export import Deployed, batch1_latency, export_file, load_exported, onnxruntime_available
from bloodbench.runtime.envinfo import device_name
from bloodbench.train.trained import load_trained

MODELS = [e["model"] for e in read_manifest()]


def export_ratio(name: str, fmt: str, threads: int = 1, rounds: int = 3) -> dict:
    trained = load_trained(name, "published")
    deployed = Deployed(trained.model, trained.norm.mean, trained.norm.std).eval()
    size = int(trained.size or 28)
    shape = (trained.in_channels, size, size)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.{fmt}"
        export_file(deployed, fmt, out, torch.rand(2, *shape))
        lat = batch1_latency(deployed, load_exported(out, fmt), shape, threads, rounds, 1.0, 0.2)
    return {"model": name, "size": size, "format": fmt, "threads": threads, "eager_p50_ms": lat["eager"]["p50_ms"],
            "exported_p50_ms": lat["exported"]["p50_ms"], "ratio": lat["p50_ratio"]}


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("name", MODELS)
def test_export_latency(name, fmt, benchmark, record_info, capsys):
    if fmt == "onnx" and not onnxruntime_available():
        pytest.skip("onnxruntime is not installed")
    r = benchmark.pedantic(export_ratio, args=(name, fmt), kwargs={"threads": torch.get_num_threads()},
                           rounds=1, iterations=1)
    record_info(kind="export_latency", model=name, dataset="bloodmnist", size=r["size"], device="cpu",
                device_name=device_name(torch.device("cpu")), precision="fp32", batch_size=1, format=fmt,
                threads=r["threads"], eager_p50_ms=r["eager_p50_ms"], exported_p50_ms=r["exported_p50_ms"],
                ratio=r["ratio"])
    with capsys.disabled():
        print(f"\n{name} {fmt}, batch 1, {r['threads']} thread(s): exported p50 {r['exported_p50_ms']:.3f} ms / "
              f"eager {r['eager_p50_ms']:.3f} ms = {r['ratio']:.2f}")


if __name__ == "__main__":
    for fmt in sys.argv[1:] or ["onnx", "torchscript"]:
        for name in MODELS:
            print(export_ratio(name, fmt))
