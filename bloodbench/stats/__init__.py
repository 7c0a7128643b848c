"""Statistics on predictions: classification metrics with bootstrap CIs, paired model comparisons."""
