"""Profiling: cost counting (MACs, params: counting.py), memory (memory.py), latency, throughput, traces.

Units: MACs are fused multiply-adds as fvcore counts them; FLOPs = 2 x MACs; sizes and
memory are MiB (2^20 bytes); record fields keep their historical ``_mb`` names (memory.py).

Against torchvision's published metadata (``python -m bloodbench.profile.torchvision_check``,
docs/PROFILING.md): params match exactly, and fvcore's conv + linear MACs match ``_ops``
(labelled GFLOPS, really GMACs). fvcore's *total* is up to ~5% higher (mobilenet_v3_small
+4.6%, efficientnet_b0 +4.1%) because it also counts batch-norm, pooling and upsampling,
which ``_ops`` leaves out. ``model_size_mb`` is the state_dict in MiB, within 1% below
``_file_size`` (labelled MB, really MiB), the gap being the file's framing.
"""

from bloodbench.config import ProfileConfig
from bloodbench.profile.counting import (
    CostBreakdown,
    MacCount,
    cost_breakdown,
    count_activations,
    count_macs,
    count_params,
    flopcounter_flops,
    fvcore_macs,
)
from bloodbench.profile.memory import model_size_mib, peak_forward_memory
from bloodbench.profile.record import build_model, profile_model
from bloodbench.profile.timing import (
    LatencyMeasurement,
    measure_latency,
    measure_throughput,
    peak_throughput,
)
from bloodbench.profile.trace import DEFAULT_TRACE_DIR, TraceResult, trace_model
from bloodbench.runtime.precision import PRECISIONS

__all__ = [
    "CostBreakdown", "DEFAULT_TRACE_DIR", "LatencyMeasurement", "MacCount", "PRECISIONS",
    "TraceResult", "build_model", "cost_breakdown", "count_activations", "count_macs", "count_params", "flopcounter_flops",
    "fvcore_macs", "measure_latency", "measure_throughput", "model_size_mib", "peak_forward_memory",
    "peak_throughput", "ProfileConfig", "profile_model", "trace_model",
]
