"""Early stopping on the monitored validation metric."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class EarlyStopping:
    """Tracks the best monitored value; ``bad_epochs`` counts epochs without improvement."""

    mode: str
    patience: int
    min_delta: float
    best: float = math.nan
    best_epoch: int = -1
    bad_epochs: int = 0

    def update(self, value: float, epoch: int) -> bool:
        """Returns True if ``value`` is a new best."""
        better = (math.isnan(self.best) or
                  (value > self.best + self.min_delta if self.mode == "max" else value < self.best - self.min_delta))
        if better:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
        else:
            self.bad_epochs += 1
        return better

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs >= self.patience
