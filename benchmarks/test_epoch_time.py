"""Training-loop overhead: a real epoch of the trainer against pure forward+backward+step.

The trainer's data path (uint8 tensors on the device, index batches, whole-batch
normalisation and augmentation) should cost little on top of the model's own compute;
``extra_info["ratio"]`` (target <= 1.10) is the figure to watch.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from bloodbench.data import load_dataset
from bloodbench.train import TrainConfig, Trainer

# Images per measured epoch: the whole training split on a GPU, a slice of it on 2 CPU cores
# (resnet18's CIFAR stem costs ~0.46 GMACs per 28 px image, 20x baseline_cnn).
CPU_IMAGES = {"baseline_cnn": 1024, "resnet18": 256}


@pytest.fixture(scope="module")
def blood():
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    return load_dataset("bloodmnist", 28, os.environ.get("BLOODBENCH_DATA_DIR") or shared)


def _device(request) -> str:
    opt = request.config.getoption("--bb-device", default="auto")
    return "cuda" if opt in ("auto", "cuda") and torch.cuda.is_available() else "cpu"


@pytest.mark.parametrize("model", ["baseline_cnn", "resnet18"])
def test_epoch_time_vs_pure_compute(benchmark, request, blood, model):
    device = _device(request)
    limit = None if device == "cuda" else CPU_IMAGES[model]
    cfg = TrainConfig.build(model, device=device, limit_train=limit, batch_size=128)
    trainer = Trainer(cfg, results=None, data=blood, progress=False)
    st = trainer.setup()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    # Pure compute: the same model, optimiser and batch size on batches built beforehand.
    batches = [(st.norm(x).contiguous(), y) for x, y in st.batches(torch.Generator(device=device).manual_seed(0))]

    def pure_epoch():
        st.model.train()
        for x, y in batches:
            loss = F.cross_entropy(st.model(x), y, label_smoothing=cfg.label_smoothing)
            st.opt.zero_grad(set_to_none=True)
            loss.backward()
            st.opt.step()
        sync()

    def loop_epoch():
        trainer.train_epoch(st, 0)
        sync()

    pure_epoch()  # warm-up (allocator, cudnn autotune)
    loop_epoch()
    rounds = 3
    pure = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        pure_epoch()
        pure.append(time.perf_counter() - t0)
    benchmark.pedantic(loop_epoch, rounds=rounds, iterations=1, warmup_rounds=0)
    loop_median = benchmark.stats.stats.median
    pure_median = sorted(pure)[len(pure) // 2]
    benchmark.extra_info.update({
        "kind": "epoch_time", "model": model, "dataset": "bloodmnist", "size": 28, "device": device,
        "device_name": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "images": len(st.batches) * cfg.batch_size, "batch_size": cfg.batch_size,
        "loop_epoch_s": loop_median, "pure_epoch_s": pure_median, "ratio": loop_median / pure_median,
    })
