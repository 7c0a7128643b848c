"""One exception type for every user-facing failure.

The CLI turns a :class:`BloodbenchError` into a one-line ``error: ...`` message and a
non-zero exit, with no traceback; everything else is a bug and keeps its traceback.
"""

from contextlib import contextmanager
from typing import Iterator


class BloodbenchError(Exception):
    """A problem with the user's input or environment, with a hint on how to fix it."""

    exit_code = 2


class Stopped(KeyboardInterrupt):
    """SIGTERM (``kill``, ``timeout``, a scheduler's pre-emption) ends a command the way Ctrl-C does: claims
    released, ``last.pt`` kept, one line. Without a handler Python dies on it silently, the claim left stale."""

    exit_code = 143  # 128 + SIGTERM, as a shell reports it


def _stop(signum, frame) -> None:
    raise Stopped


@contextmanager
def sigterm_stops() -> Iterator[None]:
    """Within this block SIGTERM raises :class:`Stopped` (in the main thread; signals are set nowhere else)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


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
