"""GPU clocks and temperature at measurement time, from NVML (``pynvml``, package nvidia-ml-py).

A GPU figure depends on the clocks it ran at: a hot or power-capped card throttles, and two
processes can see different clocks. The state is read right after timing and stored in the
record's ``env``. NVML is optional: without ``pynvml``, a GPU or a driver, the result is ``{}``.
"""

from __future__ import annotations

from typing import Any

import torch


def _handle(nvml: Any, device: torch.device) -> Any:
    """The NVML handle of torch's ``device`` (by UUID: CUDA_VISIBLE_DEVICES may renumber)."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
    if uuid is not None:
        try:
            return nvml.nvmlDeviceGetHandleByUUID(f"GPU-{uuid}")
        except Exception:
            pass
    return nvml.nvmlDeviceGetHandleByIndex(index)


def gpu_state(device: torch.device | str) -> dict[str, Any]:
    """``{gpu_clocks_mhz: {sm, mem}, gpu_temperature_c, gpu_power_w}`` of a CUDA device, else ``{}``."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return {}
    try:
        import pynvml as nvml
    except ImportError:
        return {}
    try:
        nvml.nvmlInit()
    except Exception:
        return {}
    try:
        h = _handle(nvml, device)
        state: dict[str, Any] = {
            "gpu_clocks_mhz": {"sm": int(nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_SM)),
                               "mem": int(nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_MEM))},
            "gpu_temperature_c": int(nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU)),
        }
        try:
            state["gpu_power_w"] = round(nvml.nvmlDeviceGetPowerUsage(h) / 1000, 1)
        except Exception:
            pass
        return state
    except Exception:
        return {}
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:
            pass
