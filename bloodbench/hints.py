"""The commands error messages give as the fix for a missing run or file.

One place, so ``explain`` and ``evaluate`` print the same command, and that command is the
one that really recreates the run: ``--force`` plus the run's own recipe options (a plain
rerun of a finished run only reports it).
"""

from __future__ import annotations

import shlex
from pathlib import Path

from bloodbench.store.results import resolve_results_dir


def train_hint(model: str, seed: int | None, dataset: str, size: int, results: Path | None = None,
               extra: tuple[str, ...] = ()) -> str:
    cmd = " ".join([f"bloodbench train {model} --seed {0 if seed is None else seed}", *map(shlex.quote, extra)])
    if dataset != "bloodmnist":
        cmd += f" --dataset {dataset}"
    if size != 28:
        cmd += f" --size {size}"
    if results is not None and Path(results) != resolve_results_dir():
        cmd += f" --results {shlex.quote(str(results))}"
    return f"`{cmd}`"


def require_finished_runs(store, model: str, dataset: str, size: int, seed: int | None) -> list[dict]:
    """The finished train records of (model, dataset, size[, seed]), by seed; none is one line
    that gives the command to make one (a misspelt model gets "did you mean" instead)."""
    from bloodbench.errors import BloodbenchError
    from bloodbench.models import get_model_info

    runs = store.finished_runs(model, dataset, size, seed)
    if not runs:
        get_model_info(model)
        which = f"{model} on {dataset} {size}px" + ("" if seed is None else f" seed {seed}")
        raise BloodbenchError(f"no finished training run of {which} in {store.root}: "
                              f"run {train_hint(model, seed, dataset, size, store.root)} first")
    return sorted(runs, key=lambda r: (int(r.get("seed", 0)), str(r.get("finished_at", ""))))


def retrain_hint(record: dict, results: Path) -> str:
    """The command that recreates a finished run's files under the same run id: ``--force``
    (a plain rerun just reports the finished record) plus the run's own recipe options."""
    from bloodbench.config import recipe_cli_args
    from bloodbench.errors import BloodbenchError

    config = dict(record.get("config") or {})
    config.setdefault("model", record["model"])
    try:
        args, unsettable = recipe_cli_args(config)
    except BloodbenchError:  # a model no longer in the registry: no recipe to compare with
        args, unsettable = [], []
    hint = train_hint(record["model"], record.get("seed"), record.get("dataset", "bloodmnist"),
                      int(record.get("size", 28)), results, ("--force", *args))
    if unsettable:
        hint += f" (then set {', '.join(unsettable)} in the recipe: no option sets them)"
    return hint
