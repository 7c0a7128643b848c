"""Training-step speed per setting: fp32 NCHW, channels_last, bf16 autocast, both, and torch.compile.

What the per-device training defaults rest on (issue 19: bf16 autocast + channels_last in every
recipe, fp32 for the depthwise nets whose bf16 step is slower on CPU). One entry per model and
setting, kind ``train_setting``; ``extra_info`` carries the step's median ms, its ``ratio`` =
fp32-NCHW step / this step (speed-up, > 1 is faster) and, for ``compile``, the compile time and an
epoch's step time with the compile time spread over one epoch of BloodMNIST's 11,959 training
images (``epoch_ratio``): a compile that costs more than it saves within one epoch is no default.

bf16 runs only where the device has bf16 arithmetic (a CPU with avx512_bf16 or AMX, a GPU with
bf16); elsewhere autocast emulates it and the entry is skipped. On CPU the quick mode times every
model at batch 128 with 2 threads (``--bb-threads``) and 3 rounds: about 10 minutes for all 12 on
2 cores, most of it densenet121 and torch.compile; ``--bb-models`` picks a subset.

    pytest benchmarks/test_train_settings.py --bb-threads 2 --benchmark-json train_settings.json
"""

from __future__ import annotations

import time

import pytest
import torch

from bloodbench.profile.record import build_model
from bloodbench.profile.timing import make_input
from bloodbench.runtime.backend import backend_flags, gc_disabled
from bloodbench.runtime.envinfo import device_name
from bloodbench.train.step import train_step

DATASET = "bloodmnist"
BATCH = 128                      # the recipes' batch size
TRAIN_IMAGES = 11_959            # BloodMNIST's training split
SETTINGS = {                     # name -> (precision, channels_last, compile)
    "fp32": ("fp32", False, False),
    "channels_last": ("fp32", True, False),
    "bf16": ("bf16", False, False),
    "bf16_channels_last": ("bf16", True, False),
    "compile": ("fp32", False, True),
}
_FP32_MS: dict[tuple[str, str], float] = {}  # (model, device) -> the fp32 NCHW step, for the ratios


def _has_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def _step_fn(model, x, y, precision: str, device: torch.device):
    """The trainer's own step (``train_step``): AdamW, autocast forward, fp32 loss, clipping as in the recipes."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")

    def step() -> None:
        train_step(model, x, y, opt, scaler, device, precision, grad_clip=5.0)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return step


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_train_setting(benchmark, record_info, plan, model_name, setting):
    device, size = plan.device, 28
    precision, channels_last, compiled = SETTINGS[setting]
    if precision == "bf16" and not _has_bf16(device):
        pytest.skip(f"{device_name(device)} has no bf16 arithmetic: autocast would emulate it")
    model, ds = build_model(model_name, DATASET, size, device)
    model.train()
    x = make_input((BATCH, ds.n_channels, size, size), device, channels_last)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    y = torch.arange(BATCH, device=device) % ds.n_classes
    compile_s = None
    with backend_flags(cudnn_benchmark=True, allow_tf32=False):
        if compiled:
            model = torch.compile(model)
        step = _step_fn(model, x, y, precision, device)
        t0 = time.perf_counter()
        step()  # first call: lazy init, autotune, and for ``compile`` the compilation itself
        first_s = time.perf_counter() - t0
        step()
        with gc_disabled():
            benchmark.pedantic(step, rounds=3 if not plan.full else 10, iterations=1, warmup_rounds=0)
        stats = getattr(getattr(benchmark, "stats", None), "stats", None)
        if stats is None:  # --benchmark-disable: the step ran once, nothing was timed
            return
        step_ms = stats.median * 1e3
        if compiled:
            compile_s = max(0.0, first_s - step_ms / 1e3)
    key = (model_name, device.type)
    if setting == "fp32":
        _FP32_MS[key] = step_ms
    fp32_ms = _FP32_MS.get(key)
    steps_per_epoch = -(-TRAIN_IMAGES // BATCH)
    epoch_s = steps_per_epoch * step_ms / 1e3 + (compile_s or 0.0)
    record_info(
        kind="train_setting", model=model_name, dataset=DATASET, size=size, device=device.type,
        device_name=device_name(device), precision=precision, batch_size=BATCH, setting=setting,
        channels_last=channels_last, compiled=compiled, threads=torch.get_num_threads(), step_ms=step_ms,
        ratio=fp32_ms / step_ms if fp32_ms else None, compile_s=compile_s, epoch_s=epoch_s,
        epoch_ratio=(steps_per_epoch * fp32_ms / 1e3) / epoch_s if fp32_ms else None,
    )
