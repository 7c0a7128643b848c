"""The files `explain` writes, named once: the report links to them by these names."""

# The files explain writes, with the captions the report links them under (in the report's order).
OUTPUT_FILES = {
    "gradcam_correct.png": "Grad-CAM on correctly classified test images",
    "gradcam_wrong.png": "Grad-CAM on misclassified test images",
    "misclassified.png": "misclassified test images",
    "reliability.png": "reliability diagram (calibration)",
    "errors.md": "error analysis",
}
