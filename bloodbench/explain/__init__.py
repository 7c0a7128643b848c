"""Interpretability and error analysis: Grad-CAM, confusions, calibration."""

from bloodbench.explain.calibration import DEFAULT_BINS, ReliabilityBins, expected_calibration_error, reliability_bins
from bloodbench.explain.confusions import (
    confused_pairs,
    confusion_counts,
    load_predictions,
    match_class,
    per_class_errors,
    select_examples,
)
from bloodbench.explain.gradcam import (
    coarse_map_note,
    default_target_layer,
    finer_layer,
    grad_cam,
    normalize_maps,
    resolve_target_layer,
)
from bloodbench.explain.report import OUTPUT_FILES, explain, find_train_run

__all__ = [
    "DEFAULT_BINS", "OUTPUT_FILES", "ReliabilityBins", "coarse_map_note", "confused_pairs", "confusion_counts",
    "default_target_layer", "expected_calibration_error", "explain", "find_train_run", "finer_layer", "grad_cam", "load_predictions",
    "match_class", "normalize_maps", "per_class_errors", "reliability_bins", "resolve_target_layer",
    "select_examples",
]
