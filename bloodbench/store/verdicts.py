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

And one verdict on a profile record, ``noisy`` (:func:`profile_noise`): its latency rounds disagree, or the
machine was busier than its cores allow (:func:`load_problem`). A noisy profile never replaces a quiet
one of the same setting (:func:`profile_choice`: the store's writer and ``results import`` alike).
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


# -- a profile's noise ------------------------------------------------------------------------
#: Cores' worth of load background work (daemons, the shell, the load average's own lag) may add before a
#: machine counts as busy.
LOAD_SLACK = 0.5


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def load_problem(load: Any, cpu_count: Any, threads: Any = None, includes_own: bool = True) -> str | None:
    """Why the machine is (was) too busy to time on, or None: other work's load plus the profiler's own
    threads (``threads``, at least 1) above its cores (:data:`LOAD_SLACK` allowed).

    ``includes_own``: ``load`` was read during or right after the profile, so up to ``threads`` of it is the
    profiler itself (what a record holds); otherwise it is what the other work alone puts on the machine
    (the check before a profile starts).
    """
    load, cores, own = _number(load), _number(cpu_count), _number(threads)
    if load is None or not cores or cores < 1:
        return None
    own = max(1.0, own or 1.0)
    others = max(0.0, load - own) if includes_own else load
    if others + own <= cores + LOAD_SLACK:
        return None
    if includes_own:
        return f"machine is loaded (1-min load average {load:.2f} > {cores:.0f} cores)"
    return (f"machine is busy (load {load:.2f} from other work + {own:.0f} profiler thread(s) > "
            f"{cores:.0f} cores)")


def profile_noise(rec: Any) -> list[str]:
    """Why a profile record's latency is not to be trusted, [] when it is quiet.

    Records written since ``latency.noise_reasons`` exists carry the reasons; an older one is judged
    from its figures: ``latency.noisy`` (its rounds disagreed). The load it recorded is judged in both.
    """
    lat = rec.get("latency") if isinstance(rec, dict) else None
    if not isinstance(lat, dict):
        return []
    reasons = lat.get("noise_reasons")
    out = [str(r) for r in reasons] if isinstance(reasons, list) else []
    if lat.get("noisy") is True and not out:
        spread = _number(lat.get("rounds_spread"))
        out.append("latency rounds disagree" + (f" (max/min of the round p50s {spread:.2f})" if spread else ""))
    load = load_problem(lat.get("load_avg_1m"), lat.get("cpu_count"), lat.get("threads"))
    if load and load not in out:  # judged again: a hand-edited ``noisy: false`` does not hide a busy machine
        out.append(load)
    return out


def is_noisy(rec: Any) -> bool:
    return bool(profile_noise(rec))


def _spread(rec: dict) -> float:
    spread = _number((rec.get("latency") or {}).get("rounds_spread")) if isinstance(rec.get("latency"), dict) else None
    return spread if spread is not None else math.inf


def profile_choice(incoming: dict, local: dict, tie: str = "newer") -> tuple[bool | None, str]:
    """Of two profile records of one setting, whether the store takes ``incoming`` over ``local``, and why.

    The one rule of ``ResultsStore.write`` and ``results import``: a quiet record beats a noisy one
    (:func:`profile_noise`); between two of a kind ``tie`` decides: ``"newer"`` (the writer: a new
    measurement replaces the old) or ``"spread"`` (the importer: the rounds that agree better, lower
    ``rounds_spread``; None when the incoming one is no better, left to the caller).
    """
    new, old = profile_noise(incoming), profile_noise(local)
    if new and not old:
        return False, f"kept the quiet local record; the incoming one is noisy ({'; '.join(new)})"
    if old and not new:
        return True, f"replaced the noisy local record ({'; '.join(old)}) with the quiet incoming one"
    if tie == "newer":
        return True, "a new measurement of the setting"
    if _spread(incoming) < _spread(local):
        return True, (f"replaced the local record (round spread {_spread(local):.3f}) "
                      f"with the incoming one ({_spread(incoming):.3f})")
    return None, ""
