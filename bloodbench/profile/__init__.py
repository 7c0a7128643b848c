"""Profiling: cost counting (MACs, params, memory), latency, throughput, traces."""

from bloodbench.profile.counting import count_macs, count_params

__all__ = ["count_macs", "count_params"]
