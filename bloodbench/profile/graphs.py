"""The launch-free setting: a forward pass captured once as a CUDA graph and replayed.

At 28 px every registry model is launch-bound on a GPU: eager latency measures Python and
kernel-launch overhead (batch 1 costs what batch 64 does). Replaying a captured
``torch.cuda.CUDAGraph`` issues the whole forward as one launch, so its time is the device's.
A profile with ``cuda_graphs=True`` is its own setting (own config hash and run id) beside
the eager one, which stays the deployed, launch-bound figure.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from bloodbench.errors import BloodbenchError

#: Warm-up forwards on a side stream before capture (cudnn autotune, lazy init, allocator).
CAPTURE_WARMUP = 3


def check_cuda_graphs(cuda_graphs: bool, device: torch.device | str) -> None:
    """Refuse the graphs setting where there is no GPU to replay on, before any work."""
    if cuda_graphs and torch.device(device).type != "cuda":
        raise BloodbenchError("--cuda-graphs needs a CUDA device (it replays a captured GPU graph): "
                              "use --device cuda, or drop --cuda-graphs on cpu")


def graphed_forward(model: nn.Module, x: torch.Tensor,
                    warmup: int = CAPTURE_WARMUP) -> Callable[[], torch.Tensor]:
    """Capture ``model(x)`` on the static input ``x``; return a call that replays it.

    Call it inside the inference and autocast context the replay is measured under, with
    autocast's cache off (``cache_enabled=False``), as torch's CUDA-graphs notes require.
    Warm-up runs on a side stream, as ``torch.cuda.graphs`` recommends before capture.
    """
    device = x.device
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(max(1, warmup)):
            model(x)
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = model(x)

    def replay() -> torch.Tensor:
        graph.replay()
        return out

    replay.graph = graph  # keep the graph (and its memory pool) alive as long as the call
    return replay
