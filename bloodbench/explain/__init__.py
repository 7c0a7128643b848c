"""Interpretability and error analysis: Grad-CAM, confusions, calibration.

Names load on first use (PEP 562), so the report can read ``OUTPUT_FILES`` without importing torch.
"""

from importlib import import_module
from typing import Any

from bloodbench.explain.files import OUTPUT_FILES

_LAZY = {
    "DEFAULT_BINS": "calibration",
    "ReliabilityBins": "calibration",
    "coarse_map_note": "gradcam",
    "confused_pairs": "confusions",
    "confusion_counts": "confusions",
    "default_target_layer": "gradcam",
    "expected_calibration_error": "calibration",
    "explain": "report",
    "find_train_run": "report",
    "finer_layer": "gradcam",
    "grad_cam": "gradcam",
    "load_predictions": "confusions",
    "match_class": "confusions",
    "normalize_maps": "gradcam",
    "per_class_errors": "confusions",
    "reliability_bins": "calibration",
    "resolve_target_layer": "gradcam",
    "select_examples": "confusions",
}

__all__ = sorted([*_LAZY, "OUTPUT_FILES"])


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'bloodbench.explain' has no attribute {name!r}")
    return getattr(import_module(f"bloodbench.explain.{_LAZY[name]}"), name)
