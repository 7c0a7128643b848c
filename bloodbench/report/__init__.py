"""The published report: README + plots + model cards, and old-vs-new comparisons."""

from bloodbench.report.build import environment_table, model_card, write_report
from bloodbench.report.compare import Comparison, compare

__all__ = ["Comparison", "compare", "environment_table", "model_card", "write_report"]
