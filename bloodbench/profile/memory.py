"""Memory: the weights' size and the peak a forward pass holds, in MiB (2**20 bytes).

Record fields keep their historical ``_mb`` names (``model_size_mb``, ``peak_memory_mb``) so
committed records stay readable; their values are MiB.
"""

from __future__ import annotations

import torch
from torch import nn

from bloodbench.profile.common import eval_mode, model_device, quiet_kineto, zeros_input
from bloodbench.runtime.precision import autocast

MIB = 2**20


def model_size_mib(model: nn.Module) -> float:
    """Bytes of the state_dict (parameters *and* buffers, e.g. BN running stats) in MiB.

    This is what a checkpoint of the weights costs on disk/in memory, whatever the dtype.
    """
    seen: set[int] = set()
    total = 0
    for t in model.state_dict().values():
        if not isinstance(t, torch.Tensor) or t.data_ptr() in seen and t.data_ptr() != 0:
            continue
        seen.add(t.data_ptr())
        total += t.numel() * t.element_size()
    return total / MIB




CUDA_PEAK_METHOD = "cuda_max_memory_allocated-baseline+state_dict+input"
CPU_PEAK_METHOD = "torch_profiler_cpu_allocator_events+state_dict+input"


def peak_forward_memory(model: nn.Module, input_shape: tuple[int, ...], precision: str = "fp32",
                        channels_last: bool = False) -> tuple[float, str]:
    """Peak memory (MiB) held while one forward pass runs: weights + input + live activations.

    On CUDA it is the caching allocator's own peak (``max_memory_allocated`` after a reset)
    above what was allocated before the call (so other tensors in the process do not count),
    plus the bytes of the weights and input. On CPU no allocator peak counter exists
    (tracemalloc does not see torch's allocator), so we replay the allocation/free events
    that ``torch.profiler(profile_memory=True)`` records during the forward pass, take the
    running maximum, and add the bytes already resident (state_dict and input). The second
    element names the method so figures from different devices are not silently compared.
    """
    device = model_device(model)
    with eval_mode(model), torch.inference_mode(), autocast(device, precision):
        x = zeros_input(model, input_shape, device)
        if channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        model(x)  # warm: lazy inits and cudnn autotuning must not count
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            baseline = torch.cuda.memory_allocated(device)
            model(x)
            torch.cuda.synchronize(device)
            peak = torch.cuda.max_memory_allocated(device) - baseline
            return (peak + _resident_bytes(model, x)) / MIB, CUDA_PEAK_METHOD

        from torch.profiler import ProfilerActivity, profile

        with quiet_kineto(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            model(x)
        events = [e for e in prof.profiler.kineto_results.events()
                  if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU]
        events.sort(key=lambda e: e.start_ns())
        live = peak = 0
        for e in events:
            live += e.nbytes()
            peak = max(peak, live)
        return (peak + _resident_bytes(model, x)) / MIB, CPU_PEAK_METHOD


def _resident_bytes(model: nn.Module, x: torch.Tensor) -> float:
    return model_size_mib(model) * MIB + x.numel() * x.element_size()
