"""Two verdicts on a finished training run, computed from its record alone.

* ``converged``: the run stopped learning before it stopped. True when early stopping ended it
  (``stop_reason == "converged"``: the monitored validation metric did not improve for
  ``patience`` epochs), or when the best validation accuracy of its last 20 % of epochs
  (at least one epoch) is within 0.1 percentage point of the best of the epochs before
  (:data:`PLATEAU_FRACTION`, :data:`PLATEAU_TOLERANCE`), over at least :data:`MIN_EPOCHS`
  epochs. A run still improving at its epoch budget, or a diverged one, is not converged.
* ``learned_nothing``: the best-on-validation accuracy is at most
  :data:`CHANCE_FACTOR` × the accuracy of always predicting the most frequent validation
  class (1 / num_classes when the class counts are not recorded). Such a run is kept in
  the store but left out of every average.

Validation only: neither verdict looks at the test split. Docs: docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import math
from typing import Any

PLATEAU_FRACTION = 0.2
PLATEAU_TOLERANCE = 0.001  # 0.1 percentage point, as a fraction
MIN_EPOCHS = 5
CHANCE_FACTOR = 1.5

CONVERGENCE_RULE = ("rule: stopped early on patience, or the last 20 % of epochs gained ≤ 0.1 point of val "
                    "accuracy over the best before them, over ≥ 5 epochs")
#: What an unconverged run did, in the words of the footnote that marks it (the rule above, negated).
NOT_CONVERGED = ("not converged: neither stopped early on patience nor plateaued (its last 20 % of epochs still "
                 "gained more than 0.1 point of val accuracy over the best before them, or it ran < 5 epochs)")
LEARNED_NOTHING_RULE = "val accuracy ≤ 1.5 × the majority-class rate"


def _val_accs(history: Any) -> list[float]:
    if not isinstance(history, list):
        return []
    out = []
    for row in history:
        value = row.get("val_acc") if isinstance(row, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out.append(float(value))
    return out


def plateaued(val_accs: list[float]) -> bool:
    """True when the last 20 % of epochs gained at most 0.1 point over the best before them."""
    n = len(val_accs)
    if n < MIN_EPOCHS:
        return False
    tail = max(1, math.ceil(PLATEAU_FRACTION * n))
    return max(val_accs[n - tail:]) <= max(val_accs[: n - tail]) + PLATEAU_TOLERANCE


def converged(rec: dict) -> bool:
    """The convergence rule (see the module docstring) for a train record."""
    if rec.get("status") != "finished":
        return False
    return rec.get("stop_reason") == "converged" or plateaued(_val_accs(rec.get("history")))


def chance_rate(rec: dict) -> float | None:
    """Accuracy of always predicting the most frequent validation class."""
    val = rec.get("val") if isinstance(rec.get("val"), dict) else {}
    support = (val.get("per_class") or {}).get("support") if isinstance(val.get("per_class"), dict) else None
    if isinstance(support, list) and support and all(isinstance(s, (int, float)) for s in support) and sum(support):
        return max(support) / sum(support)
    k = rec.get("num_classes")
    return 1.0 / k if isinstance(k, int) and k > 0 else None


def learned_nothing(rec: dict) -> bool:
    """True when the run's best validation accuracy is near chance (see the module docstring)."""
    if rec.get("status") != "finished":
        return False
    val = rec.get("val") if isinstance(rec.get("val"), dict) else {}
    acc = val.get("acc")
    if not isinstance(acc, (int, float)) or isinstance(acc, bool):
        accs = _val_accs(rec.get("history"))
        acc = max(accs) if accs else None
    chance = chance_rate(rec)
    if acc is None or chance is None:
        return False
    return acc <= CHANCE_FACTOR * chance


def annotate(rec: dict) -> dict:
    """Fill ``converged`` and ``learned_nothing`` in a train record that predates them (in place)."""
    if "converged" not in rec:
        rec["converged"] = converged(rec)
    if "learned_nothing" not in rec:
        rec["learned_nothing"] = learned_nothing(rec)
    return rec
