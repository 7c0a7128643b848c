"""``bloodbench export``: the exported file, run on its own (onnxruntime, torch.jit), gives PyTorch's
probabilities to 1e-4 on real test images; the JSON beside it records the check and, when measured,
the batch-1 CPU latency of both (only its presence is checked here: speed goes to benchmarks/)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from bloodbench.cli import main

N = 300  # test images compared


@pytest.fixture(scope="module")
def reference(blood):
    """The published model's fp32 probabilities on the first N test images, through the predict path."""
    from bloodbench.data.medmnist_data import Split
    from bloodbench.train.predict import predict
    from bloodbench.train.trained import load_trained

    trained = load_trained("baseline_cnn", "published")
    split = blood["test"]
    few = Split(split.images[:N], split.labels[:N])
    return predict(trained.model, few, trained.norm, torch.device("cpu"), 512, "fp32", False), few.images


def test_onnx_matches_pytorch_through_onnxruntime(tmp_path, real_data_dir, reference, capsys):
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "m.onnx"
    assert main(["export", "baseline_cnn", "--weights", "published", "--format", "onnx", "--out", str(out),
                 "--data-dir", str(real_data_dir), "--check-images", str(N), "--no-latency"]) == 0
    assert "outputs match PyTorch on 300 test images" in capsys.readouterr().out
    expected, images = reference
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(["probabilities"], {"images": images.float().div(255).numpy()})[0]
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    assert (got.argmax(1) == expected.argmax(1)).all()
    doc = json.loads((tmp_path / "m.onnx.json").read_text())
    assert doc["check"]["max_abs_diff"] <= 1e-4 and doc["check"]["images"] == N
    assert doc["run_id"] and "latency_batch1_cpu" not in doc


def test_torchscript_matches_pytorch_and_records_latency(tmp_path, real_data_dir, reference, capsys):
    out = tmp_path / "m.pt"
    assert main(["export", "baseline_cnn", "--format", "torchscript", "--out", str(out),
                 "--data-dir", str(real_data_dir), "--check-images", "64", "--rounds", "1", "--threads", "1"]) == 0
    said = capsys.readouterr().out
    assert "batch-1 CPU latency p50: exported" in said
    expected, images = reference
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.load(str(out)).eval()
    with torch.no_grad():
        got = module(images.float().div(255)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    lat = json.loads((tmp_path / "m.pt.json").read_text())["latency_batch1_cpu"]
    for side in ("eager", "exported"):
        assert lat[side]["batch_size"] == 1 and lat[side]["threads"] == 1 and lat[side]["p50_ms"] > 0


def test_export_refusals(tmp_path, capsys):
    assert main(["export", "vgg11", "--format", "onnx", "--out", str(tmp_path / "v.onnx")]) == 2
    assert "no published weights for vgg11" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: --format is required, one of two
        main(["export", "baseline_cnn", "--format", "tflite", "--out", str(tmp_path / "x")])
    assert "invalid choice" in capsys.readouterr().err
