"""Where and how the work runs: device and environment provenance, precision, backend flags."""
