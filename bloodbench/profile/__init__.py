"""Profiling: cost counting (MACs, params, memory), latency, throughput, traces.

Units: MACs are fused multiply-adds as fvcore counts them; FLOPs = 2 x MACs.
"""

from bloodbench.profile.counting import (
    CostBreakdown,
    MacCount,
    cost_breakdown,
    count_activations,
    count_macs,
    count_params,
    flopcounter_flops,
    fvcore_macs,
    model_size_mb,
    peak_forward_memory,
)
from bloodbench.profile.record import PROFILE_FIELDS, profile_config, profile_model, profile_run_id
from bloodbench.profile.timing import (
    PRECISIONS,
    LatencyMeasurement,
    measure,
    measure_latency,
    measure_throughput,
    peak_throughput,
)
from bloodbench.profile.trace import DEFAULT_TRACE_DIR, TraceResult, trace_model

__all__ = [
    "CostBreakdown", "DEFAULT_TRACE_DIR", "LatencyMeasurement", "MacCount", "PRECISIONS", "PROFILE_FIELDS",
    "TraceResult", "cost_breakdown", "count_activations", "count_macs", "count_params", "flopcounter_flops",
    "fvcore_macs", "measure", "measure_latency", "measure_throughput", "model_size_mb", "peak_forward_memory",
    "peak_throughput", "profile_config", "profile_model", "profile_run_id", "trace_model",
]
