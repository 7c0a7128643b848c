"""``bloodbench export``: a trained model as one ONNX or TorchScript file, preprocessing included.

The file computes what ``bloodbench predict`` does in fp32: images in [0, 1] (uint8 / 255),
float32 N×C×H×W, through the training normaliser and the model, to softmax probabilities
(input ``images``, output ``probabilities``; the batch dimension is dynamic). Its outputs are
checked against PyTorch's on real images (ONNX through onnxruntime, where installed), and its
batch-1 CPU latency is measured beside the eager model's, by :func:`measure_latency` for both.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from bloodbench.errors import BloodbenchError
from bloodbench.store.fsutil import atomic_write_bytes

FORMATS = ("onnx", "torchscript")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}
OPSET = 17
#: the largest |exported − eager| probability accepted
TOLERANCE = 1e-4


class Deployed(nn.Module):
    """Images in [0, 1] → the training normaliser → the model → softmax probabilities."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model((images - self.mean) / self.std), dim=1)


class OnnxModule(nn.Module):
    """An onnxruntime session behind ``nn.Module``'s call, so the same checks and timer take it."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input: images.detach().cpu().contiguous().numpy()})[0]
        return torch.from_numpy(out)


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def export_file(deployed: Deployed, fmt: str, out: Path, example: torch.Tensor) -> int:
    """Write ``deployed`` to ``out`` (atomically) as ``fmt``; returns the file's size in bytes."""
    if fmt not in FORMATS:
        raise BloodbenchError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    deployed = deployed.cpu().eval()
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracers' deprecation and tracer notes: the output check decides
        try:
            if fmt == "torchscript":
                torch.jit.save(torch.jit.trace(deployed, example), buf)
            else:
                torch.onnx.export(deployed, (example,), buf, dynamo=False, opset_version=OPSET,
                                  input_names=["images"], output_names=["probabilities"],
                                  dynamic_axes={"images": {0: "batch"}, "probabilities": {0: "batch"}})
        except Exception as exc:  # the exporters raise many types for an op they cannot express
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BloodbenchError(f"{fmt} export failed ({type(exc).__name__}: {msg[:200]})") from None
    data = buf.getvalue()
    atomic_write_bytes(out, data)
    return len(data)


def load_exported(path: Path, fmt: str) -> nn.Module | None:
    """The exported file as a module on CPU; None for ONNX without onnxruntime."""
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation note
            return torch.jit.load(str(path), map_location="cpu").eval()
    return OnnxModule(path) if onnxruntime_available() else None


@torch.inference_mode()
def max_difference(a: nn.Module, b: nn.Module, images01: torch.Tensor, batch_size: int = 256) -> float:
    """The largest |a(x) − b(x)| over ``images01``, in batches."""
    worst = 0.0
    for i in range(0, len(images01), batch_size):
        x = images01[i:i + batch_size]
        worst = max(worst, float(np.abs(a(x).float().numpy() - b(x).float().numpy()).max()))
    return worst


def batch1_latency(eager: nn.Module, exported: nn.Module, shape: Sequence[int], threads: int | None,
                   rounds: int, warmup_s: float, round_s: float) -> dict:
    """Batch-1 CPU latency (fp32) of both, measured alike; the ratio exported / eager p50."""
    from bloodbench.profile.timing import measure_latency

    kw = dict(device="cpu", precision="fp32", threads=threads, rounds=rounds, warmup_s=warmup_s, round_s=round_s)
    e = measure_latency(eager, (1, *shape), **kw)
    x = measure_latency(exported, (1, *shape), **kw)
    return {"eager": e.as_dict(), "exported": x.as_dict(),
            "p50_ratio": round(x.p50_ms / e.p50_ms, 4) if e.p50_ms > 0 else None}
