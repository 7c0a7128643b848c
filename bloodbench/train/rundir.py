"""``train --force``: the old run's files set aside until the new record is written."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tqdm.auto import tqdm

REPLACED_DIR = "replaced"


def set_aside_old_run(run_dir: Path) -> Path | None:
    """``--force``: move the old run's files (record, best checkpoint, predictions) into
    ``run_dir/replaced/`` (deleted once the new record is written), and drop ``last.pt`` so
    training starts from scratch.

    A forced retrain killed half-way thus leaves the old finished run restorable, and no record
    that claims to describe the new, partial checkpoints. If ``replaced/`` is already there (an
    earlier forced retrain was interrupted), it holds the finished run and is kept as it is.
    """
    (run_dir / "last.pt").unlink(missing_ok=True)
    old = [p for p in sorted(run_dir.iterdir()) if p.is_file()] if run_dir.is_dir() else []
    keep = run_dir / REPLACED_DIR
    if keep.is_dir():
        for path in old:
            path.unlink()
        return keep
    if not old:
        return None
    keep.mkdir()
    for path in old:
        path.rename(keep / path.name)
    tqdm.write(f"--force: retraining {run_dir.name} from scratch; the old run is kept in {keep} "
               f"until the new record is written", file=sys.stderr)
    return keep


def drop_replaced(run_dir: Path) -> None:
    """The new record is written: an old run set aside by ``--force`` (this call's, or one whose
    retrain was interrupted and then resumed without ``--force``) can go."""
    shutil.rmtree(run_dir / REPLACED_DIR, ignore_errors=True)
