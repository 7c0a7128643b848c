"""Options shared by several sub-commands, defined once."""

from __future__ import annotations

import argparse

from bloodbench.choices import SIZES


def _number(kind: type, text: str):
    try:
        return kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (epochs, batch size, patience, threads)."""
    value = _number(int, text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0 (learning rate)."""
    value = _number(float, text)
    if not value > 0:  # NaN fails too
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def nonnegative_float(text: str) -> float:
    """argparse type: a number >= 0 (weight decay)."""
    value = _number(float, text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return value


def fraction(text: str) -> float:
    """argparse type: a number in [0, 1) (label smoothing)."""
    value = _number(float, text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text}")
    return value


def comma_list(text: str | None) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``: the one reading of a comma-separated option."""
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def int_list(text: str, minimum: int | None = None) -> list[int]:
    """argparse type: comma-separated integers (each >= ``minimum`` when given)."""
    try:
        values = [int(t) for t in comma_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if minimum is not None and (not values or min(values) < minimum):
        raise argparse.ArgumentTypeError(f"expected integers >= {minimum}, got {text!r}")
    return values


#: numpy's and torch's seeds are unsigned 32-bit integers.
SEED_MAX = 2**32 - 1


def seed(text: str) -> int:
    """argparse type: a training seed, 0..2**32-1 (numpy refuses others, with a traceback)."""
    value = _number(int, text)
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"expected a seed in 0..{SEED_MAX} (2**32-1), got {value}")
    return value


def seed_list(text: str) -> list[int]:
    """argparse type: comma-separated seeds, each 0..2**32-1."""
    values = int_list(text)
    for value in values:
        seed(str(value))
    return values


def positive_int_list(text: str) -> list[int]:
    """argparse type: comma-separated integers >= 1, at least one."""
    return int_list(text, minimum=1)


def add_dataset_options(p: argparse.ArgumentParser, size: bool = True) -> None:
    """Which dataset and size a command is about (no file access needed)."""
    p.add_argument("--dataset", default="bloodmnist", help="MedMNIST 2D flag (default: bloodmnist)")
    if size:
        p.add_argument("--size", type=int, default=28, choices=SIZES, help="image size in px (default: 28)")


def add_data_options(p: argparse.ArgumentParser, size: bool = True) -> None:
    add_dataset_options(p, size)
    p.add_argument("--data-dir", default=None,
                   help="folder with the MedMNIST .npz files (default: $BLOODBENCH_DATA_DIR, then ~/.medmnist)")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="skip the md5 check (for files you made yourself)")


def add_results_option(p: argparse.ArgumentParser) -> None:
    """``--results``: which results store a command reads or writes."""
    p.add_argument("--results", default=None,
                   help="results directory (default: $BLOODBENCH_RESULTS, then reports/results)")


def add_format_option(p: argparse.ArgumentParser, choices=("table", "json"), default: str = "table") -> None:
    p.add_argument("--format", choices=choices, default=default, help=f"output format (default: {default})")


def add_weights_options(p: argparse.ArgumentParser) -> None:
    """Which trained weights ``predict`` and ``export`` use: a seed's run, or a weights file."""
    which = p.add_mutually_exclusive_group()
    which.add_argument("--seed", type=int, default=None,
                       help="use this seed's finished run in the results store (its best.pt)")
    which.add_argument("--weights", default=None, metavar="published|PATH",
                       help="'published' (the default), a .safetensors file or a run's best.pt")
    add_dataset_options(p)
    add_results_option(p)


def trained_from_args(args: argparse.Namespace):
    """The model of ``add_weights_options``' choice (:class:`bloodbench.train.trained.Trained`), on CPU."""
    from bloodbench.errors import BloodbenchError
    from bloodbench.hints import require_finished_runs
    from bloodbench.store.results import ResultsStore
    from bloodbench.train.trained import load_trained

    if args.seed is None:
        return load_trained(args.model, args.weights or "published")
    store = ResultsStore(args.results)
    runs = require_finished_runs(store, args.model, args.dataset, args.size, args.seed)
    rec = max(runs, key=lambda r: str(r.get("finished_at") or r.get("written_at") or ""))  # the newest recipe
    path = store.run_dir(rec["run_id"]) / (rec.get("artifacts") or {}).get("best", "best.pt")
    if not path.is_file():
        raise BloodbenchError(f"run {rec['run_id']} has no checkpoint ({path} is missing; checkpoints stay out of "
                              f"git): use --weights published, or retrain the run")
    return load_trained(args.model, path, source=f"run {rec['run_id']}")
