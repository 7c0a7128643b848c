"""bloodbench: accuracy-vs-cost benchmarking of blood-cell image classifiers."""

__version__ = "0.1.0"
