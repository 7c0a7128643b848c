"""One exception type for every user-facing failure.

The CLI turns a :class:`BloodbenchError` into a one-line ``error: ...`` message and a
non-zero exit, with no traceback; everything else is a bug and keeps its traceback.
"""

from contextlib import contextmanager
from typing import Iterator


class BloodbenchError(Exception):
    """A problem with the user's input or environment, with a hint on how to fix it."""

    exit_code = 2


_said: set[str] | None = None  # inside warnings_once(): the lines already printed


def warn(message: str) -> None:
    """One ``warning: ...`` line on stderr: something was skipped or set aside, and the run goes on."""
    import sys

    if _said is not None:
        if message in _said:
            return
        _said.add(message)
    print(f"warning: {message}", file=sys.stderr)


@contextmanager
def warnings_once() -> Iterator[None]:
    """Within this block each distinct warning is printed once: for a command that reads the same inputs
    more than once (``report`` builds a leaderboard per device), one warning per bad file, not one per read."""
    global _said
    outer, _said = _said, (set() if _said is None else _said)
    try:
        yield
    finally:
        _said = outer
