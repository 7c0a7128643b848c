"""Readable labels for the method keys stored in records.

Records keep short machine keys (``peak_memory_method``, ``latency.method``) so figures
measured differently are never silently compared; tables and footers show these sentences.
"""

from __future__ import annotations

from bloodbench.profile.memory import CPU_PEAK_METHOD, CUDA_PEAK_METHOD

MEMORY_METHOD_LABELS = {
    CPU_PEAK_METHOD: "CPU allocator peak during one forward pass (torch.profiler memory events) "
                     "+ weights + input",
    CUDA_PEAK_METHOD: "CUDA allocator peak during one forward pass (max_memory_allocated above what was "
                      "allocated before) + weights + input",
}
LATENCY_METHOD_LABELS = {
    "per_call_median_of_rounds": "each call timed on its own; p50 = median of the rounds' p50s",
    "pytest_benchmark_rounds": "pytest-benchmark rounds, one call each",
}


def memory_method_label(key: str | None) -> str:
    """The sentence for a ``peak_memory_method`` key (the key itself if unknown, 'not measured' if None)."""
    return "not measured" if not key else MEMORY_METHOD_LABELS.get(key, key)


def latency_method_label(key: str | None) -> str:
    """The sentence for a ``latency.method`` key (old records have none: per-call timing, one round)."""
    return LATENCY_METHOD_LABELS.get(key, key) if key else "each call timed on its own, one round"
